#!/usr/bin/env bash
# Pack what the GPU check needs and the device image lacks into .device/ (ignored by git).
#
#   benchmarks/device_bundle.sh [PYTHON_VERSION]     # default 3.12, the device image's Python
#
# The device image has torch, torchvision, timm, numpy, pandas and Ray's other dependencies,
# but not Ray itself, and nothing can be fetched there. Ray's wheel (79 MB) is over the 64 MiB
# that may travel with a call, so it is unpacked here without the parts a local Ray core does
# not import (jars, rllib, serve, data) and recompressed with xz (about 26 MB). jsonschema and
# its own dependencies, and TorchJD with its QP projector (the methods step), travel as wheels. benchmarks/gpu_check.sh unpacks both into /tmp/site.
set -euo pipefail
PY=${1:-3.12}
TAG=cp${PY/./}
RAY=$(python3 -c "import importlib.metadata as m; print(m.version('ray'))" 2>/dev/null || echo 2.60.0)
HERE=$(cd "$(dirname "$0")/.." && pwd)
DEST=$HERE/.device
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$DEST"
rm -f "$DEST"/*.whl "$DEST"/ray.tar.xz
fetch() {
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PY" \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$1" "${@:2}"
}
fetch "$WORK" "ray==$RAY"
fetch "$DEST" jsonschema jsonschema-specifications referencing rpds-py
fetch "$DEST" torchjd qpsolvers quadprog  # the multi-task methods (benchmarks.methods); no cvxpy
(cd "$WORK" && unzip -q ray-*.whl -x 'ray/jars/*' 'ray/rllib/*' 'ray/serve/*' 'ray/data/*' \
    && tar -cf - ray ray-*.dist-info | xz -T0 -9 > "$DEST/ray.tar.xz")
grep -qx '/.device/' "$HERE/.git/info/exclude" 2>/dev/null || echo '/.device/' >> "$HERE/.git/info/exclude"
echo "ray $RAY ($TAG) for the device in $DEST:"
du -ch "$DEST"/* | tail -n 20

#!/usr/bin/env bash
# Every GPU figure of the performance issue in one prepared run (about 7 minutes on an H200).
#
#   benchmarks/device_bundle.sh             # here, once: Ray for the device, into .device/
#   benchmarks/gpu_check.sh                 # there, from the repository root; results in $OUT
#
# Through the device tool: run(command="benchmarks/gpu_check.sh", carry=[".device"],
# timeout_s=540). Each step has its own time limit, so one that hangs cannot eat the others;
# every JSON line goes to $OUT/results.jsonl and the whole log to $OUT/gpu_check.log.
# SMOKE=1 DEVICE=cpu runs the same steps tiny, on a CPU (to check the script itself).
set -uo pipefail
OUT=${OUT:-$(mktemp -d)}
DEVICE=${DEVICE:-cuda}
export PYTHONUNBUFFERED=1
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
if [ -f .device/ray.tar.xz ]; then  # Ray is not in the device image (see device_bundle.sh)
    mkdir -p /tmp/site
    tar -xJf .device/ray.tar.xz -C /tmp/site
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .device/*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
RESULTS=$OUT/results.jsonl
if [ "${SMOKE:-0}" = 1 ]; then
    TP="--batches 2 --batch-size 16 --val-images 64 --rounds 1"
    PK="--seconds 2 --limit-train 64 --batch-size 16 --trials 1,2"
    MT="--batch-size 16 --steps 1 --rounds 1 --methods ew,uw,upgrad"
else
    TP="--batches 40 --rounds 3"
    PK="--seconds 15"
    MT="--batch-size 128 --steps 5 --rounds 3"
fi

step() {  # step <seconds> <command...>: a timed step whose JSON lines are kept
    local limit=$1; shift
    echo "=== $(date +%T) $* (limit ${limit}s)"
    timeout "$limit" "$@" | tee -a "$RESULTS"
    echo "=== exit ${PIPESTATUS[0]}"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true
python3 -c "import torch, timm, sys; print('python', sys.version.split()[0], 'torch',
torch.__version__, 'timm', timm.__version__, 'cuda', torch.cuda.is_available())"
python3 -c "import ray; print('ray', ray.__version__, ray.__file__)" || echo "ray: not importable"

# 1. one trial: engine vs bare loop vs baseline pipeline (0 and 8 DataLoader workers), bf16
step 120 python3 -m benchmarks.throughput --device "$DEVICE" $TP --baseline-workers 0
step 120 python3 -m benchmarks.throughput --device "$DEVICE" $TP --baseline-workers 8
# 2. torch.compile: plain, and with CUDA graphs (the warm-up epoch pays the compilation)
step 150 python3 -m benchmarks.throughput --device "$DEVICE" $TP --compile default
step 150 python3 -m benchmarks.throughput --device "$DEVICE" $TP --compile reduce-overhead
# 3. packing: 1, 2, 4, 8 trials at 1/N of the GPU each, through Ray (processes if it is missing)
step 200 python3 -m benchmarks.packing --device "$DEVICE" $PK
# 4. multi-task methods: step time and peak memory of each against ew (cagrad: no cvxpy there)
step 150 python3 -m benchmarks.methods --device "$DEVICE" $MT
echo "=== $(date +%T) done; $(grep -c . "$RESULTS") result lines in $RESULTS"

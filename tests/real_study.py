"""One real study, made through `python -m study.run` once per pytest session; the tests check
the analysis of it against its raw files (`fake_study.raw_results`).

A pytest plugin: the analysis test modules that use `real_study` name it in
`pytest_plugins = ["real_study"]`, so its session fixture is registered once and the study
(real Ray, real Optuna, search and confirmation stage, a few minutes) is made once, however many
modules use it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from fixtures import write_cifar10, write_fashion_json, write_imagefolder
from helpers import run_cli

BIRDS = ("crow", "owl", "wren")  # the third task's classes: an ImageFolder tree the test writes
REAL_TASKS = ("cifar10", "fashionrgb", "birds")  # the study's task names, in --tasks order


def write_real_data(root: Path) -> tuple[Path, str]:
    """CIFAR-10 and FashionRGB in their real formats under a data root, and an ImageFolder
    task (train/ and test/); returns (data root, the imagefolder task's spec)."""
    data_root = root / "data"
    write_cifar10(data_root, per_batch=30, test=40)
    write_fashion_json(data_root, per_class=20)
    write_imagefolder(root / "birds", classes=BIRDS, per_class=24, splits=("train", "test"))
    return data_root, f"imagefolder:{root / 'birds'}"


@pytest.fixture(scope="session")
def real_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An `all` study over three tasks (`REAL_TASKS`: CIFAR-10 and FashionRGB in their real
    formats and an ImageFolder task, random pixels) of 2 trials x 2 epochs per space: one
    single-task space per task and a 3-task `multi`, fifo scheduler, with its confirmation
    stage: baseline and tuned-1 of each space, 2 seeds each, scored on at most 64 test images
    per task."""
    root = tmp_path_factory.mktemp("analysis-study")
    data_root, birds = write_real_data(root)
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths; private
    args = ["--quick", "--space", "all", "--storage", str(root), "--name", "s"]
    args += [
        "--data",
        "real",
        "--data-root",
        str(data_root),
        "--tasks",
        f"cifar10,fashionrgb,{birds}",
    ]
    args += ["--num-samples", "2", "--max-epochs", "2", "--limit-train", "128"]
    args += ["--limit-val", "64", "--limit-test", "64", "--confirm-seeds", "2"]
    args += ["--scheduler", "fifo", "--cache-dir", str(root / "cache")]
    try:
        proc = run_cli(
            *args,
            cwd=root,
            timeout=1200,
            env={"RAY_TMPDIR": ray_tmp, "XDG_CACHE_HOME": str(root / "xdg")},
        )
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return root / "s"

"""One real study, made through `python -m study.run` once per pytest session; the tests check
the analysis of it against its raw files (`fake_study.raw_results`).

A pytest plugin: the analysis test modules that use `real_study` name it in
`pytest_plugins = ["real_study"]`, so its session fixture is registered once and the study
(real Ray, real Optuna, search and confirmation stage, a few minutes) is made once, however many
modules use it.
"""

from __future__ import annotations

import json
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli
from PIL import Image

from trainables.data import make_synthetic

BIRDS = ("crow", "owl", "wren")  # the third task's classes: an ImageFolder tree the test writes
REAL_TASKS = ("cifar10", "fashionrgb", "birds")  # the study's task names, in --tasks order
REAL_COMPARED = ("upgrad", "uw")  # --compare-methods: a Jacobian method and a weighting
REAL_STUDY_LOG = "study.log"  # what the study printed, beside its folder


def write_real_data(root: Path) -> tuple[Path, str]:
    """CIFAR-10 (python pickle batches) and FashionRGB (the JSON layout) under a data root, and
    an ImageFolder task (train/ and test/ PNGs): the files in their real formats, the images
    the built-in stand-ins' (learnable, so the runs differ by configuration and seed); returns
    (data root, the imagefolder task's spec)."""
    data_root = root / "data"
    x, y, tx, ty, _ = make_synthetic("cifar10", root)
    folder = data_root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = [
        (f"data_batch_{i + 1}", x[30 * i : 30 * i + 30], y[30 * i : 30 * i + 30]) for i in range(5)
    ]
    for name, images, labels in [*batches, ("test_batch", tx[:40], ty[:40])]:
        batch = {b"data": images.reshape(len(images), -1), b"labels": labels.tolist()}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    x, y, tx, ty, classes = make_synthetic("fashionrgb", root)
    for split, images, labels in (("train", x[:100], y[:100]), ("val", tx[:100], ty[:100])):
        rows = [
            [classes[c], _png(data_root / "FashionRGB" / split, i, a)]
            for i, (a, c) in enumerate(zip(images, labels))
        ]
        (data_root / "FashionRGB" / f"{split}.json").write_text(json.dumps(rows))
    x, y, tx, ty, _ = make_synthetic("fashionrgb", root, seed=1)
    for split, images, labels in (("train", x, y), ("test", tx, ty)):
        keep = [i for i in range(len(labels)) if labels[i] < len(BIRDS)][:72]
        for i in keep:
            _png(root / "birds" / split / BIRDS[labels[i]], i, images[i])
    return data_root, f"imagefolder:{root / 'birds'}"


def _png(folder: Path, i: int, image: np.ndarray) -> str:
    """Write a 3 x 32 x 32 uint8 image as `<folder>/<i>.png`; its file name."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image.transpose(1, 2, 0)).save(folder / f"{i}.png")
    return f"{i}.png"


@pytest.fixture(scope="session")
def real_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An `all` study over three tasks (`REAL_TASKS`: CIFAR-10 and FashionRGB in their real
    formats and an ImageFolder task, `write_real_data`) of 4 trials x 2 epochs per space: one
    single-task space per task and a 3-task `multi` comparing the methods `REAL_COMPARED` with
    ew, fifo scheduler, with its confirmation stage: baseline and tuned-1 of each space, and in
    `multi` each compared method's best trial, 2 seeds each, scored on at most 64 test images
    per task. What it printed is in `REAL_STUDY_LOG` beside the study's folder."""
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
    # 4 trials: the baseline, then the starting trial of ew and of each compared method
    args += ["--num-samples", "4", "--compare-methods", ",".join(REAL_COMPARED)]
    args += ["--max-epochs", "2", "--limit-train", "128"]
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
    (root / REAL_STUDY_LOG).write_text(proc.stdout)  # test_progress reads its progress lines
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return root / "s"

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
from helpers import run_cli


@pytest.fixture(scope="session")
def real_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An `all` study of 2 trials x 2 epochs per space on synthetic data, fifo scheduler, with
    its confirmation stage: baseline and tuned-1 of each space, 2 seeds each, scored on 64 test
    images per task."""
    root = tmp_path_factory.mktemp("analysis-study")
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths; private
    args = ["--quick", "--space", "all", "--storage", str(root), "--name", "s"]
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

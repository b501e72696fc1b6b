"""Helpers shared by the test modules: how a test runs this project's commands as a user would.

One subprocess environment (`cli_env`), one way to run a module to completion (`run_module`,
`run_cli`) and one way to start it in the background (`start_cli`). Tiny datasets in the real
file formats are in `fixtures.py`; hand-made study directories in `fake_study.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from names import RESULT_FILE, TRIAL_PREFIX

ROOT = Path(__file__).resolve().parents[1]


def cli_env(**extra: str) -> dict[str, str]:
    """This process's environment, offline, with the project importable and no stray cluster."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MTL_STUDY_OFFLINE": "1", **extra}
    if "RAY_ADDRESS" not in extra:
        env.pop("RAY_ADDRESS", None)  # a test starts its own Ray unless it names one
    return env


def run_module(
    module: str,
    *args: str,
    cwd: Path = ROOT,
    timeout: float = 600,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """`python -m <module> ...` in a subprocess, to completion, output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=cli_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 600, env: dict | None = None):
    """`python -m study.run ...`, as a user runs it."""
    return run_module("study.run", *args, cwd=cwd, timeout=timeout, env=env)


def start_cli(*args: str, cwd: Path = ROOT, env: dict | None = None, **popen) -> subprocess.Popen:
    """`python -m study.run ...` in the background (for Ctrl-C, kill -9 and two-driver tests)."""
    return subprocess.Popen(
        [sys.executable, "-m", "study.run", *args],
        cwd=cwd,
        env=cli_env(**(env or {})),
        text=True,
        **popen,
    )


# a small multi-task search on synthetic data: 2-4 s per epoch, two trials at once, no
# confirmation stage (tests of that stage add --confirm-seeds). A test that stops a study
# gracefully (Ctrl-C) and needs a trial still mid-way when the stop lands takes longer epochs
SMALL_STUDY = (
    "--quick",
    "--space",
    "multi",
    "--confirm-seeds",
    "0",
    "--limit-train",
    "128",
    "--limit-val",
    "64",
    "--max-epochs",
    "3",
    "--scheduler",
    "fifo",
    "--max-concurrent",
    "2",
)


def result_rows(trial_dir: Path) -> list[dict]:
    """The epochs a trial reported so far (its `result.json`), stopping at a line being written."""
    path = trial_dir / RESULT_FILE
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def experiment_rows(experiment: Path) -> dict[str, list[dict]]:
    """Every trial folder of a space's experiment -> its reported epochs."""
    return {p.name: result_rows(p) for p in sorted(experiment.glob(f"{TRIAL_PREFIX}*"))}


def wait_for(ready: Callable[[], bool], proc: subprocess.Popen, timeout: float = 400) -> None:
    """Poll `ready()` while `proc` runs; fail if it ends (or time runs out) first."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if ready():
            return
        time.sleep(0.2)
    raise AssertionError("the study ended (or timed out) before the moment to interrupt it")


def kill_tree(proc: subprocess.Popen) -> None:
    """kill -9 of a driver and every process it started (Ray's too) at once, as a power cut or
    the OOM killer would; returns when they are gone. Only these PIDs are touched."""
    import psutil

    try:
        root = psutil.Process(proc.pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:  # it has ended by itself (its children were its to stop)
        tree = []
    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)
    proc.wait()
    psutil.wait_procs(tree, timeout=30)


# the report's trials table says how many rows it holds (analysis.html_table.sortable_table)
REPORT_TRIAL_ROWS = re.compile(r'<table class="sortable" id="trials-table" data-rows="(\d+)"')

"""Shared fixtures: every test runs offline with its own decoded-dataset cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _offline_and_private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    monkeypatch.setenv("MTL_STUDY_OFFLINE", "1")  # no torchvision download attempts
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


def run_cli(*args: str, cwd: Path, timeout: float = 600, env: dict | None = None):
    """`python -m study.run ...` in a subprocess, as a user runs it."""
    import subprocess

    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "MTL_STUDY_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "study.run", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )

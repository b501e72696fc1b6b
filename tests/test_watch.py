"""`python -m analysis.report --watch`: the report rewritten while a study runs (slow: a real
small study beside the watcher), and a study that is not running written once (fast)."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from fake_study import make_fake_study, raw_results
from helpers import SMALL_STUDY, cli_env, kill_tree, start_cli

from analysis.report import watch

ROWS = re.compile(r'<table class="sortable" id="trials-table" data-rows="(\d+)"')


def test_watch_of_a_study_not_running_writes_once(tmp_path: Path) -> None:
    folder = make_fake_study(tmp_path)
    lines: list[str] = []
    out = watch(folder, tmp_path / "r.html", interval=0.1, figure_files=False, log=lines.append)
    page = out.read_text(encoding="utf-8")
    assert "location.reload" not in page  # the final page does not reload itself
    assert int(ROWS.search(page).group(1)) == len(raw_results(folder))
    assert lines[-1] == "the study is not running: report complete"
    assert not list(tmp_path.glob(".r.html.*"))  # no temporary file left


@pytest.mark.slow
def test_watch_follows_a_running_study(tmp_path: Path) -> None:
    """A study of 3 trials, one at a time: the watcher's file shows more trials as they start,
    reloads itself while the study runs, and Ctrl-C ends the watcher quietly."""
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's socket paths; private
    args = [*SMALL_STUDY, "--num-samples", "3", "--max-epochs", "1", "--max-concurrent", "1"]
    args += ["--storage", str(tmp_path), "--name", "w", "--cache-dir", str(tmp_path / "cache")]
    env = {"RAY_TMPDIR": ray_tmp, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    study = start_cli(*args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL)
    out = tmp_path / "report.html"
    watcher = subprocess.Popen(
        [sys.executable, "-m", "analysis.report", str(tmp_path / "w"), "--watch"]
        + ["--interval", "1", "--no-figure-files", "--out", str(out)],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[int] = []
    try:
        deadline = time.time() + 300  # a bound for a loaded machine; see the timing in the note
        while time.time() < deadline and len(set(seen)) < 2 and study.poll() is None:
            if out.exists():
                page = out.read_text(encoding="utf-8")
                assert page.endswith("</html>\n")  # never half a file (temp file + rename)
                seen.append(int(ROWS.search(page).group(1)))
                assert "location.reload" in page and "watching" in page
            time.sleep(0.5)
    finally:
        kill_tree(study)
        shutil.rmtree(ray_tmp, ignore_errors=True)
        watcher.send_signal(signal.SIGINT)
        stdout, stderr = watcher.communicate(timeout=60)
    assert len(set(seen)) >= 2 and seen == sorted(seen), (seen, stdout, stderr[-2000:])
    assert watcher.returncode == 0 and "Traceback" not in stderr + stdout, stderr
    assert "report:" in stdout and "stopped watching" in stdout

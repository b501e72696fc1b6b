"""`python -m analysis.report --watch` of a study that is not running: written once, complete.

The watcher following a running study (rewrites as trials appear, self-reloading page, its end
once the study's lock is released) is checked beside the terminal study of
`tests/test_progress.py`, which shares that study's Ray run instead of starting its own."""

from __future__ import annotations

from pathlib import Path

from fake_study import make_fake_study, raw_results
from helpers import REPORT_TRIAL_ROWS

from analysis.report import watch


def test_watch_of_a_study_not_running_writes_once(tmp_path: Path) -> None:
    folder = make_fake_study(tmp_path)
    lines: list[str] = []
    out = watch(folder, tmp_path / "r.html", interval=0.1, figure_files=False, log=lines.append)
    page = out.read_text(encoding="utf-8")
    assert "location.reload" not in page  # the final page does not reload itself
    assert int(REPORT_TRIAL_ROWS.search(page).group(1)) == len(raw_results(folder))
    assert lines[-1] == "the study is not running: report complete"
    assert not list(tmp_path.glob(".r.html.*"))  # no temporary file left

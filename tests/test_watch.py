"""`python -m analysis.report --watch` of a study that is not running: written once, complete;
of a study in object storage (moto's S3 server): each round re-syncs the local cache, copying
only what changed, and the report is written there, never into the store.

The watcher following a running study (rewrites as trials appear, self-reloading page, its end
once the study's lock is released) is checked beside the terminal study of
`tests/test_progress.py`, which shares that study's Ray run instead of starting its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_study import FR, MULTI_SPACE, OTHER, C, make_fake_study, raw_results, write_trial
from helpers import REPORT_TRIAL_ROWS
from services import s3_server_in_env

from analysis import remote
from analysis.report import main as report_main
from analysis.report import watch
from names import LOCK_FILE, OPTUNA_DB, REPORT_FILE, SETTINGS_FILE
from studyfiles import storage
from studyfiles.lock import owner_record


def test_watch_of_a_study_not_running_writes_once(tmp_path: Path) -> None:
    folder = make_fake_study(tmp_path)
    lines: list[str] = []
    out = watch(folder, tmp_path / "r.html", interval=0.1, figure_files=False, log=lines.append)
    page = out.read_text(encoding="utf-8")
    assert "location.reload" not in page  # the final page does not reload itself
    assert int(REPORT_TRIAL_ROWS.search(page).group(1)) == len(raw_results(folder))
    assert lines[-1] == "the study is not running: report complete"
    assert not list(tmp_path.glob(".r.html.*"))  # no temporary file left


@pytest.fixture(scope="module")
def s3():
    with s3_server_in_env() as store:
        yield store


def _keys(s3) -> set[str]:
    listed = s3.client().list_objects_v2(Bucket=s3.bucket).get("Contents", [])
    return {o["Key"] for o in listed if not o["Key"].endswith("/")}  # not pyarrow's folder marks


def test_watch_of_a_study_in_object_storage_resyncs_only_what_changed(
    s3, tmp_path: Path, capsys
) -> None:
    """`report --watch s3://...` while a driver holds the study's lock: every round re-syncs the
    local cache (a new trial and the lock's release arrive; unchanged files are not copied
    again), and the report is written into that cache, on this machine, never into the store."""
    folder = make_fake_study(tmp_path / "made")
    study = storage.resolve(s3.uri("w/fake"), s3.endpoint)
    storage.sync_up(folder, study)
    storage.write_text(study.child(LOCK_FILE), json.dumps(owner_record()))  # a live driver
    later = tmp_path / "later"
    write_trial(later / MULTI_SPACE, "mZ", {**OTHER}, [{C: 0.5, FR: 0.6}])
    uploaded = {f"w/fake/{p.relative_to(later)}" for p in later.rglob("*") if p.is_file()}
    cache = storage.cache_folder(study, str(tmp_path / "cache"))
    lines: list[str] = []
    seen: dict[str, int] = {}

    def log(line: str) -> None:  # between two rounds the driver goes on: a trial, then its end
        lines.append(line)
        if len(lines) == 2:  # the first report, the lock held
            seen["settings"] = (cache / SETTINGS_FILE).stat().st_mtime_ns
            storage.sync_up(later, study)
            study.fs.delete_file(study.child(LOCK_FILE).path)

    before = _keys(s3)
    out = watch(
        _watched(s3, study.uri, tmp_path),
        interval=0.1,
        figure_files=False,
        log=log,
        refresh=remote.refresher(study.uri, s3.endpoint, str(tmp_path / "cache")),
    )
    assert lines[0].startswith("watching the local cache") and len(lines) == 4, lines
    trials = len(raw_results(folder))
    assert f"({trials} trial folders)" in lines[1] and f"({trials + 1} trial" in lines[2], lines
    assert lines[-1] == "the study is not running: report complete"
    assert out == cache / REPORT_FILE and not (cache / LOCK_FILE).exists()
    page = out.read_text(encoding="utf-8")
    assert "location.reload" not in page
    assert int(REPORT_TRIAL_ROWS.search(page).group(1)) == trials + 1
    assert (cache / SETTINGS_FILE).stat().st_mtime_ns == seen["settings"]  # not copied again
    assert _keys(s3) == (before | uploaded) - {f"w/fake/{LOCK_FILE}"}  # no report in the store

    # the command, on the ended study: nothing to copy, one round, where the report is
    assert (
        report_main(
            [
                study.uri,
                "--storage-endpoint",
                s3.endpoint,
                "--cache-dir",
                str(tmp_path / "cache"),
                "--watch",
                "--interval",
                "0.1",
                "--no-figure-files",
            ]
        )
        == 0
    )
    said = capsys.readouterr()
    assert "(0 files copied, " in said.err and said.out.endswith(f"report: {out}\n")
    assert _keys(s3) == (before | uploaded) - {f"w/fake/{LOCK_FILE}"}


def _watched(s3, uri: str, tmp_path: Path) -> Path:
    return Path(remote.local_study(uri, s3.endpoint, str(tmp_path / "cache")))


def test_the_analysis_never_overwrites_the_optuna_file_a_driver_here_writes(s3, tmp_path) -> None:
    """A remote study's driver keeps its Optuna SQLite file in the cache and uploads it at each
    experiment checkpoint; an analysis syncing that cache in between keeps the driver's newer
    copy (the store's is older), and takes the store's again once the driver has uploaded it."""
    folder = make_fake_study(tmp_path / "made")
    (folder / OPTUNA_DB).write_bytes(b"uploaded at the last checkpoint")
    study = storage.resolve(s3.uri("o/fake"), s3.endpoint)
    storage.sync_up(folder, study)
    cache = Path(remote.local_study(study.uri, s3.endpoint, str(tmp_path / "cache")))
    assert (cache / OPTUNA_DB).read_bytes() == b"uploaded at the last checkpoint"
    (cache / OPTUNA_DB).write_bytes(b"the driver's trials since")  # the driver goes on here
    remote.local_study(study.uri, s3.endpoint, str(tmp_path / "cache"))
    assert (cache / OPTUNA_DB).read_bytes() == b"the driver's trials since"
    storage.sync_up(cache, study, only=[OPTUNA_DB])  # its next checkpoint
    storage.write_text(study.child(OPTUNA_DB), "another driver's, after a take-over")
    remote.local_study(study.uri, s3.endpoint, str(tmp_path / "cache"))
    assert (cache / OPTUNA_DB).read_text() == "another driver's, after a take-over"

"""studyfiles.ray_files: the last result row a lost driver never saved, restored before a
resume; the trials an experiment state records as ended."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from services import s3_server_in_env

from names import PROGRESS_FILE, RESULT_FILE
from studyfiles import storage
from studyfiles.ray_files import ended_trials, lost_last_rows, restore_rows, whole_lines


def _row(epoch: int) -> dict:
    return {"training_iteration": epoch, "score": epoch / 10, "trial_id": "x"}


def _experiment(folder: Path, trials: dict[str, tuple[list[int], int]]) -> None:
    """Trials by id: (epochs in result.json, epoch of the experiment state's last result)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = []
    for trial_id, (rows, last) in trials.items():
        (folder / f"trial_{trial_id}").mkdir()
        text = "".join(json.dumps(_row(e)) + "\n" for e in rows)
        (folder / f"trial_{trial_id}" / RESULT_FILE).write_text(text)
        runtime = {"last_result": _row(last) if last else {}}
        data.append([json.dumps({"trial_id": trial_id}), json.dumps(runtime)])
    state = {"trial_data": data, "runner_data": {}}
    (folder / "experiment_state-2026-11-30_00-00-00.json").write_text(json.dumps(state))


def _epochs(path: Path) -> list[int]:
    return [json.loads(line)["training_iteration"] for line in path.read_text().splitlines()]


CASES = {
    "lost": ([1], 2),  # the driver died after the checkpoint of epoch 2, before its row
    "whole": ([1, 2], 2),  # nothing lost
    "ahead": ([1, 2], 1),  # an older experiment state: the rows are the newer record
    "gap": ([1], 3),  # more than the last row lost: not invented
    "new": ([], 0),  # no epoch yet
}


def test_only_the_one_lost_last_row_is_found(tmp_path: Path) -> None:
    _experiment(tmp_path / "multi", CASES)
    assert list(lost_last_rows(tmp_path / "multi")) == ["trial_lost"]
    assert lost_last_rows(tmp_path / "nothing") == {}


def test_a_local_experiment_gets_its_row_back_once(tmp_path: Path) -> None:
    folder = tmp_path / "multi"
    _experiment(folder, CASES)
    before = {p.parent.name: p.read_text() for p in folder.glob(f"*/{RESULT_FILE}")}
    loc = storage.resolve(str(folder))
    assert restore_rows(folder, loc) == ["trial_lost"]
    assert _epochs(folder / "trial_lost" / RESULT_FILE) == [1, 2]
    assert json.loads((folder / "trial_lost" / RESULT_FILE).read_text().splitlines()[-1]) == _row(2)
    assert restore_rows(folder, loc) == []  # idempotent: a second resume adds nothing
    for name, text in before.items():
        if name != "trial_lost":
            assert (folder / name / RESULT_FILE).read_text() == text


def test_whole_lines_keeps_every_complete_row_of_a_copy_cut_anywhere() -> None:
    """For every point a copy of a log can stop at, the mended text is the original's longest
    prefix of whole rows: nothing complete is lost, nothing partial is kept."""
    rows = [json.dumps(_row(e)) for e in (1, 2, 3)]
    logs = {RESULT_FILE: rows, PROGRESS_FILE: ["training_iteration,score", "1,0.1", "2,0.2"]}
    for name, lines in logs.items():
        text = "".join(line + "\n" for line in lines)
        for cut in range(len(text) + 1):
            mended = whole_lines(text[:cut], name)
            assert text.startswith(mended) and (mended == "" or mended.endswith("\n"))
            whole = text[: text.rfind("\n", 0, cut) + 1]  # the rows the copy holds whole
            complete_json = name == RESULT_FILE and cut < len(text) and text[cut] == "\n"
            assert mended == (text[: cut + 1] if complete_json else whole), (name, cut)


@pytest.mark.parametrize("state_epoch", [2, 3])
def test_a_result_file_cut_mid_row_is_mended_before_ray_appends(tmp_path: Path, state_epoch: int):
    """A copy cut short in epoch 3's row: the fragment goes; the row comes back from the
    experiment state when it holds it (else the trial reports it again), and every line parses."""
    folder = tmp_path / "multi"
    _experiment(folder, {"cut": ([1, 2, 3], state_epoch)})
    path = folder / "trial_cut" / RESULT_FILE
    path.write_text(path.read_text()[:-20])  # ends with part of epoch 3's row
    progress = folder / "trial_cut" / PROGRESS_FILE
    progress.write_text("training_iteration,score\n1,0.1\n2,0.2\n3,0.")
    restore_rows(folder, storage.resolve(str(folder)))
    assert _epochs(path) == [1, 2, 3][:state_epoch]
    assert progress.read_text() == "training_iteration,score\n1,0.1\n2,0.2\n"
    whole = path.read_text()
    assert restore_rows(folder, storage.resolve(str(folder))) == []  # a second resume: as is
    assert path.read_text() == whole


@pytest.mark.parametrize("torn", [False, True])
def test_a_study_in_object_storage_is_repaired_in_the_store(tmp_path: Path, torn: bool) -> None:
    with s3_server_in_env() as s3:
        cache = tmp_path / "cache" / "multi"
        _experiment(cache, {"lost": ([1], 2), "whole": ([1, 2], 2)})
        if torn:  # a file whose last line has no newline
            path = cache / "trial_lost" / RESULT_FILE
            path.write_text(path.read_text().rstrip("\n"))
        loc = storage.resolve(s3.uri("s/multi"), s3.endpoint)
        storage.sync_up(cache, loc)
        assert restore_rows(cache, loc) == ["trial_lost"]
        stored = storage.read_text(loc.child("trial_lost", RESULT_FILE))
        assert [json.loads(line)["training_iteration"] for line in stored.splitlines()] == [1, 2]
        assert stored == (cache / "trial_lost" / RESULT_FILE).read_text()


def _states(folder: Path, trials: dict[str, tuple[str, int]], name: str = "00-00-00") -> Path:
    """An experiment state (as Ray writes it) of trials by id: (status, epoch of last result)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = [
        [
            json.dumps({"trial_id": t, "status": s}),
            json.dumps({"last_result": _row(e) if e else {}}),
        ]
        for t, (s, e) in trials.items()
    ]
    path = folder / f"experiment_state-2026-11-30_{name}.json"
    path.write_text(json.dumps({"trial_data": data, "runner_data": {}}))
    return path


def test_the_ended_trials_are_those_terminated_or_errored(tmp_path: Path) -> None:
    folder = tmp_path / "multi"
    _states(folder, {"old": ("RUNNING", 1)}, name="00-00-00")  # an older state: not read
    path = _states(
        folder,
        {
            "done": ("TERMINATED", 3),
            "failed": ("ERROR", 2),
            "early": ("TERMINATED", 0),  # stopped before its first result
            "running": ("RUNNING", 1),
            "paused": ("PAUSED", 2),
            "pending": ("PENDING", 0),
        },
        name="00-00-10",
    )
    assert ended_trials(folder) == {
        "done": (_row(3), False),
        "failed": (_row(2), True),
        "early": (None, False),
    }
    state = json.loads(path.read_text())
    state["trial_data"].append(["{not json", "{}"])  # one entry that does not parse: left out
    path.write_text(json.dumps(state))
    assert set(ended_trials(folder)) == {"done", "failed", "early"}


def test_no_readable_experiment_state_means_no_ended_trials(tmp_path: Path) -> None:
    assert ended_trials(tmp_path / "missing") == {}
    path = _states(tmp_path / "multi", {"done": ("TERMINATED", 3)})
    path.write_text(path.read_text()[:40])  # torn mid-write
    assert ended_trials(tmp_path / "multi") == {}

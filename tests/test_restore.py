"""Which checkpoint a trial continues from, and when it starts over (trainables.trainable).

Real checkpoints of a real trial state, in a local folder and in pyarrow's in-memory filesystem
(the path object storage takes: Ray downloads each candidate); no Ray cluster. The end-to-end
cases (kill -9, truncated files, S3) are in test_faults and test_remote.
"""

from __future__ import annotations

import time

import pytest
import torch
from ray import tune

from analysis.results import load_study
from names import RESTARTED, UNREADABLE
from study.progress import StudyReporter
from study.run import restarted_line
from trainables.checkpoint import save_checkpoint
from trainables.config import TrialConfig
from trainables.data import prepare_tasks
from trainables.engine import setup
from trainables.trainable import NoReadableCheckpoint, checkpoint_candidates, restore_newest

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data():
    splits = prepare_tasks(["cifar10"], "synthetic", ".", limit_train=32, limit_val=16)
    return {name: task.search() for name, task in splits.items()}


def _config(**kw) -> TrialConfig:
    return TrialConfig.from_dict({"tasks": ["cifar10"], "max_epochs": 3, "batch_size": 16, **kw})


@pytest.fixture(scope="module")
def trial(data, tmp_path_factory):
    """A trial folder with the checkpoints of epochs 1 and 2 (Ray's names), as a trial leaves
    them; each test works on a copy."""
    folder = tmp_path_factory.mktemp("trial")
    torch.manual_seed(0)
    state = setup(_config(), data, CPU)
    for epoch in (1, 2):
        state.epoch = epoch  # what restore looks at; training it changes nothing here
        save_checkpoint(folder / f"checkpoint_00000{epoch - 1}", state.state_dict())
    return folder


def _copy(trial, tmp_path):
    import shutil

    return shutil.copytree(trial, tmp_path / "trial_x")


def _truncate(folder) -> None:
    path = folder / "state.pt"
    path.write_bytes(path.read_bytes()[:200])  # as a full disk or a copy cut short leaves it


def test_a_truncated_newest_checkpoint_falls_back_to_the_older_one(trial, data, tmp_path, capsys):
    folder = _copy(trial, tmp_path)
    _truncate(folder / "checkpoint_000001")
    state = setup(_config(), data, CPU)
    newest = tune.Checkpoint.from_directory(str(folder / "checkpoint_000001"))
    used, _ = restore_newest(state, newest, CPU)
    assert used.path.endswith("checkpoint_000000") and state.epoch == 1
    assert "checkpoint_000001/state.pt is unreadable" in capsys.readouterr().out


def test_ray_s_older_snapshot_gives_way_to_a_newer_readable_checkpoint(trial, data, tmp_path):
    folder = _copy(trial, tmp_path)
    state = setup(_config(), data, CPU)
    older = tune.Checkpoint.from_directory(str(folder / "checkpoint_000000"))
    used, _ = restore_newest(state, older, CPU)
    assert used.path.endswith("checkpoint_000001") and state.epoch == 2


def test_no_readable_checkpoint_names_every_file_and_leaves_the_state_fresh(trial, data, tmp_path):
    folder = _copy(trial, tmp_path)
    for name in ("checkpoint_000000", "checkpoint_000001"):
        _truncate(folder / name)
    (folder / "checkpoint_000002").mkdir()  # a folder whose state.pt never arrived
    state = setup(_config(), data, CPU)
    fresh = {k: v.clone() for k, v in state.model.state_dict().items()}
    newest = tune.Checkpoint.from_directory(str(folder / "checkpoint_000001"))
    with pytest.raises(NoReadableCheckpoint) as exc:
        restore_newest(state, newest, CPU)
    # ranked by the epoch each holds (the empty folder has none: last)
    assert exc.value.files == [
        "checkpoint_000001/state.pt",
        "checkpoint_000000/state.pt",
        "checkpoint_000002/state.pt",
    ]
    assert "missing" in str(exc.value) and "unreadable" in str(exc.value)
    assert state.epoch == 0
    assert all(torch.equal(fresh[k], v) for k, v in state.model.state_dict().items())


def test_a_readable_checkpoint_that_does_not_fit_is_a_failure_not_a_restart(trial, data, tmp_path):
    """Unreadable means damaged files; a checkpoint that loads but does not fit the trial is a
    bug, raised as it is (Ray retries it, then marks the trial errored)."""
    folder = _copy(trial, tmp_path)
    state = setup(_config(), data, CPU)
    payload = state.state_dict()
    payload["model"] = {"not": torch.zeros(1)}
    save_checkpoint(folder / "checkpoint_000003", {**payload, "epoch": 3})
    newest = tune.Checkpoint.from_directory(str(folder / "checkpoint_000003"))
    with pytest.raises(Exception) as exc:
        restore_newest(state, newest, CPU)
    assert not isinstance(exc.value, NoReadableCheckpoint)


def test_checkpoints_in_object_storage_are_found_ranked_and_named_by_their_stored_path(trial, data):
    """The same decision over a pyarrow filesystem other than the local one (object storage):
    siblings are listed in the store, each candidate is downloaded, and a message names the
    stored file, not the download."""
    from pyarrow import fs as pafs

    store = pafs._MockFileSystem()
    pafs.copy_files(str(trial), "bucket/s/multi/trial_x", destination_filesystem=store)
    with store.open_output_stream("bucket/s/multi/trial_x/checkpoint_000001/state.pt") as f:
        f.write(b"\0" * 200)
    newest = tune.Checkpoint("bucket/s/multi/trial_x/checkpoint_000001", filesystem=store)
    ranked = [c.path.rsplit("/", 1)[1] for c in checkpoint_candidates(newest)]
    assert ranked == ["checkpoint_000001", "checkpoint_000000"]
    state = setup(_config(), data, CPU)
    used, _ = restore_newest(state, newest, CPU)
    assert used.path == "bucket/s/multi/trial_x/checkpoint_000000" and state.epoch == 1
    with store.open_output_stream("bucket/s/multi/trial_x/checkpoint_000000/state.pt") as f:
        f.write(b"\0" * 200)
    with pytest.raises(NoReadableCheckpoint, match="bucket/s/multi/trial_x/checkpoint_000000"):
        restore_newest(setup(_config(), data, CPU), newest, CPU)


def _ray_trial(trial_id: str, row: dict):
    from ray.tune.experiment import Trial

    trial = Trial("__fake", config={}, trial_id=trial_id, stub=True)
    trial.update_last_result({"training_iteration": 5, "epoch": 1, **row})
    trial.set_status("RUNNING")
    return trial


def test_the_progress_output_names_a_restarted_trial_and_its_file_once(monkeypatch):
    monkeypatch.setattr("study.progress._CONTEXT", None)  # no study's plan left by another test
    reporter = StudyReporter("multi")
    reporter.setup(total_samples=2)
    now = {RESTARTED: True, UNREADABLE: "checkpoint_000001/state.pt", "wall_time": time.time()}
    before = {**now, "wall_time": time.time() - 3600}  # said by the run that restarted it
    trials = [_ray_trial("a", now), _ray_trial("b", before), _ray_trial("c", {RESTARTED: False})]
    text = "\n".join(reporter.lines(trials, done=False))
    assert "trial_a restarted from epoch 0: no readable checkpoint" in text
    assert "multi/trial_a/checkpoint_000001/state.pt" in text
    assert "trial_b" not in text and "trial_c" not in text
    assert "trials 3/2: 3 running" in text  # epochs counted as trained, not as reports
    assert "restarted" not in "\n".join(reporter.lines(trials, done=False))  # once


def test_a_restarted_trial_reads_as_its_last_report_of_each_epoch_and_is_counted(tmp_path):
    """A restart repeats epochs in result.json: the later report of each wins, the trial
    counts its epochs once, and the summary counts the restarted trial."""
    import json

    from fake_study import make_fake_study

    study = make_fake_study(tmp_path / "s", spaces=("multi",))
    trial = sorted((study / "multi").glob("trial_*"))[0]
    rows = [json.loads(line) for line in (trial / "result.json").read_text().splitlines()]
    again = [{**r, "score": 0.99, RESTARTED: True} for r in rows]
    with open(trial / "result.json", "a") as f:
        f.writelines(json.dumps(r) + "\n" for r in again)
    loaded = load_study(study)
    row = loaded.trials.set_index("trial_id").loc[trial.name.removeprefix("trial_")]
    assert row[RESTARTED] and row["epochs"] == len(rows) and row["best_score"] == 0.99
    assert loaded.trials[RESTARTED].sum() == 1
    assert restarted_line(loaded) == [
        "Restarted from epoch 0 (no readable checkpoint): 1 search trial(s), 0 confirmation run(s)"
    ]

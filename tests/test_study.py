"""End to end through the CLI with real Ray and real Optuna (slow: each run starts Ray)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import optuna
import pytest
from helpers import experiment_rows, run_cli

from names import BASELINE_MULTI
from trainables.checkpoint import checkpoint_epoch

pytestmark = pytest.mark.slow
pytest_plugins = ["interrupted_study"]


@pytest.fixture(scope="module")
def resumed_study(interrupted_study) -> dict:
    """A multi study of 3 trials interrupted (Ctrl-C) once a trial finished and another was
    mid-way, then resumed with `--resume` (the session's `interrupted_study`, whose terminal
    output test_progress checks)."""
    assert interrupted_study["first_status"] == 130, interrupted_study["first_out"][-3000:]
    assert interrupted_study["status"] == 0, interrupted_study["out"][-3000:]
    return interrupted_study


def test_resume_finishes_exactly_the_requested_trials(resumed_study):
    after, trials = resumed_study["after"], resumed_study["trials"]
    assert len(after) == trials
    assert all([r["epoch"] for r in rows] == [1, 2, 3] for rows in after.values()), after
    storage = f"sqlite:///{resumed_study['dir'] / 'optuna.db'}"
    study = optuna.load_study(study_name="multi", storage=storage)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == trials, states
    assert optuna.trial.TrialState.RUNNING not in states, states
    # each epoch's validation score reached Optuna (its dashboard draws learning curves)
    for trial in study.trials:
        rows = after[f"trial_{trial.user_attrs['ray_trial_id']}"]
        assert trial.intermediate_values == {r["epoch"]: r["score"] for r in rows}


def test_finished_trials_are_not_rerun_and_interrupted_ones_continue(resumed_study):
    before, after = resumed_study["before"], resumed_study["after"]
    for name, rows in before.items():
        if len(rows) == 3:  # finished before the interruption: untouched
            assert after[name] == rows
    continued = [
        name
        for name, rows in after.items()
        if 1 <= len(before.get(name, [])) < 3
        and rows[len(before[name])]["pid"] != rows[0]["pid"]  # a new process after resume
        and rows[len(before[name])]["epoch"] == len(before[name]) + 1  # from its checkpoint
    ]
    assert continued, (before, after)


def test_study_directory_holds_everything(resumed_study):
    study_dir = resumed_study["dir"]
    assert json.loads((study_dir / "study.json").read_text())["space"] == "multi"
    assert json.loads((study_dir / "tasks.json").read_text())["fashionrgb"]["synthetic"] is True
    experiment = study_dir / "multi"
    assert (experiment / "tuner.pkl").exists()
    assert list(experiment.glob("experiment_state-*.json"))
    for trial in experiment.glob("trial_*"):
        assert list(trial.glob("checkpoint_*/state.pt")), trial
        assert list(trial.glob("events.out.tfevents.*")), "no TensorBoard event file"
        config = json.loads((trial / "trial_config.json").read_text())
        assert config["tasks"] == ["cifar10", "fashionrgb"] and config["data"] == "synthetic"
    storage = f"sqlite:///{study_dir / 'optuna.db'}"
    first = optuna.load_study(study_name="multi", storage=storage).trials[0]
    assert first.params == BASELINE_MULTI  # the baseline is enqueued first


def test_ctrl_c_prints_the_exact_resume_command(resumed_study):
    expected = f"Resume it with: python -m study.run --resume {resumed_study['dir']}"
    assert expected in resumed_study["first_out"]


def test_summary_follows_the_tables_rules(resumed_study):
    """One top trial per space (the one a confirmation retrains, at its peak epoch) and the
    checkpoint of that epoch."""
    out, study_dir, trials = resumed_study["out"], resumed_study["dir"], resumed_study["trials"]
    assert "(synthetic data)" in out
    line = next(
        x for x in out.splitlines() if x.strip().startswith(f"multi: {trials} trials; top:")
    )
    found = re.search(
        r"trial (\w+), validation score [\d.]+% at its last epoch, peak [\d.]+% at epoch (\d+)",
        line,
    )
    assert found, line
    trial, epoch = found.groups()
    model = Path(line.split("its model: ")[1])
    assert model.parent == study_dir / "multi" / f"trial_{trial}"
    assert checkpoint_epoch(model) == int(epoch)
    assert f"python -m analysis.table {study_dir}" in out
    assert f"python -m analysis.report {study_dir}" in out


def _intervals(experiment: Path) -> list[tuple[float, float]]:
    spans = []
    for rows in experiment_rows(experiment).values():
        assert rows, "a trial reported nothing"
        spans.append((rows[0]["wall_time"] - rows[0]["time_this_iter_s"], rows[-1]["wall_time"]))
    return spans


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    live = best = 0
    for _, delta in events:
        live += delta
        best = max(best, live)
    return best


def test_fractional_gpus_pack_trials(tmp_path):
    """A Ray instance declaring 1 logical GPU: 0.25 per trial runs 4 trials at once. (One share
    is enough end to end: how many fit is Ray's arithmetic, `progress.concurrent_slots` mirrors
    it for the plan and is unit-tested.)"""
    fraction, expected = 0.25, 4
    out = run_cli(
        "--space",
        "single-fashionrgb",
        "--data",
        "synthetic",
        "--confirm-seeds",
        "0",
        "--num-samples",
        "4",
        "--max-epochs",
        "1",  # a trial's span starts with its set-up: one epoch shows them overlapping
        "--limit-train",
        "384",
        "--limit-val",
        "64",
        "--batch-size",
        "32",
        "--scheduler",
        "fifo",
        "--num-gpus",
        "1",
        "--num-cpus",
        "4",
        "--gpus-per-trial",
        str(fraction),
        "--cpus-per-trial",
        "0.5",
        "--storage",
        str(tmp_path),
        "--name",
        "g",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    spans = _intervals(tmp_path / "g" / "single-fashionrgb")
    assert len(spans) == 4
    assert _max_overlap(spans) == expected, spans
    config = json.loads(
        next((tmp_path / "g" / "single-fashionrgb").glob("*/params.json")).read_text()
    )
    assert config["gpus"] == fraction

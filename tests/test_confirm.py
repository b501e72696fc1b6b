"""The confirmation stage's plan, on a hand-made study: which runs it retrains, with which seeds
and configurations, and that a plan, once written, is the plan a resumed study runs."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest
from fake_study import FR, MULTI_SPACE, C, make_fake_study
from helpers import SMALL_STUDY, experiment_rows, kill_tree, run_cli, start_cli, wait_for

from names import (
    BASELINE_LABEL,
    BASELINE_MULTI,
    BASELINE_SINGLE,
    CONFIRM_PLAN_FILE,
    EVAL_SPLIT,
    TEST,
    confirm_experiment,
    eval_metric,
    single_space,
    tuned_label,
)
from study.confirm import load_or_write_plan, plan_runs
from study.settings import StudySettings, trial_constants


@pytest.fixture()
def settings(tmp_path) -> StudySettings:
    study = make_fake_study(tmp_path)
    return StudySettings(
        name=study.name,
        space="all",
        storage=str(tmp_path),
        confirm_top=2,
        confirm_seeds=3,
        seed=7,
        data="synthetic",
        max_epochs=3,
    )


def test_every_space_retrains_the_baseline_and_its_top_k_with_new_seeds(settings):
    plan = plan_runs(settings)
    assert list(plan) == [single_space(C), single_space(FR), MULTI_SPACE]
    for space, runs in plan.items():
        labels = [r["label"] for r in runs]
        assert labels == [BASELINE_LABEL] * 3 + [tuned_label(1)] * 3 + [tuned_label(2)] * 3
        assert [r["seed"] for r in runs] == [8, 9, 10] * 3  # never the search's seed 7
        assert all(r["config"]["seed"] == r["seed"] and r["space"] == space for r in runs)
        baseline = BASELINE_MULTI if space == MULTI_SPACE else BASELINE_SINGLE
        for run in runs[:3]:
            assert run["source_trial"] is None
            assert run["config"] == {
                **trial_constants(settings, space),
                **baseline,
                "seed": run["seed"],
            }


def test_tuned_runs_are_the_best_by_validation_score_never_diverged_or_errored(settings):
    plan = plan_runs(settings)
    sources = {s: [r["source_trial"] for r in runs[3::3]] for s, runs in plan.items()}
    # known numbers of the fake study: mF (0.863 at epoch 2) beats mG (0.77) and mE (0.715);
    # mK diverged and mJ errored are never chosen
    assert sources == {
        single_space(C): ["aaother", "zzbase"],
        single_space(FR): ["fother", "fbase"],
        MULTI_SPACE: ["mF", "mG"],
    }
    tuned = plan[MULTI_SPACE][3]["config"]
    params = json.loads((settings.study_dir / MULTI_SPACE / "trial_mF" / "params.json").read_text())
    assert tuned == {**params, "seed": 8}  # the search trial's own configuration


def test_a_written_plan_is_the_plan_a_resume_runs(settings):
    first = load_or_write_plan(settings)
    assert json.loads((settings.study_dir / CONFIRM_PLAN_FILE).read_text()) == first
    changed = StudySettings(**{**settings.__dict__, "confirm_top": 1, "confirm_seeds": 1})
    assert load_or_write_plan(changed) == first  # read back, never planned again


def _one_run_done_one_midway(snapshot: dict) -> bool:
    lengths = [len(rows) for rows in snapshot.values()]
    return 2 in lengths and 1 in lengths


@pytest.mark.slow
def test_a_kill_during_confirmation_resumes_exactly_the_planned_runs(tmp_path):
    """kill -9 of the driver and Ray mid-confirmation, then --resume: every planned run ends
    once with its test figures; no search trial runs again."""
    space = single_space(FR)
    args = [
        *SMALL_STUDY,
        "--space",
        space,
        "--num-samples",
        "1",
        "--max-epochs",
        "2",
        "--limit-train",
        "500",
        "--confirm-seeds",
        "2",
        "--storage",
        str(tmp_path),
    ]
    with open(tmp_path / "killed.log", "w") as log:
        proc = start_cli(*args, "--name", "k", cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        confirm = tmp_path / "k" / confirm_experiment(space)
        wait_for(lambda: _one_run_done_one_midway(experiment_rows(confirm)), proc)
        kill_tree(proc)
    search_before = experiment_rows(tmp_path / "k" / space)
    plan = json.loads((tmp_path / "k" / CONFIRM_PLAN_FILE).read_text())[space]
    out = run_cli("--resume", str(tmp_path / "k"), cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert experiment_rows(tmp_path / "k" / space) == search_before  # the search: untouched
    runs = experiment_rows(confirm)
    assert len(runs) == len(plan) == 4
    for rows in runs.values():
        assert sorted({r["epoch"] for r in rows}) == [1, 2]
        last = rows[-1]
        assert last[EVAL_SPLIT] == TEST and eval_metric("acc", FR, TEST) in last
    ran = sorted(
        (p["run"]["label"], p["run"]["seed"])
        for p in (json.loads((t / "params.json").read_text()) for t in confirm.glob("trial_*"))
    )
    assert ran == sorted((r["label"], r["seed"]) for r in plan)
    for rows in search_before.values():  # the search never saw test data
        assert all(not any(k.startswith("test_") for k in r) for r in rows)
    again = run_cli("--resume", str(tmp_path / "k"), cwd=tmp_path)  # all done: no Ray started
    assert again.returncode == 0 and "complete: nothing to do" in again.stdout
    assert f"python -m analysis.table {tmp_path / 'k'}" in again.stdout
    assert "Ray" not in again.stderr and experiment_rows(confirm) == runs
    for trial in (tmp_path / "k").glob("*/trial_*"):  # Ray's CSV: the same keys in every row
        assert len(pd.read_csv(trial / "progress.csv")) >= 1  # raises on a ragged row

"""The confirmation stage's plan, on a hand-made study: which runs it retrains, with which seeds
and configurations, and that a plan, once written, is the plan a resumed study runs (a real
kill mid-confirmation and its resume: test_faults' killed study)."""

from __future__ import annotations

import json

import pytest
from fake_study import FR, MULTI_SPACE, C, make_fake_study

from names import (
    BASELINE_LABEL,
    BASELINE_MULTI,
    BASELINE_SINGLE,
    CONFIRM_PLAN_FILE,
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

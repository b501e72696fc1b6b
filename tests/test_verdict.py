"""Tests of the verdict (`analysis.verdict`): the card's numbers re-derived from the raw files
of hand-made studies, with and without confirmation runs, and the CLI summary's per-space lines
agreeing with the card."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from fake_study import (
    best_row,
    make_confirmed_study,
    make_fake_study,
    make_three_task_study,
    raw_results,
    raw_runs,
    t_interval,
)
from scipy import stats

from analysis.results import load_study
from analysis.verdict import SCORE_ROW, format_params, search_picks, verdict_data
from names import BASELINE_MULTI, BASELINE_SINGLE, MULTI_SPACE, TEST, TUNED_BEST, VALIDATION


def _is_baseline(params: dict) -> bool:
    base = BASELINE_MULTI if len(params["tasks"]) > 1 else BASELINE_SINGLE
    return all(params.get(k) == v for k, v in base.items() if k != "tasks")


@pytest.mark.parametrize("make", [make_fake_study, make_three_task_study])
def test_search_verdict_matches_raw_files(tmp_path: Path, make) -> None:
    """Without confirmation runs: per space, among the trials that ran all their epochs (not
    stopped early, diverged or errored), the one with the highest score at its last epoch, its
    accuracies at its peak epoch, against the baseline trial's peak epoch."""
    folder = make(tmp_path)
    raw = raw_results(folder)
    data = verdict_data(load_study(folder))
    assert set(data["split"]) == {VALIDATION} and data["missing"].isna().all()
    for space, rows in data.groupby("space"):
        trials = {t: r for (s, t), r in raw.items() if s == space and r["rows"]}
        ok = {t: r for t, r in trials.items() if not r["errored"] and not r["rows"][-1]["diverged"]}
        ran_all = {t: r for t, r in ok.items() if len(r["rows"]) >= r["params"]["max_epochs"]}
        best = max(ran_all, key=lambda t: ran_all[t]["rows"][-1]["score"])
        base = next(t for t, r in trials.items() if _is_baseline(r["params"]))
        assert set(rows["trial_id"]) == {best}
        won, against = best_row(ok[best]["rows"]), best_row(trials[base]["rows"])
        assert set(rows["epoch"]) == {won["epoch"]}
        for r in rows.to_dict("records"):
            key = "score" if r["task"] == SCORE_ROW else f"acc/{r['task']}"
            assert r["value"] == pytest.approx(won[key])
            assert r["baseline_value"] == pytest.approx(against[key])
            assert r["change_pts"] == pytest.approx((won[key] - against[key]) * 100)
        assert format_params({"lr": won["config"]["lr"]}) in rows["params"].iloc[0]


def test_test_verdict_matches_raw_runs(tmp_path: Path) -> None:
    """With confirmation runs: tuned-1 against the baseline per space and task, the mean test
    accuracy over seeds with its t-interval, and Welch's difference, from the raw runs."""
    folder = make_confirmed_study(tmp_path, seeds=3)
    runs = raw_runs(folder)
    data = verdict_data(load_study(folder))
    assert set(data["split"]) == {TEST} and len(data) == 4  # 1 + 1 + 2 tasks
    for r in data.to_dict("records"):
        acc = {
            label: [
                x["rows"][-1][f"{TEST}_acc/{r['task']}"]
                for (space, _), x in runs.items()
                if space == r["space"] and x["run"]["label"] == label
            ]
            for label in (TUNED_BEST, "baseline")
        }
        mean, low, high = t_interval(acc[TUNED_BEST])
        assert (r["value"], r["ci_low"], r["ci_high"]) == pytest.approx((mean, low, high))
        base = t_interval(acc["baseline"])
        assert (r["baseline_value"], r["baseline_ci_low"]) == pytest.approx(base[:2])
        welch = stats.ttest_ind(
            np.array(acc[TUNED_BEST]) * 100, np.array(acc["baseline"]) * 100, equal_var=False
        )
        assert r["change_pts"] == pytest.approx((mean - base[0]) * 100)
        assert r["p_value"] == pytest.approx(welch.pvalue)
        source = {x["run"]["source_trial"] for (s, _), x in runs.items() if s == r["space"]}
        assert r["trial_id"] in source and r["n"] == 3


def test_cli_summary_agrees_with_the_card(tmp_path: Path) -> None:
    """`study.run`'s per-space lines name the card's trial, score and change."""
    from study.run import best_search_trials

    study = load_study(make_fake_study(tmp_path))
    lines = best_search_trials(study)
    data = verdict_data(study)
    for pick, line in zip(search_picks(study), lines, strict=True):
        rows = data[data["space"] == pick.space]
        assert line.startswith(f"{pick.space}: {pick.trials} trials")
        assert f"trial {rows['trial_id'].iloc[0]}," in line
        assert f"{pick.change_pts:+.1f} points" in line
        if pick.space == MULTI_SPACE:
            score = rows.set_index("task").loc[SCORE_ROW]
            assert f"{score['value']:.2%}" in line
            assert pick.change_pts == pytest.approx(score["change_pts"])
    assert not math.isnan(search_picks(study)[0].change_pts)

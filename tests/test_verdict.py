"""Tests of the verdict (`analysis.verdict`): the card's numbers re-derived from the raw files
of hand-made studies, with and without confirmation runs, and the CLI summary's per-space lines
agreeing with the card."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np
import pytest
from fake_study import (
    CONFIRM_ACC,
    C,
    add_confirmation,
    best_row,
    holm_ref,
    make_all_errored_study,
    make_confirmed_study,
    make_fake_study,
    make_three_task_study,
    planned_runs,
    raw_results,
    raw_runs,
    run_trial_id,
    t_interval,
    write_run,
)
from scipy import stats

from analysis.results import load_study
from analysis.stats import mde
from analysis.verdict import SCORE_ROW, format_params, search_picks, verdict, verdict_data, wording
from analysis.verdict_render import headline, render_html, render_text
from names import (
    BASELINE_MULTI,
    BASELINE_SINGLE,
    BUDGETS,
    MULTI_SPACE,
    SETTINGS_FILE,
    TEST,
    TUNED_BEST,
    VALIDATION,
    confirm_experiment,
    single_space,
)


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
    accuracy over seeds with its t-interval, and the paired difference over the seeds (the
    same seeds in both arms), Holm-corrected over every row of the card, from the raw runs."""
    folder = make_confirmed_study(tmp_path, seeds=3)
    runs = raw_runs(folder)
    data = verdict_data(load_study(folder))
    assert set(data["split"]) == {TEST} and len(data) == 4  # 1 + 1 + 2 tasks
    for r in data.to_dict("records"):
        acc = {
            label: {
                x["run"]["seed"]: x["rows"][-1][f"{TEST}_acc/{r['task']}"]
                for (space, _), x in runs.items()
                if space == r["space"] and x["run"]["label"] == label
            }
            for label in (TUNED_BEST, "baseline")
        }
        tuned, base = ([a[s] for s in sorted(a)] for a in (acc[TUNED_BEST], acc["baseline"]))
        mean, low, high = t_interval(tuned)
        assert (r["value"], r["ci_low"], r["ci_high"]) == pytest.approx((mean, low, high))
        base_ref = t_interval(base)
        assert (r["baseline_value"], r["baseline_ci_low"]) == pytest.approx(base_ref[:2])
        ref = stats.ttest_rel(np.array(tuned) * 100, np.array(base) * 100)  # seeds 1, 2, 3
        ci = ref.confidence_interval(0.95)
        assert r["change_pts"] == pytest.approx((mean - base_ref[0]) * 100)
        assert r["test"] == "paired t" and r["p_value"] == pytest.approx(ref.pvalue)
        assert (r["change_ci_low"], r["change_ci_high"]) == pytest.approx((ci.low, ci.high))
        source = {x["run"]["source_trial"] for (s, _), x in runs.items() if s == r["space"]}
        assert r["trial_id"] in source and r["n"] == 3
    assert data["p_holm"].tolist() == pytest.approx(holm_ref(data["p_value"].tolist()))


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


# ---------------------------------------------------------------------------------------------
# the wording: better / worse only when Holm says so; else no detectable difference, with MDE


def test_wording_cases() -> None:
    assert wording(2.0, 0.01, 1.0, "points") == ("better", "better (Holm p=0.010)")
    assert wording(-2.0, 0.01, 1.0, "points") == ("worse", "worse (Holm p=0.010)")
    assert wording(-2.0, 0.20, 6.54, "points") == (
        "no detectable difference",
        "no detectable difference (Holm p=0.200; could have detected ≥ 6.5 points at 80% power)",
    )
    # a raw p below 0.05 is not enough: the Holm-adjusted one decides
    assert wording(3.0, 0.05, 2.0, "%")[0] == "no detectable difference"
    assert wording(-5.0, math.nan, math.nan, "points", "all 3 seed pairs differ equally") == (
        "undetermined",
        "undetermined (all 3 seed pairs differ equally: no interval, no p-value)",
    )
    assert wording(math.nan, math.nan, math.nan, "points", "missing (no run)")[0] == "missing"


def _confirmed(tmp_path: Path, monkeypatch, acc: dict | None = None, budget: str | None = None):
    """A confirmed fake study, (space, label) accuracies of CONFIRM_ACC replaced by `acc`."""
    for key, value in (acc or {}).items():
        monkeypatch.setitem(CONFIRM_ACC, key, value)
    folder = make_confirmed_study(tmp_path, seeds=3)
    if budget:
        settings = json.loads((folder / SETTINGS_FILE).read_text())
        (folder / SETTINGS_FILE).write_text(json.dumps({**settings, "budget": budget}))
    return load_study(folder)


def test_a_significantly_worse_tuned_configuration_is_called_worse(tmp_path, monkeypatch) -> None:
    """tuned-1 of single-cifar10 10-11 points below its baseline at every seed: "worse", in the
    data, the space's line, the card and the CLI text; never "winner" nor "better"."""
    worse = {(single_space(C), TUNED_BEST): {C: [0.60, 0.61, 0.63]}}
    study = _confirmed(tmp_path, monkeypatch, worse)
    v = verdict(study)
    row = v.tuned.set_index("space").loc[single_space(C)]
    assert row["change_pts"] == pytest.approx(-32 / 3) and row["p_holm"] < 0.05
    assert row["verdict"] == "worse" and row["says"].startswith("worse (Holm p=")
    assert headline(v.tuned[v.tuned["space"] == single_space(C)]) == (
        f"{TUNED_BEST} worse than the baseline on {C}"
    )
    text, card = render_text(v, False), render_html(v, False)
    line = next(x for x in text.splitlines() if x.startswith(f"  {single_space(C)}:"))
    assert "worse" in line and "better" not in line
    assert "winner" not in text.lower() and "winner" not in card.lower()
    assert f"{single_space(C)}: {TUNED_BEST} worse than the baseline on {C}" in html.unescape(card)


def test_better_and_no_detectable_difference_with_its_mde(tmp_path, monkeypatch) -> None:
    """The fake study: every tuned-1 beats its baseline (better); baseline multi - single on
    cifar10 (-4, -2, -6 points) is not significant after Holm: no detectable difference, and
    the difference it could have detected is `mde` of those differences' SD."""
    v = verdict(_confirmed(tmp_path, monkeypatch))
    assert (v.tuned["verdict"] == "better").all()
    q = v.question.set_index(["label", "task"])
    row = q.loc[("baseline", C)]
    expected, _ = mde(float(np.std([-4.0, -2.0, -6.0], ddof=1)), 3)
    assert row["verdict"] == "no detectable difference" and row["p_holm"] >= 0.05
    assert row["mde"] == pytest.approx(expected)
    assert f"could have detected ≥ {expected:.1f} points at 80% power" in row["says"]
    assert q.loc[("tuned-1", C), "verdict"] == "undetermined"  # -5 points at every seed
    assert q.loc[("baseline", "Δm"), "verdict"] == "worse"  # -4.5 %, Holm p = 0.041
    assert q.loc[("baseline", "Δm"), "unit"] == "%"
    assert set(q["test"].dropna()) == {"paired t"}
    tested = v.question[v.question["p_value"].notna()]  # 5: tuned cifar10 has no test
    assert len(tested) == 5 and v.question["p_holm"].notna().sum() == 5
    assert tested["p_holm"].tolist() == pytest.approx(holm_ref(tested["p_value"].tolist()))


def test_the_question_comes_first_and_names_the_budget(tmp_path, monkeypatch) -> None:
    study = _confirmed(tmp_path, monkeypatch, budget="total")
    v = verdict(study)
    text, card = render_text(v, study.synthetic), html.unescape(render_html(v, study.synthetic))
    for out in (text, card):
        assert out.index("Multi-task vs single-task") < out.index("Tuned (tuned-1) vs")
        assert f"budget total: {BUDGETS['total']}" in out and "Holm over 5 tests" in out
    from study.run import summary

    lines = summary(study.path).splitlines()
    assert lines[0] == "Verdict" and lines[2].startswith("Multi-task vs single-task (test")
    assert any(x.startswith("  baseline cifar10: -4.0 points") for x in lines[:10])
    old = _confirmed(tmp_path / "old", monkeypatch)  # no budget recorded: epochs
    assert f"budget epochs: {BUDGETS['epochs']}" in render_text(verdict(old), False)


def test_a_failed_seed_is_never_hidden_behind_better(tmp_path, monkeypatch) -> None:
    """Seed 3 of multi's tuned-1 diverged; tuned-1 still beats the baseline on both tasks: the
    word stays, and the phrase and the space's line say which seeds did not count."""
    folder = make_fake_study(tmp_path, eval_split=VALIDATION)
    plan = planned_runs(folder, MULTI_SPACE, 3, 1)
    lost = next(r for r in plan if r["label"] == TUNED_BEST and r["seed"] == 3)
    add_confirmation(folder, skip=[(MULTI_SPACE, run_trial_id(lost))])
    write_run(folder / confirm_experiment(MULTI_SPACE), "lost", lost, None, epochs=2, diverged=True)
    v = verdict(load_study(folder))
    multi = v.tuned[v.tuned["space"] == MULTI_SPACE]
    for r in multi.to_dict("records"):
        assert r["verdict"] == "better" and r["test"] == "Welch"  # seeds 1, 2 against 1, 2, 3
        assert r["says"].endswith("not every seed counted: tuned multi-task: n=2 of 3, 1 diverged")
    assert "(not every seed counted: tuned multi-task: n=2 of 3, 1 diverged)" in headline(multi)
    q = v.question[v.question["label"] == TUNED_BEST]
    assert q["says"].str.contains("tuned multi-task: n=2 of 3, 1 diverged").all()
    others = v.tuned[v.tuned["space"] != MULTI_SPACE]
    assert not others["says"].str.contains("not every seed").any()


def test_validation_only_makes_no_significance_claims(tmp_path: Path) -> None:
    study = load_study(make_fake_study(tmp_path))
    v = verdict(study)
    assert v.question.empty and v.no_test and set(v.tuned["verdict"]) == {"search pick"}
    text = render_text(v, study.synthetic)
    assert "no answer yet" in text and "one seed, no significance test" in text
    assert "cifar10: multi-task 80.6% vs single-task 88.7% (-8.1 points)" in text
    for word in ("better", "worse", "no detectable difference", "Holm", "winner"):
        assert word not in text, word
    assert "best search trial: trial mF (validation, optimistic" in render_html(v, True)
    errored = verdict(load_study(make_all_errored_study(tmp_path)))
    assert "    none: no task has both a single- and a multi-task search figure" in render_text(
        errored, True
    )

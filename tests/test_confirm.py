"""The confirmation stage's plan, on a hand-made study: which runs it retrains, with which seeds
and configurations, and that a plan, once written, is the plan a resumed study runs (a real
kill mid-confirmation and its resume: test_faults' killed study). Selection matches what is
confirmed (the last epoch, trials that ran all their epochs), and `--confirm-seeds auto`'s
rule, plan growth and record (a real auto study: test_study's)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from fake_study import (
    FR,
    MULTI_SPACE,
    OTHER,
    C,
    make_confirmed_study,
    make_fake_study,
    write_settings,
    write_trial,
)
from scipy import stats

from analysis.results import load_study
from analysis.search_table import search_comparison
from analysis.table import comparison
from errors import UserError
from names import (
    AUTO_SEEDS,
    BASELINE_LABEL,
    BASELINE_MULTI,
    BASELINE_SINGLE,
    CONFIRM_PLAN_FILE,
    CONFIRM_ROUNDS_FILE,
    SETTINGS_FILE,
    single_space,
    tuned_label,
)
from study import rounds
from study.checks import check_confirmation
from study.plan import (
    confirm_seeds,
    grow_plan,
    load_or_write_plan,
    plan_for_seeds,
    plan_runs,
    short_notes,
)
from study.rounds import Decision, decide, projected_seeds
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


# ---------------------------------------------------------------------------------------------
# selection = what is confirmed: the last epoch, among trials that ran all their epochs


def _decaying_study(root: Path) -> Path:
    """A `multi` study (ASHA, 3 epochs) whose trials' peaks and last epochs disagree: `peaky`
    peaks at epoch 1 and decays, `steady` climbs to a lower peak at its last epoch, `stopped`
    has the highest score of all but ASHA stopped it at epoch 1, `cut` was interrupted."""
    study = root / "decay"
    write_settings(study, space=MULTI_SPACE)
    d = study / MULTI_SPACE
    write_trial(d, "base", {**BASELINE_MULTI}, [{C: 0.5, FR: 0.5}] * 3)
    write_trial(d, "peaky", {**OTHER}, [{C: 0.9, FR: 0.9}, {C: 0.7, FR: 0.7}, {C: 0.6, FR: 0.6}])
    steady = {**OTHER, "lr": 0.02}
    write_trial(d, "steady", steady, [{C: 0.7, FR: 0.7}, {C: 0.75, FR: 0.75}, {C: 0.8, FR: 0.8}])
    write_trial(d, "stopped", {**OTHER, "lr": 0.03}, [{C: 0.95, FR: 0.95}])  # ASHA's rung 1
    write_trial(d, "cut", {**OTHER, "lr": 0.04}, [{C: 0.9, FR: 0.9}, {C: 0.92, FR: 0.92}])
    return study


def test_tuned_1_is_the_best_at_the_last_epoch_and_a_stopped_trial_is_never_planned(tmp_path):
    study = _decaying_study(tmp_path)
    settings = StudySettings(name=study.name, storage=str(tmp_path), confirm_top=5, max_epochs=3)
    trials = load_study(study).trials
    assert dict(zip(trials["trial_id"], trials["stop_reason"]))["stopped"] == "early-stopped"
    plan = plan_runs(settings)[MULTI_SPACE]
    tuned = {r["label"]: r["source_trial"] for r in plan if r["label"] != BASELINE_LABEL}
    # last-epoch scores: steady 0.8 > peaky 0.6 > base 0.5; stopped (0.95 at epoch 1) and cut
    # (interrupted at epoch 2) never ran all their epochs
    assert tuned == {tuned_label(1): "steady", tuned_label(2): "peaky", tuned_label(3): "base"}
    notes = short_notes({MULTI_SPACE: plan}, 5)
    assert len(notes) == 1 and "3 tuned configuration(s) are confirmed, not the 5" in notes[0]
    assert short_notes({MULTI_SPACE: plan}, 3) == []
    # the search table shows that same trial, at its peak, and says so
    search = search_comparison(load_study(study))
    assert set(search.frame["multi_trial"]) == {f"{MULTI_SPACE}/trial_steady"}
    assert any("its peak, not the last epoch that was confirmed" in n for n in search.notes)


# ---------------------------------------------------------------------------------------------
# --confirm-seeds auto: the rule, the plan's growth, the record


def test_the_rule_stops_on_width_or_at_the_maximum_never_before():
    narrow = decide([0.4, 1.0], 3, 1.0, 6)
    assert narrow == Decision(True, "every multi - single half-width is at most 1", 3)
    stop = decide([0.4, 1.3], 6, 1.0, 6)
    assert stop.stop and "--max-seeds 6" in stop.reason and stop.next_seeds == 6
    assert decide([], 3, 1.0, 6).stop  # nothing to measure
    go_on = decide([0.4, 1.3], 3, 1.0, 10)
    assert not go_on.stop and 3 < go_on.next_seeds <= 10
    assert decide([0.4, None], 3, 1.0, 10).next_seeds == 4  # no interval: one more seed
    assert decide([math.nan], 5, 1.0, 10).next_seeds == 6


@pytest.mark.parametrize("widest", [1.05, 1.5, 2.5, 4.0, 40.0])
@pytest.mark.parametrize("seeds", [3, 4, 7])
def test_projected_seeds_are_the_fewest_that_reach_the_target_at_the_observed_spread(widest, seeds):
    target, most = 1.0, 12
    n = projected_seeds(widest, seeds, target, most)
    assert seeds < n <= most

    def projected(m: int) -> float:  # half-width at m seeds, the spread as observed
        t = stats.t.ppf(0.975, m - 1) / stats.t.ppf(0.975, seeds - 1)
        return widest * t * math.sqrt(seeds / m)

    assert n == most or projected(n) <= target
    assert n == seeds + 1 or projected(n - 1) > target


def test_the_plan_grows_by_whole_rounds_of_the_same_seeds(settings):
    plan = plan_runs(settings)  # 3 seeds: 8, 9, 10
    five = grow_plan(plan, confirm_seeds(settings, 5))
    assert grow_plan(five, confirm_seeds(settings, 5)) == five  # growing again changes nothing
    for space, runs in five.items():
        assert runs[:3] == plan[space][:3]  # what ran stays as it was
        by_label: dict[str, list[int]] = {}
        for run in runs:
            by_label.setdefault(run["label"], []).append(run["seed"])
            assert run["config"]["seed"] == run["seed"] and run["space"] == space
        assert all(seeds == [8, 9, 10, 11, 12] for seeds in by_label.values())
        first = {r["label"]: r for r in plan[space]}
        for run in runs:  # each configuration's own, every seed
            config = {k: v for k, v in run["config"].items() if k != "seed"}
            base = {k: v for k, v in first[run["label"]]["config"].items() if k != "seed"}
            assert config == base and run["source_trial"] == first[run["label"]]["source_trial"]


def _auto(settings: StudySettings) -> StudySettings:
    return StudySettings(
        **{**settings.__dict__, "confirm_seeds": AUTO_SEEDS, "confirm_top": 1, "max_seeds": 6}
    )


def test_a_resume_continues_the_rounds_exactly(settings):
    """A driver killed after it recorded round 1's decision, before it grew the plan: the
    resume's plan and round 2's runs are the uninterrupted driver's."""
    auto = _auto(settings)
    plan = load_or_write_plan(auto)
    record = rounds.load_or_start(auto)
    assert record["rounds"] == [{"round": 1, "seeds": 3}] and rounds.load_or_start(auto) == record
    record["rounds"][0].update(decision="add", reason="...")
    record["rounds"].append({"round": 2, "seeds": 5})
    (auto.study_dir / CONFIRM_ROUNDS_FILE).write_text(json.dumps(record))  # then killed
    resumed = plan_for_seeds(auto, load_or_write_plan(auto), 5)
    assert json.loads((auto.study_dir / CONFIRM_PLAN_FILE).read_text()) == resumed
    assert resumed == grow_plan(plan, confirm_seeds(auto, 5))
    assert [rounds.round_seed_range(record, k) for k in (1, 2)] == [range(0, 3), range(3, 5)]
    assert not rounds.finished(rounds.read(auto.study_dir))


def test_auto_needs_both_kinds_of_space_and_sane_numbers(tmp_path, capsys):
    """`python -m study.confirm`'s flags are checked as `study.run`'s (test_cli): exit 2 and
    one line, before Ray, and study.json is left as it was."""
    from study.confirm import main

    study = make_fake_study(tmp_path)
    before = (study / SETTINGS_FILE).read_text()
    cases = [
        (["--confirm-seeds", AUTO_SEEDS, "--max-seeds", "2"], "--max-seeds must be at least 3"),
        (["--confirm-seeds", AUTO_SEEDS, "--target-halfwidth", "-1"], "must be a positive"),
        (["--confirm-seeds", "3", "--max-seeds", "6"], "applies only with --confirm-seeds auto"),
    ]
    for argv, message in cases:
        assert main([str(study), *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert (study / SETTINGS_FILE).read_text() == before
    only_multi = StudySettings(name="x", space=MULTI_SPACE, confirm_seeds=AUTO_SEEDS)
    with pytest.raises(UserError, match="needs single- and multi-task spaces"):
        check_confirmation(only_multi)


def test_the_plan_block_states_the_rule_and_a_later_round_reports_as_its_space(tmp_path):
    from study import progress
    from study.checks import settings_from_args
    from study.cli import build_parser
    from study.progress import _stage, plan_text, study_stages, watch

    argv = ["--quick", "--space", "all", "--storage", str(tmp_path), "--confirm-seeds", "auto"]
    settings = settings_from_args(build_parser().parse_args([*argv, "--max-seeds", "6"]))
    tasks = {n: {"train_size": 100, "val_size": 10, "test_size": 20} for n in (C, FR)}
    plan = plan_text(settings, tasks, slots=2)
    assert "2 runs (baseline, top 1) x 3 seeds (auto: more, up to 6, until every" in plan
    assert "half-width is at most 1 points)" in plan
    watch(settings, tasks, 2)
    first = next(s for s in study_stages(settings, tasks) if s.name == "confirm-multi")
    later = _stage(progress._CONTEXT, "confirm-multi-round-2", 6)
    assert (later.name, later.trials, later.epochs, later.cost) == (
        "confirm-multi-round-2",
        6,
        first.epochs,
        first.cost,
    )


def test_the_rule_measures_the_tables_intervals_of_the_planned_comparisons(tmp_path):
    """`rounds.measure` reads the table's own multi - single intervals, and leaves out a
    comparison one side never planned (a space with no tuned-1: no trial ran all its epochs)."""
    study = make_confirmed_study(tmp_path, seeds=3, top_k=1)
    diffs = comparison(load_study(study)).differences.set_index(["task", "label"])
    widths = {(w["task"], w["label"]): w["halfwidth"] for w in rounds.measure(study)}
    assert set(widths) == {(t, lb) for t in (C, FR) for lb in (BASELINE_LABEL, tuned_label(1))}
    for key, width in widths.items():
        row = diffs.loc[key]
        if pd.isna(row["ci_low"]):  # the paired differences do not vary: no interval to measure
            assert width is None, key
            continue
        assert width == pytest.approx((row["ci_high"] - row["ci_low"]) / 2) and width > 0
    assert any(w is not None for w in widths.values())
    plan = json.loads((study / CONFIRM_PLAN_FILE).read_text())
    cut = single_space(C)
    plan[cut] = [r for r in plan[cut] if r["label"] == BASELINE_LABEL]
    (study / CONFIRM_PLAN_FILE).write_text(json.dumps(plan))
    for folder in (study / f"confirm-{cut}").glob(f"trial_{tuned_label(1)}_s*"):
        shutil.rmtree(folder)
    widths = {(w["task"], w["label"]) for w in rounds.measure(study)}
    assert widths == {(C, BASELINE_LABEL), (FR, BASELINE_LABEL), (FR, tuned_label(1))}

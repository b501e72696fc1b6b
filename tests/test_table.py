"""Tests of the comparison table (`analysis.table`, `analysis.search_table`): the test figures of
hand-made studies re-derived from their raw files with scipy here (fast), the search-stage
section, studies without confirmation runs, and the real study's table (slow)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_study import (
    ALL_SPACES,
    CONFIRM_ACC,
    FR,
    C,
    add_confirmation,
    best_row,
    holm_ref,
    make_all_errored_study,
    make_confirmed_study,
    make_fake_study,
    planned_runs,
    raw_results,
    raw_runs,
    run_trial_id,
    t_interval,
    write_run,
)
from helpers import run_module
from real_study import REAL_COMPARED, REAL_TASKS
from scipy import stats

from analysis.arms import arm_by_seed
from analysis.cells import format_acc, format_delta_m, format_difference
from analysis.results import load_study
from analysis.search_table import delta_m, format_change
from analysis.stats import paired
from analysis.table import comparison, csv_frame, to_csv, to_html, to_markdown, to_text
from names import (
    MULTI_SPACE,
    SETTINGS_FILE,
    TEST,
    VALIDATION,
    baseline,
    confirm_experiment,
    single_space,
)

pytest_plugins = ["real_study"]

ROWS = {  # table row -> (label, fashion)
    "baseline single-task": ("baseline", "single"),
    "baseline multi-task": ("baseline", "multi"),
    "tuned single-task": ("tuned-1", "single"),
    "tuned multi-task": ("tuned-1", "multi"),
}
ACC, DIFF, STEPS, IMAGES = (
    "test accuracy",
    "multi - single (points)",
    "optimizer steps",
    "images seen",
)


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    return make_fake_study(tmp_path)


@pytest.fixture
def confirmed(tmp_path: Path) -> Path:
    return make_confirmed_study(tmp_path, seeds=3, top_k=2)


# ---------------------------------------------------------------------------------------------
# re-deriving the numbers from the raw files, independently of analysis/


def raw_seeds(study_dir: Path, task: str, label: str, fashion: str) -> dict[int, dict]:
    """Per seed: the test accuracy at the last row and the steps summed over the rows of the
    finished runs of one table row."""
    space = single_space(task) if fashion == "single" else MULTI_SPACE
    out = {}
    for (s, _), r in raw_runs(study_dir).items():
        run, rows = r["run"], r["rows"]
        last = rows[-1] if rows else {}
        if s != space or run["label"] != label or f"test_acc/{task}" not in last:
            continue
        if r["errored"] or last["epoch"] != run["config"]["max_epochs"]:
            continue
        steps = sum(row[f"steps/{task}"] for row in rows)
        batch = run["config"]["batch_size"]
        out[run["seed"]] = {
            "acc": last[f"test_acc/{task}"],
            "steps": steps,
            "images": steps * batch,
        }
    return out


def welch_ref(multi: list[float], single: list[float]) -> tuple[float, float, float]:
    """scipy's Welch interval and p-value; NaN where undefined (an arm < 2, no spread)."""
    if min(len(multi), len(single)) < 2 or (np.ptp(multi) == 0 and np.ptp(single) == 0):
        return math.nan, math.nan, math.nan
    ref = stats.ttest_ind(multi, single, equal_var=False)
    ci = ref.confidence_interval(0.95)
    return ci.low, ci.high, ref.pvalue


def diff_ref(multi: dict, single: dict) -> tuple[str, tuple[float, float, float], float]:
    """The test, interval, p-value and SE x sqrt(n) (paired) of multi - single: scipy's paired
    t over seed pairs when both have the same seeds, else Welch's (`welch_ref`)."""
    if set(multi) != set(single):
        return "Welch", welch_ref(list(multi.values()), list(single.values())), math.nan
    seeds = sorted(multi)
    x, y = np.array([multi[s] for s in seeds]), np.array([single[s] for s in seeds])
    if len(seeds) < 2 or np.ptp(x - y) == 0:
        return "paired t", (math.nan,) * 3, math.nan
    ref = stats.ttest_rel(x, y)
    ci = ref.confidence_interval(0.95)
    return "paired t", (ci.low, ci.high, ref.pvalue), float(np.std(x - y, ddof=1))


def power_at(mde: float, sd: float, n: int) -> float:
    """The paired t-test's power (two-sided 0.05) at a true difference `mde` (noncentral t)."""
    crit, nc = stats.t.ppf(0.975, n - 1), mde / (sd / math.sqrt(n))
    lower = stats.nct.cdf(-crit, n - 1, nc)  # negligible here; scipy gives NaN for some nc
    return stats.nct.sf(crit, n - 1, nc) + np.nan_to_num(lower)


def check_table_against_raw(study_dir: Path, table) -> None:
    """Every shown cell, difference and Δm of `table` re-derived from the raw files."""
    summary = table.summary.set_index(["task", "row"])
    cells = table.cells.set_index(["task", "row"])
    diffs = table.differences.set_index(["task", "label"])
    tasks = list(dict.fromkeys(table.summary["task"]))
    for task in tasks:
        for row, (label, fashion) in ROWS.items():
            seeds = raw_seeds(study_dir, task, label, fashion)
            mean, low, high = t_interval([v["acc"] for v in seeds.values()])
            got = summary.loc[(task, row)]
            assert got["n"] == len(seeds) and got["mean"] == pytest.approx(mean)
            clipped = bool(low < 0 or high > 1)  # an accuracy: shown within [0, 1], marked
            assert got["clipped"] == clipped
            if clipped:
                low, high = max(0.0, low), min(1.0, high)
            assert (got["ci_low"], got["ci_high"]) == pytest.approx((low, high), nan_ok=True)
            assert got["steps"] == pytest.approx(np.mean([v["steps"] for v in seeds.values()]))
            assert got["images"] == pytest.approx(np.mean([v["images"] for v in seeds.values()]))
            assert cells.loc[(task, row), IMAGES] == f"{got['images']:,.0f}"
            if (high - low) / 2 >= 0.01 and not clipped:  # NaN (no interval) compares False
                expected = f"{mean * 100:.1f}% ± {(high - low) / 2 * 100:.1f} (n={len(seeds)})"
                assert cells.loc[(task, row), ACC] == expected
        for label in ("baseline", "tuned-1"):
            arms = {
                f: {s: v["acc"] * 100 for s, v in raw_seeds(study_dir, task, label, f).items()}
                for f in ("multi", "single")
            }
            d = diffs.loc[(task, label)]
            diff = np.mean(list(arms["multi"].values())) - np.mean(list(arms["single"].values()))
            assert d["diff_pts"] == pytest.approx(diff)
            test, ref, sd = diff_ref(arms["multi"], arms["single"])
            assert d["test"] == test
            assert (d["ci_low"], d["ci_high"], d["p_value"]) == pytest.approx(ref, nan_ok=True)
            if not math.isnan(sd):
                assert power_at(d["mde"], sd, len(arms["multi"])) == pytest.approx(0.8, abs=1e-6)
    for label, kind in (("baseline", "baseline"), ("tuned-1", "tuned")):
        per_seed = {}
        raw = {
            (t, f): raw_seeds(study_dir, t, label, f) for t in tasks for f in ("single", "multi")
        }
        for seed in set.intersection(*(set(v) for v in raw.values())):
            ratios = [
                (raw[(t, "multi")][seed]["acc"] - raw[(t, "single")][seed]["acc"])
                / raw[(t, "single")][seed]["acc"]
                for t in tasks
            ]
            per_seed[seed] = np.mean(ratios) * 100
        mean, low, high = t_interval(list(per_seed.values()))
        dm = table.delta_m.set_index("label").loc[label]
        assert dm["delta_m_pct"] == pytest.approx(mean) and dm["n"] == len(per_seed)
        assert (dm["ci_low"], dm["ci_high"]) == pytest.approx((low, high), nan_ok=True)
        if not math.isnan(low):
            ref = stats.ttest_1samp(list(per_seed.values()), 0.0).pvalue
            assert dm["p_value"] == pytest.approx(ref)
        assert cells.loc[("Δm", kind), DIFF].startswith(f"{mean:+.1f}%")
    # one Holm family: the shown labels' multi - single tests and the Δm tests
    shown = table.differences[table.differences["label"].isin(["baseline", "tuned-1"])]
    family = pd.concat([shown[["p_value", "p_holm"]], table.delta_m[["p_value", "p_holm"]]])
    family = family[family["p_value"].notna()]
    assert family["p_holm"].tolist() == pytest.approx(holm_ref(family["p_value"].tolist()))
    assert table.differences.loc[~table.differences.index.isin(shown.index), "p_holm"].isna().all()


# ---------------------------------------------------------------------------------------------
# the test figures (fast)


def test_cell_formats() -> None:
    nan = math.nan
    assert format_acc(0.806, 3, 0.794, 0.818) == "80.6% ± 1.2 (n=3)"
    assert format_acc(0.806, 1, nan, nan, "1 seed") == "80.6% (1 seed, no interval)"
    assert format_acc(0.806, 3, nan, nan, "all 3 seeds equal") == (
        "80.6% (n=3, all 3 seeds equal: no interval)"
    )
    assert format_acc(0.806, 5, 0.8058, 0.8062) == "80.6% ± 0.02 (n=5)"  # never "± 0.0"
    assert format_difference(-2.5, -5.1, 0.1, 0.0601, None) == "-2.5 ± 2.6 (p=0.060)"
    assert format_difference(-2.5, -3, -2, 0.0001, None).endswith("(p<0.001)")
    assert format_difference(-2.5, nan, nan, nan, "no spread in either arm") == (
        "-2.5 (no spread in either arm: no interval, p undefined)"
    )
    assert format_delta_m(-3.1, 3, -5.0, -1.2, None) == "-3.1% ± 1.9 (n=3 seed pairs)"
    assert format_difference(-2.5, -5.1, 0.1, 0.0601, None, "paired t", 0.18, 3.44) == (
        "-2.5 ± 2.6 (paired t, p=0.060, Holm p=0.180, MDE 3.4)"
    )
    assert format_delta_m(-3.1, 3, -5.0, -1.2, None, 0.021, 0.084, 2.41) == (
        "-3.1% ± 1.9 (n=3 seed pairs, p=0.021, Holm p=0.084, MDE 2.4)"
    )
    assert format_acc(0.806, 2, 0.794, 0.818, planned=3, not_counted="1 diverged") == (
        "80.6% ± 1.2 (n=2 of 3, 1 diverged)"
    )
    assert format_acc(0.583, 2, 0.161, 1.0, clipped=True) == "58.3% [16.1%, 100.0%*] (n=2)"
    assert format_acc(0.02, 2, 0.0, 0.3, clipped=True) == "2.0% [0.0%*, 30.0%] (n=2)"


def test_table_cells_from_raw_files(confirmed: Path) -> None:
    table = comparison(load_study(confirmed))
    assert table.no_test is None
    assert table.cells["row"].tolist()[:4] == list(ROWS)
    check_table_against_raw(confirmed, table)
    cells = table.cells.set_index(["task", "row"])
    # the known numbers of fake_study.CONFIRM_ACC, written out once
    assert cells.loc[(C, "baseline single-task"), ACC] == "72.0% ± 5.0 (n=3)"
    # paired over seeds 1-3 (differences -4, -2, -6 points); Welch's was "-4.0 ± 4.5 (p=0.070)"
    assert cells.loc[(C, "baseline multi-task"), DIFF] == (
        "-4.0 ± 5.0 (paired t, p=0.074, Holm p=0.148, MDE 6.5)"
    )
    assert cells.loc[(C, "baseline single-task"), DIFF] == ""  # the difference is on multi rows
    assert cells.loc[(C, "baseline single-task"), STEPS] == "48"
    assert not (table.cells == "").all(axis=None)
    assert "tuned-2" not in " ".join(table.cells["row"])  # K > 1: only in the CSV
    text = to_text(table)
    assert "synthetic" in text.splitlines()[0] and "72.0% ± 5.0 (n=3)" in text
    assert "split: test" in text and "last epoch" in text and "seeds 1, 2, 3 " in text
    assert "search trial multi/trial_mF" in text and "pairing seed r" in text


def test_csv_has_every_seed_and_names_its_split(confirmed: Path) -> None:
    table = comparison(load_study(confirmed))
    csv = pd.read_csv(io.StringIO(to_csv(table)))
    pd.testing.assert_frame_equal(
        csv, pd.read_csv(io.StringIO(csv_frame(table).to_csv())).iloc[:, 1:]
    )
    seeds = csv[csv["record"] == "seed"]
    assert len(seeds) == 2 * 3 * 3 + 3 * 3 * 2  # single runs x 1 task + multi runs x 2 tasks
    assert (seeds["split"] == TEST).all() and (seeds["selection"] == "last epoch").all()
    assert set(seeds["label"]) == {"baseline", "tuned-1", "tuned-2"}
    for r in seeds.itertuples():
        raw = raw_runs(confirmed)[(r.space, r.trial_id)]
        assert r.value == raw["rows"][-1][f"test_acc/{r.task}"] and r.seed == raw["run"]["seed"]
    search = csv[csv["record"] == "search"]
    assert (search["split"] == VALIDATION).all() and len(search) == 2 * 4
    means = csv[csv["record"] == "mean"].set_index(["task", "row"])
    assert means.loc[(C, "tuned-2 multi-task"), "value"] == pytest.approx(0.78)
    assert set(csv["record"]) == {"seed", "mean", "multi - single", "delta_m", "search"}
    assert (csv["data"] == "synthetic").all()


def test_one_seed_says_no_interval(tmp_path: Path) -> None:
    table = comparison(load_study(make_confirmed_study(tmp_path, seeds=1)))
    cells = table.cells.set_index(["task", "row"])
    assert cells.loc[(C, "baseline single-task"), ACC] == "70.0% (1 seed, no interval)"
    assert cells.loc[(C, "baseline multi-task"), DIFF] == (
        "-4.0 (1 seed pair: no interval, p undefined)"  # the same seed in both arms: paired
    )
    assert cells.loc[("Δm", "tuned"), DIFF].endswith("(1 seed pair, no interval)")
    text = to_text(table)
    assert "± 0" not in text and "±0" not in text


def test_missing_rows_say_why(tmp_path: Path) -> None:
    """A task without a single-task space, runs that errored, runs not started yet."""
    study = make_fake_study(tmp_path, spaces=(single_space(C), MULTI_SPACE), eval_split=VALIDATION)
    plan = planned_runs(study, MULTI_SPACE, 3, 1)
    skip = [(MULTI_SPACE, run_trial_id(r)) for r in plan if r["label"] == "tuned-1"]
    add_confirmation(study, spaces=(single_space(C), MULTI_SPACE), skip=skip[:2])
    for run in plan:
        if run["label"] == "tuned-1" and run["seed"] < 3:
            write_run(
                study / confirm_experiment(MULTI_SPACE),
                f"x{run['seed']}",
                run,
                None,
                epochs=1,
                errored=True,
            )
    table = comparison(load_study(study))
    cells = table.cells.set_index(["task", "row"])
    assert cells.loc[(FR, "baseline single-task"), ACC] == "missing (no single-fashionrgb run)"
    assert cells.loc[(FR, "baseline multi-task"), DIFF] == "n/a (no single-fashionrgb run)"
    assert cells.loc[("Δm", "baseline"), DIFF] == "n/a (no single-fashionrgb run)"
    # seed 3; seeds 1 and 2 errored: counted, and said
    assert cells.loc[(C, "tuned multi-task"), ACC] == "81.0% (n=1 of 3, 2 errored, no interval)"
    assert any(
        "multi tuned-1: not counted: seed 1 errored, seed 2 errored" in n for n in table.notes
    )
    assert cells.loc[(C, "baseline multi-task"), ACC] == "68.0% ± 5.0 (n=3)"


def test_no_run_finished_and_none_started(tmp_path: Path) -> None:
    study = make_fake_study(tmp_path, eval_split=VALIDATION)
    plan = {s: planned_runs(study, s, 2, 1) for s in ALL_SPACES}
    skip = [(s, run_trial_id(r)) for s, runs in plan.items() for r in runs if s == single_space(FR)]
    skip += [(MULTI_SPACE, run_trial_id(r)) for r in plan[MULTI_SPACE] if r["label"] == "tuned-1"]
    add_confirmation(study, seeds=2, skip=skip)
    for run in plan[MULTI_SPACE][2:]:
        write_run(
            study / confirm_experiment(MULTI_SPACE),
            f"e{run['seed']}",
            run,
            None,
            epochs=1,
            errored=True,
        )
    cells = comparison(load_study(study)).cells.set_index(["task", "row"])
    assert cells.loc[(FR, "tuned single-task"), ACC] == (
        "missing (single-fashionrgb: no confirmation run started yet)"
    )
    assert cells.loc[(C, "tuned multi-task"), ACC] == (
        "missing (tuned-1 of multi: no run finished; 2 errored)"
    )


def test_a_failed_seed_is_counted_and_said(tmp_path: Path) -> None:
    """Seed 3 of the multi-task tuned-1 run diverged: its cells say "n=2 of 3, 1 diverged", the
    CSV has the planned and failed seeds, and multi - single, its seeds now differing, is
    Welch's test, named so."""
    study = make_fake_study(tmp_path, eval_split=VALIDATION)
    plan = planned_runs(study, MULTI_SPACE, 3, 1)
    lost = next(r for r in plan if r["label"] == "tuned-1" and r["seed"] == 3)
    add_confirmation(study, skip=[(MULTI_SPACE, run_trial_id(lost))])
    write_run(study / confirm_experiment(MULTI_SPACE), "lost", lost, None, epochs=2, diverged=True)
    table = comparison(load_study(study))
    cells = table.cells.set_index(["task", "row"])
    assert cells.loc[(C, "tuned multi-task"), ACC] == "81.0% ± 12.7 (n=2 of 3, 1 diverged)"
    assert cells.loc[(FR, "tuned multi-task"), ACC].endswith("(n=2 of 3, 1 diverged)")
    assert cells.loc[(C, "tuned single-task"), ACC] == "86.0% ± 2.5 (n=3)"
    diff = table.differences.set_index(["task", "label"]).loc[(C, "tuned-1")]
    assert diff["test"] == "Welch" and "(Welch, p=" in cells.loc[(C, "tuned multi-task"), DIFF]
    assert diff["p_value"] == pytest.approx(welch_ref([80, 82], [85, 87, 86])[2])
    assert table.delta_m.set_index("label").loc["tuned-1", "seeds"] == "1,2"
    csv = pd.read_csv(io.StringIO(to_csv(table)))
    means = csv[csv["record"] == "mean"].set_index(["task", "row"])
    counts = means[["n", "planned", "failed"]].astype(int)
    assert counts.loc[(C, "tuned multi-task")].tolist() == [2, 3, 1]
    assert counts.loc[(C, "tuned single-task")].tolist() == [3, 3, 0]
    assert "multi tuned-1: not counted: seed 3 diverged" in " ".join(table.notes)


def test_an_interval_past_100_percent_is_clipped(tmp_path: Path, monkeypatch) -> None:
    """Two seeds at 90 % and 99 %: the t-interval (1 df) reaches past 100 %; the cell shows
    the clipped bounds, marked, the CSV the clipped values and `clipped`, a note says why."""
    monkeypatch.setitem(CONFIRM_ACC, (single_space(FR), "tuned-1"), {FR: [0.90, 0.99]})
    table = comparison(load_study(make_confirmed_study(tmp_path, seeds=2)))
    low = 0.945 - stats.t.ppf(0.975, 1) * stats.sem([0.90, 0.99])
    cells = table.cells.set_index(["task", "row"])
    assert cells.loc[(FR, "tuned single-task"), ACC] == f"94.5% [{low:.1%}, 100.0%*] (n=2)"
    csv = pd.read_csv(io.StringIO(to_csv(table)))
    means = csv[csv["record"] == "mean"]
    assert means["ci_low"].min() >= 0 and means["ci_high"].max() <= 1
    means = means.assign(clipped=means["clipped"].astype(bool))
    clipped = means[means["clipped"]]  # fashionrgb's baseline (88 %, 90 %) is clipped too
    assert (FR, "tuned single-task") in set(zip(clipped["task"], clipped["row"]))
    assert ((clipped["ci_low"] == 0) | (clipped["ci_high"] == 1)).all()
    assert not means.loc[~means["clipped"], "ci_high"].eq(1).any()
    assert any(n.startswith("*: the interval's bound is clipped") for n in table.notes)
    for text in (to_text(table), to_markdown(table), to_html(table)):
        assert "100.0%*" in text and "± 57" not in text
    from analysis.verdict import verdict
    from analysis.verdict_render import render_text

    card = verdict(load_study(tmp_path / "fake"))
    row = card.tuned.set_index("space").loc[single_space(FR)]
    assert row["ci_high"] == 1 and row["clipped"]
    assert f"94.5% [{low:.1%}, 100.0%*]" in render_text(card, True)


def test_runs_without_a_recorded_seed_are_not_paired() -> None:
    """A run whose seed is unknown pairs with nothing: its comparison is Welch's."""
    arm = lambda seeds: pd.DataFrame(  # noqa: E731
        {"seed": pd.array(seeds, dtype="Int64"), "acc": [0.80, 0.82, 0.81]}
    )
    known, unknown = arm_by_seed(arm([1, 2, 3])), arm_by_seed(arm([1, None, 3]))
    assert known == {1: 80.0, 2: 82.0, 3: 81.0} and len(unknown) == 3
    assert paired(unknown, arm_by_seed(arm([1, None, 3]))).test == "Welch"
    assert paired(known, arm_by_seed(arm([1, 2, 3]))).test == "paired t"


def test_a_refused_row_exports_no_statistics(tmp_path: Path) -> None:
    """fashionrgb's single- and multi-task runs trained different sources: its multi - single
    rows and Δm in the CSV carry no interval, test, p-value or detectable difference."""
    study = make_confirmed_study(tmp_path)
    for params in (study / MULTI_SPACE).glob("trial_*/params.json"):
        config = json.loads(params.read_text())
        params.write_text(json.dumps({**config, "tasks": [C, "imagefolder:/data/FashionRGB"]}))
    csv = pd.read_csv(io.StringIO(to_csv(comparison(load_study(study)))))
    stat_cols = ["ci_low", "ci_high", "test", "p_value", "p_holm", "mde"]
    refused = csv[(csv["record"] == "multi - single") & (csv["task"] == FR)]
    assert len(refused) == 2 and refused["missing"].str.startswith("not compared").all()
    assert refused[stat_cols].isna().all(axis=None) and refused["value"].isna().all()
    dm = csv[csv["record"] == "delta_m"]
    assert dm[stat_cols].isna().all(axis=None) and dm["missing"].str.contains("not compared").all()
    compared = csv[(csv["record"] == "multi - single") & (csv["task"] == C)].set_index("label")
    assert (compared["test"] == "paired t").all()
    assert compared.loc["baseline", ["ci_low", "p_value", "p_holm", "mde"]].notna().all()
    # tuned: -5 points at every seed, a paired difference without spread: no interval, no p
    assert compared.loc["tuned-1", ["ci_low", "p_value", "mde"]].isna().all()


def test_study_without_confirmation_has_no_test_figures(fake: Path) -> None:
    """A study written before this change still loads; its table says it has no test figures
    and how to get them, and still shows the search section, labelled."""
    table = comparison(load_study(fake))
    assert table.cells.empty and "No test figures" in table.no_test
    assert f"python -m study.confirm {fake}" in table.no_test
    for text in (to_text(table), to_markdown(table), to_html(table)):
        assert "No test figures" in text
        assert "Search-stage selection figures (validation, optimistic)" in text
    assert "80.6% (↓ 8.1)" in to_text(table)
    csv = pd.read_csv(io.StringIO(to_csv(table)))
    assert set(csv["record"]) == {"search"} and (csv["split"] == VALIDATION).all()


def test_confirm_seeds_zero_says_so(fake: Path) -> None:
    settings = json.loads((fake / SETTINGS_FILE).read_text())
    (fake / SETTINGS_FILE).write_text(json.dumps({**settings, "confirm_seeds": 0}))
    assert "--confirm-seeds 0" in comparison(load_study(fake)).no_test


# ---------------------------------------------------------------------------------------------
# the search-stage section (fast)


def test_format_change_arrows() -> None:
    assert format_change(0.806, 0.887) == "80.6% (↓ 8.1)"
    assert format_change(0.93, 0.90) == "93.0% (↑ 3.0)"
    assert format_change(0.9, 0.9) == "90.0% (= 0.0)"
    assert format_change(0.9, None) == "90.0%"
    assert format_change(0.9, math.nan) == "90.0%"


def test_delta_m() -> None:
    value = delta_m({"a": 0.806, "b": 0.92}, {"a": 0.887, "b": 0.95})
    assert value == pytest.approx(((0.806 - 0.887) / 0.887 + (0.92 - 0.95) / 0.95) / 2 * 100)
    assert delta_m({"a": 0.5}, {"a": 0.5}) == 0.0
    assert math.isnan(delta_m({"a": 0.5, "b": 0.5}, {"a": 0.5}))  # a missing baseline
    assert math.isnan(delta_m({"a": 0.5}, {"a": math.nan}))


def test_search_section(fake: Path) -> None:
    """The best validation numbers: best trial by score at its best epoch (never per-task
    maxima from different trials), labelled as optimistic selection figures."""
    search = comparison(load_study(fake)).search
    assert search.title.startswith("Search-stage selection figures (validation, optimistic)")
    cells = search.cells.set_index("task")
    assert cells.loc["cifar10", "single-task (best)"] == "88.7%"
    assert cells.loc["cifar10", "multi-task (best by score)"] == "80.6% (↓ 8.1)"
    assert cells.loc["fashionrgb", "multi-task (best by score)"] == "92.0% (↓ 3.0)"
    assert cells.loc["cifar10", "baseline single-task"] == "70.0%"
    assert cells.loc["cifar10", "baseline multi-task"] == "60.0% (↓ 10.0)"
    expected = ((0.806 - 0.887) / 0.887 + (0.92 - 0.95) / 0.95) / 2 * 100
    assert search.delta_m == pytest.approx(expected)
    assert cells.loc["Δm", "multi-task (best by score)"] == "-6.1%"
    frame = search.frame.set_index("task")
    assert frame.loc["cifar10", "multi_trial"] == "multi/trial_mF"
    assert frame.loc["cifar10", "baseline_single_trial"] == "single-cifar10/trial_zzbase"
    assert any("optimistic" in n and "validation" in n for n in search.notes)
    md = to_markdown(comparison(load_study(fake)))
    assert "| cifar10 | 88.7% | 80.6% (↓ 8.1) |" in md


def test_all_errored_study(tmp_path: Path) -> None:
    study = make_all_errored_study(tmp_path)
    loaded = load_study(study)
    assert (loaded.trials["stop_reason"] == "errored").all()
    table = comparison(loaded)
    cells = table.search.cells.set_index("task").to_dict("index")
    assert cells["cifar10"]["multi-task (best by score)"] == "missing (multi: all trials errored)"
    assert cells["cifar10"]["single-task (best)"] == "missing (single-cifar10: all trials errored)"
    assert cells["fashionrgb"]["single-task (best)"] == "missing (no single-fashionrgb run)"
    assert any("all 2 trials errored" in n for n in table.search.notes)
    assert not any("nan" in n for n in table.search.notes + table.notes)


def test_only_one_space(tmp_path: Path) -> None:
    study = make_fake_study(tmp_path / "one", spaces=(MULTI_SPACE,))
    cells = comparison(load_study(study)).search.cells.set_index("task")
    assert cells.loc["cifar10", "single-task (best)"] == "missing (no single-cifar10 run)"
    assert cells.loc["cifar10", "multi-task (best by score)"] == "80.6%"  # no invented change
    assert cells.loc["Δm", "multi-task (best by score)"].startswith("n/a")
    proc = run_module("analysis.table", str(study))
    assert proc.returncode == 0 and "missing (no single-fashionrgb run)" in proc.stdout


def test_cli_formats(confirmed: Path) -> None:
    proc = run_module("analysis.table", str(confirmed), "--format", "html")
    assert proc.returncode == 0 and '<table class="comparison">' in proc.stdout
    proc = run_module("analysis.table", str(confirmed), "--format", "markdown")
    assert "| cifar10 | baseline single-task | 72.0% ± 5.0 (n=3) |" in proc.stdout


# ---------------------------------------------------------------------------------------------
# one real study through the real CLI (slow)


@pytest.mark.slow
def test_real_table_matches_raw_results(real_study: Path) -> None:
    """The test figures of the 3-task study (its `all`: a single-task space per task and a
    3-task multi) re-derived from the raw result files of confirm-<space>/, the search section
    from the search trials'."""
    study = load_study(real_study)
    assert study.spaces == [*(single_space(t) for t in REAL_TASKS), MULTI_SPACE]
    assert study.space_tasks[MULTI_SPACE] == REAL_TASKS
    table = comparison(study)
    assert table.no_test is None and "synthetic" not in table.title
    assert list(dict.fromkeys(table.summary["task"])) == list(REAL_TASKS)
    assert table.differences["missing"].isna().all()  # every task's source agrees: compared
    tasks_json = json.loads((real_study / "tasks.json").read_text())
    assert sorted(tasks_json) == sorted(REAL_TASKS)
    assert all(tasks_json[t]["fingerprint"] in " ".join(table.notes) for t in REAL_TASKS)
    check_table_against_raw(real_study, table)
    assert (table.summary.loc[table.summary["label"].isin(["baseline", "tuned-1"]), "n"] == 2).all()
    raw = raw_results(real_study)
    frame = table.search.frame.set_index("task")

    def top(shown: str, epoch: int) -> dict:
        """The shown trial's row at the shown epoch, checked to be the space's top trial (best
        score at the last epoch; fifo: every trial ran all its epochs) at its peak."""
        space, trial = shown.split("/trial_")
        rows = raw[(space, trial)]["rows"]
        lasts = [v["rows"][-1]["score"] for (s, _), v in raw.items() if s == space]
        assert rows[-1]["score"] == max(lasts)
        row = next(r for r in rows if r["epoch"] == epoch)
        assert row["score"] == best_row(rows)["score"]
        return row

    for task in REAL_TASKS:
        f = frame.loc[task]
        assert f["single_acc"] == top(f["single_trial"], f["single_epoch"])[f"acc/{task}"]
        assert f["multi_acc"] == top(f["multi_trial"], f["multi_epoch"])[f"acc/{task}"]
        for key in ("baseline_single", "baseline_multi"):
            space, trial = f[f"{key}_trial"].split("/trial_")
            p = raw[(space, trial)]["params"]
            assert {k: p[k] for k in baseline(len(p["tasks"]))} == baseline(len(p["tasks"]))
            b = best_row(raw[(space, trial)]["rows"])
            assert f[f"{key}_epoch"] == b["epoch"] and f[f"{key}_acc"] == b[f"acc/{task}"]
    proc = run_module("analysis.table", str(real_study), "--format", "markdown")
    assert proc.returncode == 0 and all(f"| {t} |" in proc.stdout for t in REAL_TASKS)


@pytest.mark.slow
def test_real_search_rows_have_no_test_metric(real_study: Path) -> None:
    """Search trials are scored on validation only: no row of theirs has a test key."""
    raw = raw_results(real_study)
    spaces = [*(single_space(t) for t in REAL_TASKS), MULTI_SPACE]
    assert raw and {s for s, _ in raw} == set(spaces)
    for (space, trial), r in raw.items():
        for row in r["rows"]:
            assert row["eval_split"] == VALIDATION, (space, trial)
            assert not [k for k in row if k.startswith(f"{TEST}_")], (space, trial)
    study = load_study(real_study)
    assert not [c for c in study.epochs if c.startswith(f"{TEST}_")]
    assert set(study.epochs["eval_split"]) == {VALIDATION}
    runs = raw_runs(real_study)
    # (spaces x (baseline, tuned-1) + the compared methods' runs) x seeds
    assert len(runs) == len(study.runs) == (4 * 2 + len(REAL_COMPARED)) * 2
    assert (study.runs["status"] == "finished").all()

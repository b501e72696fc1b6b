"""`--compare-methods`, the confirmation and analysis side, on a hand-made study (no Ray): the
plan retrains each compared method's best eligible search trial (deduplicated against the
top-K), and the methods section, the verdict's methods block and the methods' figures
re-derive from the raw result files (means, paired t, Holm, MDE, step time, weights)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_study import (
    FR,
    OTHER,
    C,
    holm_ref,
    make_fake_study,
    raw_runs,
    run_steps,
    t_interval,
    write_run,
    write_trial,
)
from scipy import stats

from analysis.arms import DELTA_M
from analysis.figures import methods as M
from analysis.figures import pareto_front
from analysis.methods import NOT_COMPARED, REFERENCE_CELL, method_labels
from analysis.results import load_study
from analysis.table import comparison, csv_frame, to_text
from analysis.verdict import BETTER, NO_DIFFERENCE, WORSE, verdict
from analysis.verdict_render import render_text
from names import (
    CONFIRM_PLAN_FILE,
    METHOD_WEIGHT,
    MULTI_SPACE,
    RESULT_FILE,
    SETTINGS_FILE,
    TASKS_FILE,
    TEST,
    TRIAL_PREFIX,
    TUNED_BEST,
    VALIDATION,
    config_method,
    confirm_experiment,
    eval_metric,
    method_label,
    single_space,
    task_metric,
    tuned_label,
)
from study.plan import (
    confirm_seeds,
    grow_plan,
    load_or_write_plan,
    method_plan_notes,
    plan_runs,
)
from study.settings import StudySettings

COMPARED = ("ew", "upgrad", "pcgrad", "uw", "dwa")
# multi-task search trials of each method, beside make_fake_study's (which name no method: ew;
# ew's best by last-epoch score is mF, 0.825): id -> (method, per-epoch accuracies)
SEARCH = {
    "mU1": ("upgrad", [{C: 0.7, FR: 0.8}, {C: 0.8, FR: 0.85}, {C: 0.9, FR: 0.9}]),  # tuned-1
    "mU2": ("upgrad", [{C: 0.7, FR: 0.8}, {C: 0.8, FR: 0.85}, {C: 0.8, FR: 0.85}]),
    "mP1": ("pcgrad", [{C: 0.6, FR: 0.6}, {C: 0.7, FR: 0.7}, {C: 0.7, FR: 0.7}]),
    "mP0": ("pcgrad", [{C: 0.99, FR: 0.99}]),  # stopped after an epoch: never eligible
    "mW": ("uw", [{C: 0.6, FR: 0.7}, {C: 0.65, FR: 0.7}, {C: 0.7, FR: 0.72}]),
    "mD": ("dwa", [{C: 0.95, FR: 0.95}, {C: 0.96, FR: 0.96}]),  # interrupted: never eligible
}
UW_WEIGHTS = {C: [1.0, 0.8, 0.7], FR: [1.0, 1.2, 1.3]}  # mW's method_weight/<task> per epoch
# test accuracy per (space, label), task and seed 1..3; None: the seed diverged
MULTI = MULTI_SPACE
ACC = {
    (single_space(C), "baseline"): {C: [0.70, 0.72, 0.74]},
    (single_space(C), TUNED_BEST): {C: [0.85, 0.87, 0.86]},
    (single_space(FR), "baseline"): {FR: [0.88, 0.90, 0.89]},
    (single_space(FR), TUNED_BEST): {FR: [0.93, 0.94, 0.95]},
    (MULTI, "baseline"): {C: [0.66, 0.70, 0.68], FR: [0.85, 0.86, 0.87]},
    (MULTI, method_label("ew")): {C: [0.80, 0.82, 0.81], FR: [0.90, 0.91, 0.92]},
    (MULTI, TUNED_BEST): {C: [0.86, 0.89, 0.87], FR: [0.90, 0.92, 0.93]},  # upgrad
    (MULTI, method_label("pcgrad")): {C: [0.70, 0.73, 0.71], FR: [0.91, 0.90, 0.93]},
    (MULTI, method_label("uw")): {C: [0.81, 0.84, None], FR: [0.90, 0.93, None]},
}
SECONDS = {method_label("ew"): 10.0, TUNED_BEST: 25.0}  # per epoch; others: 12 s


def _settings(tmp_path: Path, compare: tuple[str, ...] | None = COMPARED) -> StudySettings:
    return StudySettings(
        name="fake",
        space="all",
        storage=str(tmp_path),
        confirm_top=1,
        confirm_seeds=3,
        seed=0,
        data="synthetic",
        max_epochs=3,
        compare_methods=compare,
    )


def _search_study(tmp_path: Path) -> Path:
    study = make_fake_study(tmp_path, eval_split=VALIDATION)
    for n, (trial_id, (method, accs)) in enumerate(SEARCH.items()):
        params = {**OTHER, "lr": 0.001 * (n + 1), "scheme": "joint", "method": method}
        write_trial(study / MULTI, trial_id, params, accs, start=100 + 10 * n)
    _edit_rows(study / MULTI / f"{TRIAL_PREFIX}mW", _weights)
    return study


def _weights(row: dict) -> None:
    for task, weights in UW_WEIGHTS.items():
        row[task_metric(METHOD_WEIGHT, task)] = weights[row["epoch"] - 1]


def _edit_rows(folder: Path, edit) -> None:
    rows = [json.loads(x) for x in (folder / RESULT_FILE).read_text().splitlines() if x]
    for row in rows:
        edit(row)
    (folder / RESULT_FILE).write_text("".join(json.dumps(r) + "\n" for r in rows))


def _write_runs(study: Path, plan: dict) -> None:
    """Every planned run, with ACC's test accuracies and SECONDS per epoch."""
    for space, runs in plan.items():
        for run in runs:
            accs = {t: v[run["seed"] - 1] for t, v in ACC[(space, run["label"])].items()}
            diverged = None in accs.values()
            trial_id = f"{run['label'].replace(':', '_')}_s{run['seed']}"
            folder = write_run(
                study / confirm_experiment(space),
                trial_id,
                run,
                None if diverged else accs,
                diverged=diverged,
            )
            seconds = SECONDS.get(run["label"], 12.0)
            _edit_rows(folder, lambda row, s=seconds: row.update(time_this_iter_s=s))


@pytest.fixture()
def compared(tmp_path: Path) -> Path:
    """The study, its plan (`load_or_write_plan`, as the runner writes it) and its runs."""
    study = _search_study(tmp_path)
    settings = _settings(tmp_path)
    plan = load_or_write_plan(settings)
    recorded = json.loads((study / SETTINGS_FILE).read_text())
    recorded.update(compare_methods=list(COMPARED), confirm_seeds=3, confirm_top=1)
    (study / SETTINGS_FILE).write_text(json.dumps(recorded))
    _write_runs(study, plan)
    return study


# ---------------------------------------------------------------------------------------------
# the plan


def test_the_plan_retrains_each_methods_best_eligible_trial_once(tmp_path: Path) -> None:
    _search_study(tmp_path)
    settings = _settings(tmp_path)
    plan = plan_runs(settings)
    multi = plan[MULTI]
    sources = {r["label"]: r["source_trial"] for r in multi}
    # upgrad's best (mU1, last-epoch score 0.9) is tuned-1 itself: no second run of it
    assert sources == {
        "baseline": None,
        tuned_label(1): "mU1",
        method_label("ew"): "mF",  # the best trial naming no method (last score 0.825)
        method_label("pcgrad"): "mP1",  # mP0 scored more, but ASHA stopped it
        method_label("uw"): "mW",
    }
    assert method_labels(multi, COMPARED) == {
        "ew": method_label("ew"),
        "upgrad": tuned_label(1),
        "pcgrad": method_label("pcgrad"),
        "uw": method_label("uw"),
        "dwa": None,  # its only trial was interrupted
    }
    seeds = confirm_seeds(settings)
    for label in sources:
        mine = [r for r in multi if r["label"] == label]
        assert [r["seed"] for r in mine] == seeds  # every method the same seeds
    for run in multi:
        if run["source_trial"]:
            assert config_method(run["config"]) == SEARCH.get(run["source_trial"], ("ew",))[0]
    notes = method_plan_notes(settings, plan)
    assert len(notes) == 1 and "dwa not compared" in notes[0]
    # single-task spaces plan as without methods
    plain = plan_runs(_settings(tmp_path, None))
    assert {s: r for s, r in plan.items() if s != MULTI} == {
        s: r for s, r in plain.items() if s != MULTI
    }
    assert {r["label"] for r in plain[MULTI]} == {"baseline", tuned_label(1)}


def test_method_runs_grow_with_the_rounds_and_the_written_plan_is_kept(compared: Path) -> None:
    settings = _settings(compared.parent)
    plan = json.loads((compared / CONFIRM_PLAN_FILE).read_text())
    assert load_or_write_plan(settings) == plan  # a resume runs exactly the written plan
    five = grow_plan(plan, confirm_seeds(settings, 5))
    for label in (method_label("ew"), method_label("uw"), tuned_label(1)):
        mine = [r for r in five[MULTI] if r["label"] == label]
        assert [r["seed"] for r in mine] == confirm_seeds(settings, 5)
        assert len({r["source_trial"] for r in mine}) == 1


def test_the_best_ranked_label_of_a_method_is_its_best_trial() -> None:
    run = lambda label, source, method: {  # noqa: E731
        "label": label,
        "source_trial": source,
        "config": {"method": method},
    }
    runs = [
        run("baseline", None, "upgrad"),  # the baseline configuration is no method's
        run(tuned_label(3), "c", "upgrad"),
        run(tuned_label(1), "a", "upgrad"),
        run(method_label("mgda"), "d", "mgda"),
    ]
    assert method_labels(runs, ["upgrad", "mgda", "ew"]) == {
        "upgrad": tuned_label(1),
        "mgda": method_label("mgda"),
        "ew": None,
    }


# ---------------------------------------------------------------------------------------------
# the section, re-derived from the raw files


def _raw_arms(study: Path) -> dict[str, dict[str, dict[int, float]]]:
    """label -> task -> {seed: test accuracy in points} of the finished multi-task runs, and
    the single-task tuned-1 runs under `single`, read without analysis/."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    for (space, _), raw in raw_runs(study).items():
        run, last = raw["run"], raw["rows"][-1]
        if last.get("diverged"):
            continue
        key = run["label"] if space == MULTI else f"single {run['label']}"
        for task in run["config"]["tasks"]:
            value = last.get(eval_metric("acc", task, TEST))
            if value is not None:
                out.setdefault(key, {}).setdefault(task, {})[run["seed"]] = value * 100
    return out


def _delta_m(arm: dict, single: dict) -> dict[int, float]:
    seeds = set.intersection(*(set(arm[t]) & set(single[t]) for t in (C, FR)))
    return {
        s: float(np.mean([(arm[t][s] - single[t][s]) / single[t][s] for t in (C, FR)]) * 100)
        for s in seeds
    }


def _power(mde: float, sd: float, n: int) -> float:
    crit = stats.t.ppf(0.975, n - 1)
    nc = mde / (sd / math.sqrt(n))
    return stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc)


def _reference_differences(study: Path) -> pd.DataFrame:
    """method - ew per task and Δm (paired t where the seeds match, else Welch), Holm over all."""
    arms = _raw_arms(study)
    single = {t: arms[f"single {TUNED_BEST}"][t] for t in (C, FR)}
    labels = {"upgrad": TUNED_BEST, "pcgrad": method_label("pcgrad"), "uw": method_label("uw")}
    ew = arms[method_label("ew")]
    rows = []
    for method, label in labels.items():
        for task in (C, FR, DELTA_M):
            a = _delta_m(arms[label], single) if task == DELTA_M else arms[label][task]
            b = _delta_m(ew, single) if task == DELTA_M else ew[task]
            if set(a) == set(b):
                seeds = sorted(a)
                diffs = np.array([a[s] - b[s] for s in seeds])
                p = stats.ttest_rel([a[s] for s in seeds], [b[s] for s in seeds]).pvalue
                sd, test = diffs.std(ddof=1), "paired t"
            else:
                p = stats.ttest_ind(list(a.values()), list(b.values()), equal_var=False).pvalue
                sd, test = math.nan, "Welch"
            diff = np.mean(list(a.values())) - np.mean(list(b.values()))
            rows.append(dict(method=method, task=task, diff=diff, p=p, sd=sd, n=len(a), test=test))
    frame = pd.DataFrame(rows)
    frame["p_holm"] = holm_ref(list(frame["p"]))
    return frame


def test_the_section_re_derives_from_the_raw_files(compared: Path) -> None:
    table = comparison(load_study(compared))
    section = table.methods
    assert section is not None
    arms = _raw_arms(compared)
    labels = {"ew": method_label("ew"), "upgrad": TUNED_BEST, "pcgrad": method_label("pcgrad")}
    labels["uw"] = method_label("uw")
    s = section.summary
    for method, label in labels.items():
        for task in (C, FR):
            row = s[(s["method"] == method) & (s["task"] == task)].iloc[0]
            mean, low, high = t_interval(list(arms[label][task].values()))
            assert row["mean"] * 100 == pytest.approx(mean)
            assert row["ci_low"] * 100 == pytest.approx(max(low, 0.0))  # clipped as the table's
            assert row["ci_high"] * 100 == pytest.approx(min(high, 100.0))
            assert row["n"] == len(arms[label][task]) and row["planned"] == 3
    uw_c = s[(s["method"] == "uw") & (s["task"] == C)].iloc[0]
    assert uw_c["failed"] == 1 and "n=2 of 3, 1 diverged" in section.cells.iloc[9, 2]
    ref = _reference_differences(compared)
    got = section.differences.set_index(["method", "task"])
    for r in ref.to_dict("records"):
        d = got.loc[(r["method"], r["task"])]
        assert d["diff"] == pytest.approx(r["diff"]) and d["test"] == r["test"]
        assert d["p_value"] == pytest.approx(r["p"]) and d["p_holm"] == pytest.approx(r["p_holm"])
        if r["test"] == "paired t":
            assert _power(d["mde"], r["sd"], r["n"]) == pytest.approx(0.80, abs=1e-6)
    assert "ew" not in set(section.differences["method"])  # the reference has no difference
    ew_cells = section.cells[section.cells["method"] == "ew"]
    assert set(ew_cells.iloc[:, 3]) == {REFERENCE_CELL}


def test_step_time_is_seconds_per_task_step_relative_to_ew(compared: Path) -> None:
    section = comparison(load_study(compared)).methods
    per_step: dict[str, list[float]] = {}
    for (_, _), raw in raw_runs(compared).items():
        run = raw["run"]
        if run["space"] != MULTI or raw["rows"][-1].get("diverged"):
            continue
        seconds = sum(r["time_this_iter_s"] for r in raw["rows"])
        steps = sum(run_steps(MULTI, t, run["seed"], e) for t in (C, FR) for e in (1, 2, 3))
        per_step.setdefault(run["label"], []).append(seconds / steps)
    times = section.step_time.set_index("method")
    ew = np.mean(per_step[method_label("ew")])
    assert times.loc["upgrad", "ratio"] == pytest.approx(np.mean(per_step[TUNED_BEST]) / ew)
    assert times.loc["ew", "ratio"] == pytest.approx(1.0)
    assert times.loc["uw", "n"] == 2  # its diverged seed is not timed
    assert math.isnan(times.loc["dwa", "ratio"])
    assert times.loc["upgrad", "ratio"] > 2  # 25 s against 10 s an epoch, the same steps


def test_wording_better_worse_and_no_detectable_difference(compared: Path) -> None:
    v = verdict(load_study(compared))
    rows = v.methods.set_index(["method", "task"])
    ref = _reference_differences(compared).set_index(["method", "task"])
    for key, r in rows.iterrows():
        if key[0] == "dwa":
            assert r["verdict"] == "not compared" and r["says"] == NOT_COMPARED
            continue
        p_holm = ref.loc[key, "p_holm"]
        expect = NO_DIFFERENCE if p_holm >= 0.05 else (BETTER if r["diff"] > 0 else WORSE)
        assert r["verdict"] == expect and r["split"] == TEST
    assert rows.loc[("upgrad", C), "verdict"] == BETTER
    assert rows.loc[("pcgrad", C), "verdict"] == WORSE
    assert rows.loc[("upgrad", FR), "verdict"] == NO_DIFFERENCE
    assert "could have detected ≥" in rows.loc[("upgrad", FR), "says"]
    uw = rows.loc[("uw", C)]
    assert uw["test"] == "Welch" and "1 diverged" in uw["says"]  # its failed seed is said
    text = render_text(v, True)
    assert "Methods vs ew (test" in text and "upgrad better than ew on cifar10" in text
    assert "pcgrad worse than ew on cifar10" in text and "dwa: not compared" in text


def test_a_method_without_runs_is_not_compared_everywhere(compared: Path) -> None:
    table = comparison(load_study(compared))
    dwa = table.methods.cells[table.methods.cells["method"] == "dwa"]
    assert len(dwa) == 3 and set(dwa.iloc[:, 2]) == {NOT_COMPARED}
    assert any("dwa not compared" in n for n in table.methods.notes)
    text = to_text(table)
    assert "Multi-task methods vs ew (test accuracy" in text
    csv = csv_frame(table)
    methods = csv[csv["record"].str.startswith("method")]
    assert set(methods["split"]) == {TEST}
    assert methods[methods["row"] == "dwa"]["value"].isna().all()
    upgrad = methods[(methods["record"] == "method - ew") & (methods["row"] == "upgrad")]
    assert set(upgrad["task"]) == {C, FR, DELTA_M}


def test_a_study_without_compare_methods_has_no_methods_section(compared: Path) -> None:
    recorded = json.loads((compared / SETTINGS_FILE).read_text())
    recorded.pop("compare_methods")
    (compared / SETTINGS_FILE).write_text(json.dumps(recorded))
    study = load_study(compared)
    assert comparison(study).methods is None and verdict(study).methods.empty
    assert M.method_pareto_data(study).empty


# ---------------------------------------------------------------------------------------------
# the figures' data


def test_pareto_curves_and_weights_data(compared: Path) -> None:
    study = load_study(compared)
    arms = _raw_arms(compared)
    pareto = M.method_pareto_data(study)
    labels = {"ew": method_label("ew"), "upgrad": TUNED_BEST, "pcgrad": method_label("pcgrad")}
    labels["uw"] = method_label("uw")
    wide = pareto.points.pivot(index="method", columns="task", values="mean")
    assert set(wide.index) == set(labels)  # dwa has no runs
    for method, label in labels.items():
        for task in (C, FR):
            assert wide.loc[method, task] * 100 == pytest.approx(
                np.mean(list(arms[label][task].values()))
            )
    front = dict(zip(wide.index, pareto_front(wide[[C, FR]].to_numpy())))
    on = pareto.points.drop_duplicates("method").set_index("method")["on_front"]
    assert on.to_dict() == front and front["upgrad"]
    single = {t: np.mean(list(arms[f"single {TUNED_BEST}"][t].values())) for t in (C, FR)}
    assert {t: v * 100 for t, v in pareto.references.items()} == pytest.approx(single)
    curves = M.method_curves_data(study)
    assert set(curves["split"]) == {VALIDATION}
    for method, trial_id in {"upgrad": "mU1", "pcgrad": "mP1", "uw": "mW", "ew": "mF"}.items():
        got = curves[curves["method"] == method]
        assert set(got["trial_id"]) == {trial_id}
        rows = [
            json.loads(x)
            for x in (compared / MULTI / f"{TRIAL_PREFIX}{trial_id}" / RESULT_FILE)
            .read_text()
            .splitlines()
        ]
        assert list(got["score"]) == pytest.approx([r["score"] for r in rows])
    weights = M.method_weights_data(study)
    assert set(weights["method"]) == {"uw"}  # the only trial that recorded weights
    for task, values in UW_WEIGHTS.items():
        assert list(weights[weights["task"] == task]["weight"]) == values
    for figure in (
        M.plot_method_pareto(pareto),
        M.plot_method_curves(curves),
        M.plot_method_weights(weights),
    ):
        assert (
            TEST in figure.layout.title.text
            or VALIDATION in figure.layout.title.text
            or ("weights" in figure.layout.title.text)
        )


# ---------------------------------------------------------------------------------------------
# the real study (`real_study`: `python -m study.run --space all ... --compare-methods upgrad,uw`)

pytest_plugins = ["real_study"]


def _real_arms(study: Path) -> dict[str, dict[str, dict[int, float]]]:
    """`_raw_arms` for any tasks: label -> task -> {seed: test accuracy, points} of the
    multi-task runs; the single-task runs under `single <label>`."""
    out: dict[str, dict[str, dict[int, float]]] = {}
    tasks = json.loads((study / TASKS_FILE).read_text())  # name -> its spec, as the run has it
    name = {task["spec"]: task_name for task_name, task in tasks.items()}
    for (space, _), raw in raw_runs(study).items():
        run, last = raw["run"], raw["rows"][-1] if raw["rows"] else {}
        if raw["errored"] or last.get("diverged") or not raw["rows"]:
            continue
        key = run["label"] if space == MULTI_SPACE else f"single {run['label']}"
        for task in map(name.get, run["config"]["tasks"]):
            out.setdefault(key, {}).setdefault(task, {})[run["seed"]] = (
                last[eval_metric("acc", task, TEST)] * 100
            )
    return out


def _real_labels(study: Path, methods: list[str]) -> dict[str, str]:
    """Per compared method, the label of its runs, read from the raw runs: the best-ranked
    tuned-k whose config names it (no `method`: ew), else `method:<name>`."""
    found: dict[str, set[str]] = {}
    for (space, _), raw in raw_runs(study).items():
        run = raw["run"]
        if space == MULTI_SPACE and run["source_trial"] is not None:
            method = run["config"].get("method") or "ew"
            found.setdefault(method, set()).add(run["label"])
    return {m: _best_tuned(found[m]) or method_label(m) for m in methods if m in found}


def _best_tuned(labels: set[str]) -> str | None:
    ranked = sorted((int(x.split("-")[1]), x) for x in labels if x.startswith("tuned-"))
    return ranked[0][1] if ranked else None


@pytest.mark.slow
def test_the_real_studys_methods_section_re_derives_from_its_raw_files(real_study: Path) -> None:
    from real_study import REAL_COMPARED, REAL_TASKS

    study = load_study(real_study)
    section = comparison(study).methods
    assert section is not None and list(section.summary["method"].unique()) == [
        "ew",
        *REAL_COMPARED,
    ]
    labels = _real_labels(real_study, ["ew", *REAL_COMPARED])
    assert labels == {m: section.labels[m] for m in labels} and len(labels) == 3
    arms = _real_arms(real_study)
    single = {t: arms[f"single {TUNED_BEST}"][t] for t in REAL_TASKS}
    s = section.summary.set_index(["method", "task"])
    for method, label in labels.items():
        for task in REAL_TASKS:
            values = arms[label][task]
            assert s.loc[(method, task), "mean"] * 100 == pytest.approx(
                np.mean(list(values.values()))
            )
            assert s.loc[(method, task), "n"] == len(values) == 2  # every seed finished
    # method - ew, per task and Δm: paired t over the seed pairs, Holm over the family
    ref = []
    for method in REAL_COMPARED:
        a, b = arms[labels[method]], arms[labels["ew"]]
        for task in (*REAL_TASKS, DELTA_M):
            if task == DELTA_M:
                x, y = (_delta_m_any(arm, single) for arm in (a, b))
            else:
                x, y = a[task], b[task]
            seeds = sorted(x)
            p = stats.ttest_rel([x[r] for r in seeds], [y[r] for r in seeds]).pvalue
            ref.append((method, task, np.mean([x[r] - y[r] for r in seeds]), p))
    adjusted = holm_ref([r[3] for r in ref])
    got = section.differences.set_index(["method", "task"])
    for (method, task, diff, p), p_holm in zip(ref, adjusted):
        d = got.loc[(method, task)]
        assert d["diff"] == pytest.approx(diff) and d["test"] == "paired t"
        assert d["p_value"] == pytest.approx(p, nan_ok=True)
        assert d["p_holm"] == pytest.approx(p_holm, nan_ok=True)
    # every compared method's step time is measured, ew's is the unit
    times = section.step_time.set_index("method")
    assert times.loc["ew", "ratio"] == pytest.approx(1.0)
    assert (times.loc[list(REAL_COMPARED), "ratio"] > 0).all()


def _delta_m_any(arm: dict, single: dict) -> dict[int, float]:
    """Δm per seed over every task of `single`, in %."""
    tasks = list(single)
    seeds = set.intersection(*(set(arm[t]) & set(single[t]) for t in tasks))
    return {
        r: float(np.mean([(arm[t][r] - single[t][r]) / single[t][r] for t in tasks]) * 100)
        for r in seeds
    }

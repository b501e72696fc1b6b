"""The methods section: multi-task methods compared with `ew` (equal weights) on test.

With `--compare-methods ew,upgrad,...` the confirmation stage retrains, in the multi-task
space, the best search configuration of each named method (`best_of_methods`: chosen as the
top-K are, by last-epoch validation score among trials that ran all their epochs) over the same
seeds and the same matched budget. A method's best trial that is already a top-K configuration
is compared through its `tuned-k` runs; the others run as `method:<name>`. Which runs are a
method's is read from the plan (`method_labels`: the run's config names its method), so one
run can be both `tuned-1` and the best of its method.

Per compared method, `methods_section` gives:
- per task its mean test accuracy over seeds with the 95 % interval and n (of planned, failed
  seeds said: the table's own `table.summary_row`), and Δm against the tuned single-task runs
  (`tuned-1` of each `single-<task>` space, paired seed by seed: `table.paired_delta_m`);
- per task and for Δm, the method - ew difference, paired over seeds (`stats.paired`), Holm-
  adjusted over every method's differences (one family, separate from the table's
  multi - single family), with the minimum detectable difference;
- step time relative to ew: wall seconds of the runs' epochs (Ray's `time_this_iter_s`, the
  evaluation included) per task-step (one task's loss in one optimizer step), mean over seeds.

A compared method without an eligible search trial has no runs and is "not compared". `ew`'s
row is the reference: it has no difference of its own.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.arms import (
    DELTA_M,
    SELECTION,
    arm_by_seed,
    not_compared,
    paired_delta_m,
    refused_tasks,
    summary_row,
    test_columns,
)
from analysis.cells import acc_cell, diff_cell, format_delta_m, is_nan, text_of
from analysis.confirmation import label_rank
from analysis.results import Study
from analysis.stats import ALPHA, CONFIDENCE, POWER, holm, mean_interval, paired
from names import (
    DEFAULT_METHOD,
    METHOD_KEY,
    MULTI_ARM,
    MULTI_SPACE,
    SINGLE_ARM,
    STEPS,
    TEST,
    TUNED_BEST,
    config_method,
    task_metric,
)

TITLE = f"Multi-task methods vs {DEFAULT_METHOD} ({TEST} accuracy, matched budget, same seeds)"
REFERENCE_CELL = "reference"
CELLS = {
    "acc": f"{TEST} accuracy",
    "diff": f"vs {DEFAULT_METHOD} (points; Δm: %)",
    "time": f"step time vs {DEFAULT_METHOD}",
}
DIFF_COLUMNS = ["method", "label", "task", "unit", "diff", "n", "ci_low", "ci_high"]
DIFF_COLUMNS += ["no_interval", "test", "p_value", "df", "mde", "mde_why", "p_holm", "missing"]


# ---------------------------------------------------------------------------------------------
# which runs are a method's


def compared_methods(settings: Mapping[str, Any]) -> list[str]:
    """The study's `compare_methods` (study.json), `ew` first; [] when it compares none."""
    named = list(settings.get("compare_methods") or ())
    return [DEFAULT_METHOD, *[m for m in named if m != DEFAULT_METHOD]] if named else []


def best_of_methods(ranked: pd.DataFrame, methods: Iterable[str]) -> dict[str, str | None]:
    """Per method: its best search trial among `ranked` (`search_table.ranked_trials`' order,
    the order the top-K come from), or None when no trial of it is ranked. A trial's method is
    its config's (`names.config_method`: a config naming none ran `ew`)."""
    ids = list(ranked["trial_id"]) if len(ranked) else []
    column = ranked[METHOD_KEY] if METHOD_KEY in ranked else [None] * len(ids)
    found = [config_method({METHOD_KEY: m}) for m in column]
    return {m: next((t for t, f in zip(ids, found) if f == m), None) for m in methods}


def method_labels(
    runs: Sequence[Mapping[str, Any]], methods: Iterable[str]
) -> dict[str, str | None]:
    """Per method: the label of its planned runs in the multi-task space (`runs`: the plan's),
    the best-ranked label when several configurations of it are planned (`tuned-1` before
    `tuned-2` before `method:<name>`: the first is its best search trial), or None (no run).
    The baseline configuration (no search trial) is never a method's."""
    labels: dict[str, list[str]] = {}
    for run in runs:
        if run.get("source_trial") is None or not run.get("label"):
            continue
        config = run.get("config") if isinstance(run.get("config"), Mapping) else {}
        labels.setdefault(config_method(config), []).append(str(run["label"]))
    return {m: min(labels[m], key=label_rank) if m in labels else None for m in methods}


def study_method_labels(study: Study) -> dict[str, str | None]:
    """`method_labels` of the study's plan (else of its recorded runs) for its compared methods."""
    runs = study.plan.get(MULTI_SPACE)
    if not runs and len(study.runs):
        multi = study.runs[study.runs["space"] == MULTI_SPACE]
        runs = [
            {"label": r["label"], "source_trial": r["source_trial"], "config": r}
            for r in multi.astype(object).where(multi.notna(), None).to_dict("records")
        ]
    return method_labels(runs or [], compared_methods(study.settings))


NOT_COMPARED = "not compared (no eligible search trial)"  # the cells of a method without runs


def method_notes(labels: Mapping[str, str | None]) -> list[str]:
    """One line per compared method without runs, and why."""
    return [
        f"{MULTI_SPACE}: {m} not compared: no {MULTI_SPACE} search trial of {m} ran all its "
        "epochs, so none was confirmed"
        for m, label in labels.items()
        if label is None
    ]


# ---------------------------------------------------------------------------------------------
# the numbers


def _by_method(seeds: pd.DataFrame, label: str | None) -> pd.DataFrame:
    """The counted multi-task seed rows of a label (none for None)."""
    if label is None:
        return seeds.iloc[0:0]
    keep = seeds["counted"] & (seeds["space"] == MULTI_SPACE) & (seeds["label"] == label)
    return seeds[keep]


def delta_m_by_seed(seeds: pd.DataFrame, label: str | None, tasks: Sequence[str]) -> dict:
    """{seed: Δm in %} of a method's runs against the tuned single-task runs (`tuned-1` of each
    task's single-task space), paired seed by seed as the table's Δm is."""
    if label is None:
        return {}
    multi = _by_method(seeds, label).assign(label=TUNED_BEST)
    single = seeds[(seeds["fashion"] == SINGLE_ARM) & (seeds["label"] == TUNED_BEST)]
    return paired_delta_m(pd.concat([multi, single]), TUNED_BEST, tasks)


def _acc_rows(
    study: Study, seeds: pd.DataFrame, method: str, label: str | None, tasks: Sequence[str]
) -> list[dict[str, Any]]:
    rows = []
    for task in tasks:
        if label is None:
            row = {"task": task, "label": None, "n": 0, "mean": math.nan, "planned": 0}
            row |= {"failed": 0, "missing": NOT_COMPARED}
        else:
            row = summary_row(study, seeds, task, label, MULTI_ARM)
        rows.append({"method": method, "unit": "accuracy", **row})
    return rows


def _delta_m_row(method: str, label: str | None, pairs: Mapping, refused: Mapping) -> dict:
    est = mean_interval(list(pairs.values()))
    why = NOT_COMPARED if label is None else None
    if why is None and refused:
        why = not_compared("; ".join(f"{t}: {r}" for t, r in refused.items()))
    if why is None and not pairs:
        why = "missing (no seed finished in every run)"
    bounds = est.bounds()
    return {
        "method": method,
        "label": label,
        "task": DELTA_M,
        "unit": "percent",
        "n": est.n,
        "mean": est.mean,
        "ci_low": bounds["ci_low"],
        "ci_high": bounds["ci_high"],
        "no_interval": est.why if est.n else None,
        "seeds": ",".join(map(str, pairs)),
        "missing": why,
    }


def _difference(method: str, label, task: str, unit: str, a: Mapping, b: Mapping, why) -> dict:
    d = paired(a, b)
    return {
        "method": method,
        "label": label,
        "task": task,
        "unit": unit,
        "diff": math.nan if why else d.diff,
        "n": min(d.n_a, d.n_b),
        **test_columns(None if why else d),
        "p_holm": math.nan,
        "missing": why,
    }


def _why_missing(method: str, rows: pd.DataFrame, task: str) -> str | None:
    """Why a method - ew difference of `task` is not computed (either side's reason), or None."""
    for name in (method, DEFAULT_METHOD):
        part = rows[(rows["method"] == name) & (rows["task"] == task)]
        why = text_of(part["missing"].iloc[0]) if len(part) else "missing"
        if why:
            return why if name == method else f"{DEFAULT_METHOD}: {why}"
    return None


def difference_frame(
    summary: pd.DataFrame, arms: Mapping[str, Mapping[str, Mapping]], labels: Mapping
) -> pd.DataFrame:
    """Per method other than ew, per task and Δm: method - ew (points; Δm in %), paired over
    seeds, Holm-adjusted over the whole frame (`p_holm`). `arms`: method -> task -> {seed:
    value}."""
    records = []
    for method, label in labels.items():
        if method == DEFAULT_METHOD:
            continue
        for task in dict.fromkeys(summary["task"]):
            unit = "percent" if task == DELTA_M else "points"
            why = _why_missing(method, summary, task)
            ref = arms.get(DEFAULT_METHOD, {}).get(task, {})
            a = arms.get(method, {}).get(task, {})
            records.append(_difference(method, label, task, unit, a, ref, why))
    frame = pd.DataFrame.from_records(records, columns=DIFF_COLUMNS)
    if len(frame):
        frame["p_holm"] = holm(list(frame["p_value"]))
    return frame


def _seconds_per_step(runs: pd.DataFrame, tasks: Sequence[str]) -> pd.Series:
    """Per run: wall seconds of its epochs over its task-steps (steps of every task summed)."""
    steps = sum(pd.to_numeric(runs.get(task_metric(STEPS, t)), errors="coerce") for t in tasks)
    seconds = pd.to_numeric(runs.get("seconds", pd.Series(np.nan, index=runs.index)))
    return seconds / steps.where(steps > 0)


def step_time_frame(study: Study, labels: Mapping, tasks: Sequence[str]) -> pd.DataFrame:
    """Per method: the mean seconds per task-step of its finished runs, n, and the ratio to
    ew's (NaN where either is unknown: runs that record no time, or no runs)."""
    runs = study.runs
    records = []
    for method, label in labels.items():
        mine = runs[(runs["space"] == MULTI_SPACE) & (runs["label"] == label)] if label else runs
        mine = mine[mine["status"] == "finished"] if label else mine.iloc[0:0]
        per_step = _seconds_per_step(mine, tasks).dropna() if len(mine) else pd.Series([])
        records.append(
            {
                "method": method,
                "label": label,
                "n": len(per_step),
                "seconds_per_task_step": float(per_step.mean()) if len(per_step) else math.nan,
            }
        )
    frame = pd.DataFrame.from_records(records)
    ref = frame.loc[frame["method"] == DEFAULT_METHOD, "seconds_per_task_step"]
    reference = float(ref.iloc[0]) if len(ref) else math.nan
    frame["ratio"] = frame["seconds_per_task_step"] / reference
    return frame


# ---------------------------------------------------------------------------------------------
# the section


@dataclasses.dataclass
class MethodsSection:
    """The methods section of a study comparing methods (`compared_methods`).

    `labels`: method -> the label of its confirmation runs (None: not compared). `summary`: per
    method, per task (test accuracy, the table's `summary_row` columns) and Δm (`unit`
    percent). `differences`: method - ew (`difference_frame`, `DIFF_COLUMNS`). `step_time`:
    per method (`step_time_frame`). `cells`: the shown rows; `notes`: what they mean."""

    labels: dict[str, str | None]
    summary: pd.DataFrame
    differences: pd.DataFrame
    step_time: pd.DataFrame
    cells: pd.DataFrame
    notes: list[str]


def _arms(summary: pd.DataFrame, seeds: pd.DataFrame, labels, dms: Mapping) -> dict:
    """method -> task (and Δm) -> {seed: value in points (Δm: %)}."""
    out: dict[str, dict[str, dict]] = {}
    for method, label in labels.items():
        counted = _by_method(seeds, label)
        out[method] = {t: arm_by_seed(counted[counted["task"] == t]) for t in set(seeds["task"])}
        out[method][DELTA_M] = dms[method]
    return out


def methods_section(study: Study, seeds: pd.DataFrame, tasks: Sequence[str]) -> MethodsSection:
    """The section of a study with confirmation runs (`seeds`: `table.seed_frame`)."""
    if "counted" not in seeds:  # no run trained the table's tasks
        seeds = seeds.assign(counted=pd.Series(dtype=bool))
    labels = study_method_labels(study)
    refused = refused_tasks(study, tasks)
    rows, dms = [], {}
    for method, label in labels.items():
        rows += _acc_rows(study, seeds, method, label, tasks)
        dms[method] = delta_m_by_seed(seeds, label, tasks) if tasks else {}
        rows.append(_delta_m_row(method, label, dms[method], refused))
    summary = pd.DataFrame.from_records(rows)
    diffs = difference_frame(summary, _arms(summary, seeds, labels, dms), labels)
    times = step_time_frame(study, labels, tasks)
    cells = display_cells(summary, diffs, times)
    return MethodsSection(labels, summary, diffs, times, cells, section_notes(labels, diffs))


def _acc_cell(r: Mapping) -> str:
    if text_of(r.get("missing")):
        return str(r["missing"])
    if r["unit"] == "percent":
        return format_delta_m(
            r["mean"], int(r["n"]), r["ci_low"], r["ci_high"], text_of(r["no_interval"])
        )
    return acc_cell(r)


def _diff_cell(method: str, d: Mapping | None) -> str:
    if method == DEFAULT_METHOD:
        return REFERENCE_CELL
    if d is None:
        return ""
    if d["missing"] == NOT_COMPARED:
        return NOT_COMPARED
    return diff_cell({**d, "diff_pts": d["diff"]})


def _time_cell(t: Mapping | None) -> str:
    if t is None or is_nan(t["seconds_per_task_step"]):
        return "not recorded"
    per = f"{t['seconds_per_task_step'] * 1e3:.2g} ms per task-step, n={int(t['n'])}"
    if t["method"] == DEFAULT_METHOD or is_nan(t["ratio"]):
        return per
    return f"{t['ratio']:.2f}× ({per})"


def display_cells(summary: pd.DataFrame, diffs: pd.DataFrame, times: pd.DataFrame) -> pd.DataFrame:
    """One row per method and task, then its Δm row; the step time on the method's first row."""
    diff_of = {(d["method"], d["task"]): d for d in diffs.to_dict("records")}
    time_of = {t["method"]: t for t in times.to_dict("records")}
    cells, seen = [], set()
    for r in summary.to_dict("records"):
        first = r["method"] not in seen
        seen.add(r["method"])
        cells.append(
            {
                "method": r["method"],
                "task": r["task"],
                CELLS["acc"]: _acc_cell(r),
                CELLS["diff"]: _diff_cell(r["method"], diff_of.get((r["method"], r["task"]))),
                CELLS["time"]: _time_cell(time_of.get(r["method"])) if first else "",
            }
        )
    return pd.DataFrame(cells, columns=["method", "task", *CELLS.values()])


def section_notes(labels: Mapping[str, str | None], diffs: pd.DataFrame) -> list[str]:
    """What the section's numbers are."""
    conf = f"{CONFIDENCE:.0%}"
    runs = ", ".join(f"{m} = {lb}" for m, lb in labels.items() if lb)
    family = int(diffs["p_holm"].notna().sum()) if len(diffs) else 0
    return [
        f"split: {TEST}, each run scored once at its last epoch; each method's configuration is "
        f"its best {MULTI_SPACE} search trial by last-epoch validation score among trials that "
        f"ran all their epochs, retrained with the same seeds and budget as {DEFAULT_METHOD}"
        + (f" (runs: {runs})" if runs else ""),
        f"accuracy: mean over seeds ± half-width of the {conf} t-interval; Δm: mean over tasks "
        f"of (method - single) / single in %, against {TUNED_BEST} of each single-task space, "
        "seed by seed",
        f"vs {DEFAULT_METHOD}: method - {DEFAULT_METHOD}, paired t over the seeds both "
        f"finished (Welch's where the seeds differ), {conf} interval; Holm over the {family} "
        f"method tests of this section (significant when Holm p < {ALPHA:g}); MDE: the "
        f"difference detectable with {POWER:.0%} power",
        f"step time: wall seconds of the runs' epochs (Ray's time_this_iter_s, evaluation "
        f"included) per task-step, mean over finished seeds, as a multiple of "
        f"{DEFAULT_METHOD}'s; concurrent trials share the machine, so it is approximate",
        *method_notes(labels),
    ]


def csv_records(section: MethodsSection) -> pd.DataFrame:
    """The section's numbers as rows of the table's CSV (`table.CSV_COLUMNS`): `record` is
    `method mean`, `method - ew` or `method step time`; `row` names the method."""
    s, d, t = section.summary, section.differences, section.step_time
    common = {"split": TEST, "selection": SELECTION, "space": MULTI_SPACE}
    parts = [
        s.assign(record="method mean", row=s["method"], value=s["mean"], **common),
        d.assign(record=f"method - {DEFAULT_METHOD}", row=d["method"], value=d["diff"], **common),
        t.assign(record="method step time", row=t["method"], value=t["ratio"], **common).assign(
            unit=f"multiple of {DEFAULT_METHOD}'s seconds per task-step", task=""
        ),
    ]
    return pd.concat([p for p in parts if len(p)], ignore_index=True)

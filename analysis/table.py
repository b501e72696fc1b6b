"""The comparison table: per task, single- vs multi-task *test* accuracy over seeds, for the
baseline configuration and for the tuned one, with 95 % confidence intervals.

The search selects on validation; the confirmation stage (`confirmation`) then retrains each
space's baseline and top-K configurations from scratch with R seeds on train + validation and
scores every run once on test at its last epoch. Rows per task:

  baseline single-task   confirm-single-<task>, label `baseline`
  baseline multi-task    confirm-multi, label `baseline`
  tuned single-task      confirm-single-<task>, label `tuned-1` (the search's best by validation)
  tuned multi-task       confirm-multi, label `tuned-1`

Each cell is the mean test accuracy over seeds ± the half-width of its 95 % Student-t interval
("80.6% ± 1.2 (n=3)"; with one seed "80.6% (1 seed, no interval)"; with a seed that did not
count "80.6% ± 1.2 (n=2 of 3, 1 diverged)"; an interval reaching past 0 or 100 % is clipped
there and marked "*": "58.3% [16.1%, 100.0%*] (n=2)"). Per task, multi - single for baseline
and tuned, in points: the paired t over seed pairs when both arms have the same seeds (Welch's
test otherwise), its 95 % interval, p-value, Holm-adjusted p-value and minimum detectable
difference (80 % power); Δm (mean over tasks of (multi - single) / single, in %) with the same
over seed pairs. The multi - single tests of the shown labels and their Δm are one Holm family.
Optimizer steps and images seen per task and row. The other tuned runs (`tuned-2` ..) are in the
CSV. Then, in a separate section, the search-stage selection figures (`search_table`:
validation, optimistic).

A row without a finished run says why ("missing (no single-fashionrgb run)"); a study without
confirmation runs says that it has no test figures and how to get them. A task is compared only
when its single- and multi-task runs trained the same source (`Study.source_problem`: one spec,
the one tasks.json records with its files' fingerprint); otherwise its multi - single and Δm
say why they are not computed.

    python -m analysis.table <study dir> [--format text|markdown|csv|html] [--out FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import math
import sys
import typing
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from analysis import remote
from analysis.confirmation import FAILED_STATUSES, label_rank
from analysis.results import Study, load_study
from analysis.search_table import COLUMNS as SEARCH_COLUMNS
from analysis.search_table import SearchComparison, search_comparison
from analysis.stats import (
    ALPHA,
    CONFIDENCE,
    POWER,
    Difference,
    holm,
    mean_interval,
    one_sample,
    paired,
)
from errors import AnalysisError
from names import (
    BASELINE_LABEL,
    BUDGET_KEY,
    BUDGETS,
    LEGACY_BUDGET,
    MULTI_SPACE,
    SETTINGS_FILE,
    TEST,
    TRIAL_PREFIX,
    TUNED_BEST,
    VALIDATION,
    eval_metric,
    single_space,
    task_metric,
)

if typing.TYPE_CHECKING:
    from analysis.methods import MethodsSection

FASHIONS = {"single": "single-task", "multi": "multi-task"}
SHOWN = (BASELINE_LABEL, TUNED_BEST)  # the labels the table shows; every label is in its CSV
KINDS = {BASELINE_LABEL: "baseline", TUNED_BEST: "tuned"}
CONFIRM_COMMAND = "python -m study.confirm"
SELECTION = "last epoch"  # the epoch of a confirmation run that is scored (once)
PCT = 100.0  # accuracy fraction -> points
CELLS = {
    "acc": "test accuracy",
    "diff": "multi - single (points)",
    "steps": "optimizer steps",
    "images": "images seen",
}
DELTA_M = "Δm"
CONFIG_KEYS = ("optimizer", "lr", "weight_decay", "lr_schedule", "scheme", "coin_p")
CONFIG_KEYS += ("temperature", "stem")
SEED_COLUMNS = ["task", "row", "label", "fashion", "space", "seed", "trial_id", "source_trial"]
SEED_COLUMNS += ["status", "epoch", "acc", "steps", "images", "single_steps", "counted"]
CLIPPED = "*"  # marks an interval bound clipped to [0, 100] %


def row_name(label: str, fashion: str) -> str:
    """A table row's name: (`baseline`, `single`) -> "baseline single-task", (`tuned-1`,
    `multi`) -> "tuned multi-task", (`tuned-2`, `multi`) -> "tuned-2 multi-task"."""
    return f"{KINDS.get(label, label)} {FASHIONS[fashion]}"


def row_space(task: str, fashion: str) -> str:
    return single_space(task) if fashion == "single" else MULTI_SPACE


def _text(value: object) -> str | None:
    """A reason from a frame cell: the text, or None for None, NaN or ""."""
    return value if isinstance(value, str) and value else None


def _nan(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


# ---------------------------------------------------------------------------------------------
# formatting one number


def _half(value: float) -> str:
    """An interval's half-width: one decimal from 1 up, else two significant digits."""
    return f"{value:.1f}" if value >= 1 else f"{value:.2g}"


def format_p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def format_acc(
    mean: float,
    n: int,
    low: float,
    high: float,
    why: str | None = None,
    planned: int | None = None,
    not_counted: str | None = None,
    clipped: bool = False,
) -> str:
    """Mean test accuracy over n seeds (fractions): "80.6% ± 1.2 (n=3)", "80.6% (1 seed, no
    interval)", "80.6% (n=3, all 3 seeds equal: no interval)"; with seeds that did not count
    (`planned` > n, `not_counted` says why) "80.6% ± 1.2 (n=2 of 3, 1 diverged)"; an interval
    `clipped` to [0, 1] shows its bounds, the clipped one marked: "58.3% [16.1%, 100.0%*] (n=2)"."""
    count = f"n={n}"
    if planned and planned > n:
        count = f"n={n} of {planned}" + (f", {not_counted}" if not_counted else "")
    if n == 1:
        one = "1 seed" if count == "n=1" else count
        return f"{mean * PCT:.1f}% ({one}, no interval)"
    if _nan(low) or _nan(high):
        return f"{mean * PCT:.1f}% ({count}, {why or 'no spread'}: no interval)"
    if clipped:
        return f"{mean * PCT:.1f}% [{format_bound(low)}, {format_bound(high)}] ({count})"
    return f"{mean * PCT:.1f}% ± {_half((high - low) / 2 * PCT)} ({count})"


def format_bound(value: float) -> str:
    """An accuracy interval's bound, marked when it is a clipped one (exactly 0 or 1)."""
    return f"{value * PCT:.1f}%" + (CLIPPED if value in (0.0, 1.0) else "")


def clip_interval(low: float, high: float) -> tuple[float, float, bool]:
    """An accuracy interval (fractions) clipped to [0, 1], and whether it was."""
    if _nan(low) or _nan(high):
        return low, high, False
    clipped = (max(0.0, low), min(1.0, high))
    return clipped[0], clipped[1], clipped != (low, high)


def _test_text(test: str | None, p: float, p_holm: float | None, mde: float | None) -> str:
    """ "paired t, p=0.012, Holm p=0.048, MDE 2.1" (the parts that are given)."""
    parts = [test] if test else []
    parts.append(format_p(p))
    if not _nan(p_holm):
        parts.append("Holm " + format_p(p_holm))
    if not _nan(mde):
        parts.append(f"MDE {mde:.1f}")
    return ", ".join(parts)


def format_difference(
    diff: float,
    low: float,
    high: float,
    p: float,
    why: str | None,
    test: str | None = None,
    p_holm: float | None = None,
    mde: float | None = None,
) -> str:
    """multi - single in points: "-2.5 ± 2.6 (p=0.060)", with its test, Holm-adjusted p and
    minimum detectable difference where given: "-2.5 ± 2.6 (paired t, p=0.060, Holm p=0.180,
    MDE 3.4)"; or "-2.5 (an arm has 1 seed: no interval, p undefined)"."""
    if _nan(low) or _nan(high) or _nan(p):
        return f"{diff:+.1f} ({why or 'undefined'}: no interval, p undefined)"
    return f"{diff:+.1f} ± {_half((high - low) / 2)} ({_test_text(test, p, p_holm, mde)})"


def format_delta_m(
    value: float,
    n: int,
    low: float,
    high: float,
    why: str | None,
    p: float | None = None,
    p_holm: float | None = None,
    mde: float | None = None,
) -> str:
    """Δm in %: "-3.1% ± 1.9 (n=3 seed pairs)", with its p-value, Holm-adjusted p and minimum
    detectable Δm where given: "-3.1% ± 1.9 (n=3 seed pairs, p=0.021, Holm p=0.084, MDE 2.4)";
    or "-3.1% (1 seed pair, no interval)"."""
    if n == 1:
        return f"{value:+.1f}% (1 seed pair, no interval)"
    if _nan(low) or _nan(high):
        return f"{value:+.1f}% (n={n} seed pairs, {why or 'no spread'}: no interval)"
    test = f", {_test_text(None, p, p_holm, mde)}" if not _nan(p) else ""
    return f"{value:+.1f}% ± {_half((high - low) / 2)} (n={n} seed pairs{test})"


def _count(value: float) -> str:
    return "" if _nan(value) else f"{value:,.0f}"


# ---------------------------------------------------------------------------------------------
# the numbers: per seed, per row, per task, per label


def _runs_of(study: Study, task: str) -> pd.DataFrame:
    """The confirmation runs that trained `task`: its single-task space's and the multi's."""
    runs = study.runs
    if runs.empty or "tasks" not in runs:
        return runs
    spaces = [single_space(task), MULTI_SPACE]
    trains = runs["tasks"].fillna("").astype(str).str.split(",").map(lambda ts: task in ts)
    return runs[runs["space"].isin(spaces) & trains]


def seed_frame(study: Study, tasks: Sequence[str]) -> pd.DataFrame:
    """One row per confirmation run and task (`SEED_COLUMNS`): its test accuracy at its last
    epoch, steps and images of the task, status and whether it counts (finished)."""
    parts = []
    for task in tasks:
        runs = _runs_of(study, task)
        if runs.empty:
            continue
        part = pd.DataFrame(
            {
                "task": task,
                "label": runs["label"].astype(str),
                "fashion": np.where(runs["space"] == MULTI_SPACE, "multi", "single"),
                "space": runs["space"],
                "seed": runs["seed"],
                "trial_id": runs["trial_id"],
                "source_trial": runs["source_trial"],
                "status": runs["status"],
                "epoch": runs["last_epoch"],
                "acc": pd.to_numeric(runs.get(eval_metric("acc", task, TEST)), errors="coerce"),
                "steps": runs.get(task_metric("steps", task)),
                "images": runs.get(task_metric("images", task)),
                "single_steps": runs.get(task_metric("single_steps", task), np.nan),
            }
        )
        part["row"] = [row_name(lb, f) for lb, f in zip(part["label"], part["fashion"])]
        part["counted"] = part["status"].eq("finished") & part["acc"].notna()
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=SEED_COLUMNS)
    return pd.concat(parts, ignore_index=True)[SEED_COLUMNS]


def _status_counts(part: pd.DataFrame) -> str:
    counts = part["status"].value_counts()
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def _missing(study: Study, space: str, label: str, part: pd.DataFrame) -> str | None:
    """Why a row has no test accuracy (`part`: its runs), or None when it has one."""
    if part["counted"].any():
        return None
    space_runs = study.runs[study.runs["space"] == space] if len(study.runs) else study.runs
    if space_runs.empty:
        if space not in study.space_tasks:
            return f"missing (no {space} run)"
        if study.plan.get(space):
            return f"missing ({space}: no confirmation run started yet)"
        return f"missing (no confirmation runs of {space})"
    if part.empty:
        return f"missing (no {label} run of {space})"
    return f"missing ({label} of {space}: no run finished; {_status_counts(part)})"


def seed_counts(study: Study, space: str, label: str, part: pd.DataFrame) -> dict[str, object]:
    """The seeds of a row (`part`: its runs of one task): `planned` (the plan's seeds, or the
    runs' when there is no plan), `failed` (diverged or errored runs) and `not_counted`, what
    became of the seeds that do not count ("1 diverged, 1 not started"; None when all count)."""
    plan = study.plan.get(space, [])
    planned = {r.get("seed") for r in plan if r.get("label") == label} - {None}
    ran = set(part["seed"].dropna())
    bad = part[~part["counted"]]
    statuses = [
        st if st != "finished" else "no test accuracy" for st in bad["status"].fillna("unknown")
    ]
    counts = pd.Series(statuses, dtype=object).value_counts()
    what = [f"{n} {status}" for status, n in counts.items()]
    absent = len(planned - ran)
    what += [f"{absent} not started"] if absent else []
    return {
        "planned": len(planned | ran) if planned else len(part),
        "failed": int(bad["status"].isin(FAILED_STATUSES).sum()),
        "not_counted": ", ".join(what) or None,
    }


def summary_row(
    study: Study, seeds: pd.DataFrame, task: str, label: str, fashion: str
) -> dict[str, object]:
    """One row of `summary_frame`: the test accuracy of a task's runs of one label and fashion
    (`seeds`: `seed_frame`)."""
    space = row_space(task, fashion)
    part = seeds[(seeds["task"] == task) & (seeds["space"] == space)]
    part = part[part["label"] == label]
    counted = part[part["counted"]]
    est = mean_interval(counted["acc"])
    bounds = est.bounds()
    low, high, clipped = clip_interval(bounds["ci_low"], bounds["ci_high"])
    return {
        "task": task,
        "row": row_name(label, fashion),
        "label": label,
        "fashion": fashion,
        "space": space,
        "n": est.n,
        "mean": est.mean,
        "ci_low": low,
        "ci_high": high,
        "clipped": clipped,
        "no_interval": est.why if est.n else None,  # none: "missing" says why
        "steps": pd.to_numeric(counted["steps"]).mean(),
        "images": pd.to_numeric(counted["images"]).mean(),
        "single_steps": pd.to_numeric(counted["single_steps"]).mean(),
        "seeds": ",".join(str(s) for s in counted["seed"]),
        **seed_counts(study, space, label, part),
        "missing": _missing(study, space, label, part),
    }


def summary_frame(study: Study, seeds: pd.DataFrame, tasks: Sequence[str]) -> pd.DataFrame:
    """One row per task, label and fashion (the shown labels always, other labels where they
    ran): n, mean test accuracy, its 95 % interval (ci_low, ci_high; NaN when none, with
    `no_interval` saying why; clipped to [0, 1] and then `clipped`), mean steps and images, the
    seeds `planned`, `failed` and `not_counted` (`seed_counts`) and `missing` (why there is no
    number)."""
    labels = sorted(set(SHOWN) | set(seeds["label"]), key=label_rank)
    records = []
    for task in tasks:
        for label in labels:
            for fashion in FASHIONS:
                space = row_space(task, fashion)
                ran = (seeds["task"] == task) & (seeds["space"] == space)
                if label not in SHOWN and not (ran & (seeds["label"] == label)).any():
                    continue
                records.append(summary_row(study, seeds, task, label, fashion))
    return pd.DataFrame.from_records(records)


def not_compared(problem: str) -> str:
    """The cell of a comparison refused because its rows trained different sources."""
    return f"not compared ({problem})"


def arm_by_seed(counted: pd.DataFrame) -> dict[object, float]:
    """{seed: test accuracy in points} of one arm's counted runs (a repeated seed: the last; a
    run without a recorded seed pairs with nothing, so its arm is compared by Welch's test)."""
    keys = [object() if _nan(s) else int(s) for s in counted["seed"]]  # unknown: unique
    return {k: float(a) * PCT for k, a in zip(keys, counted["acc"])}


def test_columns(d: Difference | None) -> dict[str, object]:
    """A comparison's statistics as frame columns (`ci_low`, `ci_high`, `no_interval`, `test`,
    `p_value`, `df`, `mde`, `mde_why`); all empty for None (a comparison not made)."""
    if d is None:
        return dict.fromkeys(["ci_low", "ci_high", "p_value", "df", "mde"], np.nan) | {
            "no_interval": None,
            "test": None,
            "mde_why": None,
        }
    return {
        **d.bounds(),
        "test": d.test,
        "p_value": np.nan if d.p is None else d.p,
        "df": np.nan if d.df is None else d.df,
        "mde": np.nan if d.mde is None else d.mde,
        "mde_why": d.mde_why,
    }


def difference_frame(
    seeds: pd.DataFrame, summary: pd.DataFrame, refused: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Per task and label: multi - single test accuracy in points (difference of the means) and
    its test (`test_columns`: the paired t over seed pairs when both arms have the same seeds,
    else Welch's; 95 % interval, two-sided p-value, minimum detectable difference); `p_holm`
    is set by `holm_family`. A row with a missing arm, or a task in `refused` (task -> why its
    single and multi runs are different sources), gets no number and no statistics."""
    refused = refused or {}
    records = []
    for (task, label), rows in summary.groupby(["task", "label"], sort=False):
        by = rows.set_index("fashion")
        if set(by.index) != set(FASHIONS):
            continue
        why = _text(by.loc["multi", "missing"]) or _text(by.loc["single", "missing"])
        why = not_compared(refused[task]) if task in refused else why
        counted = seeds[seeds["counted"] & (seeds["task"] == task) & (seeds["label"] == label)]
        arms = {f: arm_by_seed(counted[counted["fashion"] == f]) for f in FASHIONS}
        d = paired(arms["multi"], arms["single"])
        records.append(
            {
                "task": task,
                "label": label,
                "n_multi": d.n_a,
                "n_single": d.n_b,
                "diff_pts": np.nan if why else d.diff,
                **test_columns(None if why else d),
                "p_holm": np.nan,
                "missing": why,
            }
        )
    return pd.DataFrame.from_records(records)


def holm_family(diffs: pd.DataFrame, dm: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table's family of tests, Holm-corrected together: multi - single of every task for
    each shown label, and Δm of each shown label (the verdict's first block claims all of them).
    Sets `p_holm` of those rows; other labels' rows (`tuned-2` ..) keep NaN."""
    diffs, dm = diffs.copy(), dm.copy()
    shown = diffs["label"].isin(SHOWN) if len(diffs) else pd.Series(dtype=bool)
    pvalues = list(diffs.loc[shown, "p_value"]) + list(dm.get("p_value", []))
    adjusted = holm(pvalues)
    if len(diffs):
        diffs.loc[shown, "p_holm"] = adjusted[: int(shown.sum())]
    if len(dm):
        dm["p_holm"] = adjusted[int(shown.sum()) :]
    return diffs, dm


def paired_delta_m(seeds: pd.DataFrame, label: str, tasks: Sequence[str]) -> dict[int, float]:
    """Δm in % per seed r: mean over tasks of (multi_r - single_r) / single_r, pairing seed r
    of the multi-task run with seed r of each single-task run; only seeds that finished in
    all of them."""
    counted = seeds[seeds["counted"] & (seeds["label"] == label)]
    acc = counted.drop_duplicates(["task", "fashion", "seed"]).set_index(
        ["task", "fashion", "seed"]
    )["acc"]
    common: set | None = None
    for task in tasks:
        for fashion in FASHIONS:
            found = {s for (t, f, s) in acc.index if t == task and f == fashion}
            common = found if common is None else common & found
    out = {}
    for seed in sorted(common or ()):
        ratios = [
            (acc[(t, "multi", seed)] - acc[(t, "single", seed)]) / acc[(t, "single", seed)]
            for t in tasks
        ]
        out[int(seed)] = float(np.mean(ratios) * PCT)
    return out


def delta_m_frame(
    seeds: pd.DataFrame,
    summary: pd.DataFrame,
    tasks: Sequence[str],
    refused: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Per shown label: Δm in % (mean over seed pairs), its test against 0 over the pairs
    (`test_columns` of `stats.one_sample`: 95 % t-interval, p-value, minimum detectable Δm),
    the seeds paired, and why it is missing (also: a task in `refused`, see difference_frame);
    `p_holm` is set by `holm_family`."""
    refused = refused or {}
    records = []
    for label in SHOWN:
        rows = summary[summary["label"] == label]
        why = next((m for m in rows["missing"] if _text(m)), None)
        if refused:
            why = not_compared("; ".join(f"{t}: {r}" for t, r in refused.items()))
        pairs = paired_delta_m(seeds, label, tasks) if why is None and tasks else {}
        if why is None and not pairs:
            why = "missing (no seed finished in every run)"
        est = mean_interval(list(pairs.values()))
        records.append(
            {
                "label": label,
                "n": est.n,
                "delta_m_pct": est.mean,
                **test_columns(None if why else one_sample(pairs)),
                "no_interval": est.why if est.n else None,
                "p_holm": np.nan,
                "seeds": ",".join(map(str, pairs)),
                "missing": why,
            }
        )
    return pd.DataFrame.from_records(records)


# ---------------------------------------------------------------------------------------------
# display cells


def _acc_cell(r: Mapping) -> str:
    if _text(r["missing"]):
        return r["missing"]
    return format_acc(
        r["mean"],
        int(r["n"]),
        r["ci_low"],
        r["ci_high"],
        _text(r["no_interval"]),
        planned=int(r["planned"]),
        not_counted=_text(r["not_counted"]),
        clipped=bool(r["clipped"]),
    )


def _diff_cell(d: Mapping | None) -> str:
    if d is None:
        return ""
    if _text(d["missing"]):
        return "n/a " + d["missing"].removeprefix("missing ")
    return format_difference(
        d["diff_pts"],
        d["ci_low"],
        d["ci_high"],
        d["p_value"],
        _text(d["no_interval"]),
        _text(d["test"]),
        d["p_holm"],
        d["mde"],
    )


def _delta_m_cell(d: Mapping) -> str:
    if _text(d["missing"]):
        return "n/a " + d["missing"].removeprefix("missing ")
    return format_delta_m(
        d["delta_m_pct"],
        int(d["n"]),
        d["ci_low"],
        d["ci_high"],
        _text(d["no_interval"]),
        d["p_value"],
        d["p_holm"],
        d["mde"],
    )


def _times(ratio: float) -> str:
    """A multiple: "4.8×", "0.5×", "0.04×"."""
    return f"{ratio:.1f}×" if ratio >= 1 else f"{ratio:.2g}×"


def _steps_cell(r: Mapping, summary: pd.DataFrame) -> str:
    """A row's mean optimizer steps of its task; on a multi-task row also as a multiple of the
    task's single-task run's ("5,750 (4.8× single)"): the planned steps the run recorded, else
    (a study from before budgets) the same label's single-task row's mean."""
    if _text(r["missing"]):
        return ""
    if r["fashion"] != "multi":
        return _count(r["steps"])
    single = r.get("single_steps")
    if _nan(single):
        rival = summary[
            (summary["task"] == r["task"])
            & (summary["label"] == r["label"])
            & (summary["fashion"] == "single")
        ]
        single = rival["steps"].iloc[0] if len(rival) else np.nan
    if _nan(single) or not single or _nan(r["steps"]):
        return _count(r["steps"])
    return f"{_count(r['steps'])} ({_times(r['steps'] / single)} single)"


def display_cells(summary: pd.DataFrame, diffs: pd.DataFrame, dm: pd.DataFrame) -> pd.DataFrame:
    """The shown table: per task its four rows (baseline, then tuned; single, then multi; the
    difference on the multi-task row), then one Δm row per shown label."""
    diff_of = {(d["task"], d["label"]): d for d in diffs.to_dict("records")}
    cells = []
    shown = summary[summary["label"].isin(SHOWN)]
    for r in shown.to_dict("records"):
        is_multi = r["fashion"] == "multi"
        cells.append(
            {
                "task": r["task"],
                "row": r["row"],
                CELLS["acc"]: _acc_cell(r),
                CELLS["diff"]: _diff_cell(
                    diff_of.get((r["task"], r["label"])) if is_multi else None
                ),
                CELLS["steps"]: _steps_cell(r, summary),
                CELLS["images"]: "" if _text(r["missing"]) else _count(r["images"]),
            }
        )
    for d in dm.to_dict("records"):
        row = {"task": DELTA_M, "row": KINDS[d["label"]], CELLS["diff"]: _delta_m_cell(d)}
        cells.append({**dict.fromkeys(["task", "row", *CELLS.values()], ""), **row})
    return pd.DataFrame(cells, columns=["task", "row", *CELLS.values()])


# ---------------------------------------------------------------------------------------------
# notes: split, epoch, seeds, the training each row got, runs not counted


def _config_text(run: Mapping) -> str:
    parts = [f"{k}={run[k]}" for k in CONFIG_KEYS if k in run and not _nan(run[k])]
    return ", ".join(parts) or "config unknown"


def _training_notes(study: Study, tasks: Sequence[str]) -> list[str]:
    """What each shown (space, label) trained: its configuration and where it comes from."""
    notes = []
    runs = study.runs
    spaces = [single_space(t) for t in tasks] + [MULTI_SPACE]
    for space in spaces:
        for label in SHOWN:
            rows = runs[(runs["space"] == space) & (runs["label"] == label)]
            if rows.empty:
                continue
            run = rows.iloc[0]
            source = run.get("source_trial")
            origin = (
                f"search trial {space}/{TRIAL_PREFIX}{source}"
                if not _nan(source)
                else "the baseline configuration"
            )
            notes.append(f"{space} {label}: {origin} ({_config_text(run)})")
    return notes


def study_budgets(study: Study) -> list[str]:
    """The training budgets the study's confirmation runs name (their configs), else its
    study.json's; a record written before budgets existed ran under names.LEGACY_BUDGET."""
    runs = study.runs
    if BUDGET_KEY in runs and runs[BUDGET_KEY].notna().any():
        return sorted(str(b) for b in pd.unique(runs[BUDGET_KEY].dropna()))
    return [str(study.settings.get(BUDGET_KEY, LEGACY_BUDGET))]


def _budget_note(study: Study) -> str:
    """The training every row got: data, epochs, batch size, budget, seeds."""
    runs = study.runs
    values = {
        key: ", ".join(str(v) for v in sorted(pd.unique(runs[key].dropna())))
        for key in ("max_epochs", "batch_size", "seed")
        if key in runs
    }
    epochs = values.get("max_epochs", "?")
    return (
        "training: every run from scratch on train + validation for "
        f"{epochs} epoch{'' if epochs == '1' else 's'} (no early stopping), batch size "
        f"{values.get('batch_size', '?')} per task, {budget_text(study_budgets(study))}; "
        f"seeds {values.get('seed', '?')} "
        "(n in a cell: the seeds that finished; runs not counted are listed below)"
    )


def budget_text(budgets: Sequence[str]) -> str:
    """ "budget total: <what it means>"; several (a damaged study): each named."""
    return "; ".join(f"budget {b}: {BUDGETS.get(b, 'unknown budget')}" for b in budgets)


def _steps_note() -> str:
    """What the optimizer-steps column holds."""
    return (
        "optimizer steps: steps the task took part in, summed over the run's epochs (mean over "
        "seeds), and on a multi-task row as a multiple of the task's single-task run's steps "
        '("4.8× single"); images seen = steps x batch size'
    )


def _run_notes(study: Study) -> list[str]:
    """Runs that do not count (not finished) and planned runs that never started."""
    notes = []
    runs = study.runs
    for (space, label), rows in runs.groupby(["space", "label"], sort=False):
        bad = rows[rows["status"] != "finished"]
        planned = {r.get("seed") for r in study.plan.get(space, []) if r.get("label") == label}
        absent = sorted(s for s in planned - set(rows["seed"].dropna()) if s is not None)
        what = [f"seed {s} {st}" for s, st in zip(bad["seed"], bad["status"])]
        what += [f"seed {s} not started" for s in absent]
        if what:
            notes.append(f"{space} {label}: not counted: {', '.join(what)}")
    return notes


def _clipped_note(summary: pd.DataFrame) -> list[str]:
    if not summary["clipped"].any():
        return []
    return [
        f"{CLIPPED}: the interval's bound is clipped to [0, 100] % (the t-interval of so few or "
        "so spread seeds reaches past a possible accuracy); the CSV's `clipped` column marks it"
    ]


def _family_size(differences: pd.DataFrame, delta_m: pd.DataFrame) -> int:
    p_holm = pd.concat([differences.get("p_holm"), delta_m.get("p_holm")])
    return int(p_holm.notna().sum())


def confirmation_notes(
    study: Study,
    tasks: Sequence[str],
    summary: pd.DataFrame,
    differences: pd.DataFrame,
    delta_m: pd.DataFrame,
) -> list[str]:
    """The notes under the test table (`summary`, `differences`, `delta_m`: its frames)."""
    conf = f"{CONFIDENCE:.0%}"
    notes = [
        f"split: {TEST} (each task's held-out test set), scored once per run at its {SELECTION}; "
        f"every choice (trials, epochs, configurations) was made on {VALIDATION} before",
        f"± = half-width of the {conf} Student-t confidence interval over seeds (scipy.stats); "
        f"n=2 of 3: a planned seed did not count (diverged, errored, not started: listed below)",
        *_clipped_note(summary),
        f"multi - single: difference of the mean test accuracies in points; seed r of the "
        "multi- and single-task runs share their initialisation, so when both arms have the "
        f"same seeds it is a paired t-test over the seed pairs (n - 1 df, {conf} interval), "
        "else Welch's (the test is named in each cell)",
        f"{DELTA_M} = mean over tasks of (multi - single) / single, in %, computed per seed by "
        "pairing seed r of the multi-task run with seed r of each single-task run; mean, "
        f"{conf} t-interval and t-test against 0 over those seed pairs",
        f"Holm: the multi - single tests of every task and the {DELTA_M} tests, baseline and "
        f"tuned ({_family_size(differences, delta_m)} tests), are one family; Holm p is each "
        f"p-value adjusted by Holm's step-down method (a difference is significant when Holm p "
        f"< {ALPHA:g})",
        f"MDE: the smallest true difference the test would detect with {POWER:.0%} power at "
        f"two-sided {ALPHA:g}, estimated from the seeds' observed spread and their number "
        f"(points; % for {DELTA_M}): after a non-significant result, a true difference of the "
        "MDE or more would likely have shown; smaller ones easily go unseen",
        _steps_note(),
        f"tuned = {TUNED_BEST}, the search's best configuration by validation score; the other "
        "tuned runs, and every seed's value, are in the CSV (--format csv)",
        _budget_note(study),
    ]
    return notes + _source_notes(study, tasks) + _training_notes(study, tasks) + _run_notes(study)


def refused_tasks(study: Study, tasks: Sequence[str]) -> dict[str, str]:
    """Tasks whose single- and multi-task runs trained different sources, and why."""
    found = {t: study.source_problem(t, [single_space(t), MULTI_SPACE]) for t in tasks}
    return {t: why for t, why in found.items() if why}


def _source_notes(study: Study, tasks: Sequence[str]) -> list[str]:
    """Which data each task is (tasks.json's spec and fingerprint), and what was refused."""
    sources = [f"{t} = {study.source(t)}" for t in tasks if study.source(t)]
    notes = [f"tasks: {'; '.join(sources)}"] if sources else []
    return notes + [
        f"{t}: single- and multi-task not compared: {why} (name each dataset apart with "
        "=<name> in --tasks)"
        for t, why in refused_tasks(study, tasks).items()
    ]


def no_test_reason(study: Study) -> str | None:
    """Why the study has no test figures and how to get them; None when it has some."""
    if not study.runs.empty:
        return None
    if study.settings.get("confirm_seeds") == 0:
        why = "this study ran without a confirmation stage (--confirm-seeds 0)"
    elif study.plan:
        why = "its confirmation runs are planned but none has started yet"
    else:
        why = "it has no confirmation runs (written before the confirmation stage, or unfinished)"
    return (
        f"No test figures: {why}. Get them with: {CONFIRM_COMMAND} {study.shown_name} "
        "(retrains the baseline and the best configurations with several seeds and scores them "
        f"once on {TEST})"
    )


# ---------------------------------------------------------------------------------------------
# the table


@dataclasses.dataclass
class Comparison:
    """The comparison table of a study.

    `cells`: the shown test table (four rows per task, then the Δm rows); empty when the study
    has no test figures, and then `no_test` says why and how to get them. `seeds`: one row per
    confirmation run and task (`SEED_COLUMNS`). `summary`: one row per task, label and fashion
    (`summary_frame`). `differences`: multi - single per task and label (`difference_frame`).
    `delta_m`: per shown label (`delta_m_frame`). `search`: the search-stage selection figures
    (validation, optimistic)."""

    title: str
    cells: pd.DataFrame
    seeds: pd.DataFrame
    summary: pd.DataFrame
    differences: pd.DataFrame
    delta_m: pd.DataFrame
    notes: list[str]
    no_test: str | None
    search: SearchComparison
    synthetic: bool
    methods: MethodsSection | None = None  # with --compare-methods: `analysis.methods`


def table_tasks(study: Study) -> list[str]:
    """The table's tasks: the multi-task space's, else every task of the study."""
    return list(study.space_tasks.get(MULTI_SPACE, ())) or study.task_names


def test_frames(
    study: Study, seeds: pd.DataFrame, tasks: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The test figures of a study with confirmation runs: its summary (`summary_frame`), its
    multi - single differences and its Δm, Holm-corrected as one family (`holm_family`)."""
    summary = summary_frame(study, seeds, tasks)
    refused = refused_tasks(study, tasks)
    diffs, dm = holm_family(
        difference_frame(seeds, summary, refused), delta_m_frame(seeds, summary, tasks, refused)
    )
    return summary, diffs, dm


def comparison(study: Study) -> Comparison:
    """Build the comparison table of a loaded study."""
    tasks = table_tasks(study)
    name = study.settings.get("name", study.path.name)
    title = f"Test accuracy, single- vs multi-task, study {name!r}"
    notes = []
    if study.synthetic:
        title += " (synthetic data: the numbers say nothing about real accuracy)"
        notes.append("synthetic data: trained on built-in stand-ins, not the real datasets")
    search = search_comparison(study)
    no_test = no_test_reason(study)
    seeds = seed_frame(study, tasks)
    if no_test:
        empty = pd.DataFrame()
        return Comparison(
            title, empty, seeds, empty, empty, empty, notes, no_test, search, study.synthetic
        )
    summary, diffs, dm = test_frames(study, seeds, tasks)
    cells = display_cells(summary, diffs, dm)
    notes += confirmation_notes(study, tasks, summary, diffs, dm)
    methods = _methods_section(study, seeds, tasks)
    return Comparison(
        title, cells, seeds, summary, diffs, dm, notes, None, search, study.synthetic, methods
    )


def _methods_section(
    study: Study, seeds: pd.DataFrame, tasks: Sequence[str]
) -> MethodsSection | None:
    """The methods section (`analysis.methods`) of a study run with --compare-methods, else
    None."""
    from analysis import methods

    if not methods.compared_methods(study.settings):
        return None
    return methods.methods_section(study, seeds, tasks)


# ---------------------------------------------------------------------------------------------
# output formats: the test table (or why there is none), then the search-stage section


def _sections(table: Comparison) -> list[tuple[str, pd.DataFrame, list[str]]]:
    """(title, cells, notes) of each section, the test table first."""
    test = (table.title, table.cells, table.notes)
    if table.no_test:
        test = (table.title, pd.DataFrame(), [table.no_test, *table.notes])
    methods = []
    if table.methods is not None:
        from analysis.methods import TITLE

        methods = [(TITLE, table.methods.cells, table.methods.notes)]
    return [test, *methods, (table.search.title, table.search.cells, table.search.notes)]


def _text_section(title: str, cells: pd.DataFrame, notes: list[str]) -> list[str]:
    lines = [title, ""]
    if not cells.empty:
        header = list(cells.columns)
        body = [[str(v) for v in row] for row in cells.itertuples(index=False)]
        widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]

        def line(vals: list[str]) -> str:
            return "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()

        rule = "  ".join("-" * w for w in widths)
        lines += [line(header), rule]
        for i, r in enumerate(body):
            if r[0] == DELTA_M and (i == 0 or body[i - 1][0] != DELTA_M):
                lines.append(rule)
            lines.append(line(r))
        lines.append("")
    return lines + [f"* {n}" for n in notes]


def to_text(table: Comparison) -> str:
    """Aligned plain text for a terminal."""
    parts = ["\n".join(_text_section(*s)) for s in _sections(table)]
    return "\n\n".join(parts) + "\n"


def _md_section(title: str, cells: pd.DataFrame, notes: list[str]) -> list[str]:
    esc = lambda v: str(v).replace("|", "\\|")
    lines = [f"**{esc(title)}**", ""]
    if not cells.empty:
        header = list(cells.columns)
        lines.append("| " + " | ".join(map(esc, header)) + " |")
        lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|")
        lines += [
            "| " + " | ".join(esc(v) for v in row) + " |" for row in cells.itertuples(index=False)
        ]
        lines.append("")
    return lines + [f"- {esc(n)}" for n in notes]


def to_markdown(table: Comparison) -> str:
    """GitHub-flavoured Markdown: each section's title, table and notes."""
    return "\n\n".join("\n".join(_md_section(*s)) for s in _sections(table)) + "\n"


def _html_cell(value: object) -> str:
    text = html.escape(str(value))
    missing = str(value).startswith(("missing", "n/a"))
    return f'<td class="missing">{text}</td>' if missing else f"<td>{text}</td>"


def _html_section(title: str, cells: pd.DataFrame, notes: list[str], css: str) -> str:
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    if cells.empty:
        return f'<p class="caption">{html.escape(title)}</p><ul class="notes">{items}</ul>'
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cells.columns)
    rows = []
    for row in cells.itertuples(index=False):
        css_row = ' class="delta-m"' if row[0] == DELTA_M else ""
        rows.append(f"<tr{css_row}>{''.join(map(_html_cell, row))}</tr>")
    body = "".join(rows)
    return (
        f'<table class="{css}"><caption>{html.escape(title)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f'<ul class="notes">{items}</ul>'
    )


def to_html(table: Comparison) -> str:
    """The sections as HTML tables with their notes (used by the report): the test table, the
    methods section (with --compare-methods), the search stage."""
    test, *methods, search = _sections(table)
    parts = [_html_section(*test, "comparison")]
    parts += [_html_section(*m, "comparison methods") for m in methods]
    return "".join(parts) + _html_section(*search, "comparison search")


# ---------------------------------------------------------------------------------------------
# CSV: one long, machine-readable frame; every row names its split and selection

CSV_COLUMNS = ["record", "split", "selection", "task", "row", "space", "label", "seed"]
CSV_COLUMNS += ["trial_id", "status", "epoch", "n", "planned", "failed", "value", "unit"]
CSV_COLUMNS += ["ci_low", "ci_high", "clipped", "test", "p_value", "p_holm", "mde"]
CSV_COLUMNS += ["steps", "images", "missing", "data"]
SEARCH_SELECTION = "top trial by last-epoch score (ran all epochs), at its peak epoch"


def _seed_records(table: Comparison) -> pd.DataFrame:
    s = table.seeds
    return s.assign(record="seed", split=TEST, selection=SELECTION, n=1, value=s["acc"])


def _summary_records(table: Comparison) -> pd.DataFrame:
    s = table.summary
    return s.assign(record="mean", split=TEST, selection=SELECTION, value=s["mean"])


def _difference_records(table: Comparison) -> pd.DataFrame:
    d = table.differences
    return d.assign(
        record="multi - single",
        split=TEST,
        selection=SELECTION,
        row=d["label"].map(lambda lb: KINDS.get(lb, lb)),
        n=d["n_multi"].astype(str) + "+" + d["n_single"].astype(str),
        value=d["diff_pts"],
        unit="points",
    )


def _delta_m_records(table: Comparison) -> pd.DataFrame:
    d = table.delta_m
    return d.assign(
        record="delta_m",
        split=TEST,
        selection=SELECTION,
        row=d["label"].map(KINDS),
        value=d["delta_m_pct"],
        unit="percent",
    )


def _search_records(table: Comparison) -> pd.DataFrame:
    """The search-stage figures: per task and column, the validation accuracy and its trial."""
    frame = table.search.frame
    parts = []
    for key, name in SEARCH_COLUMNS.items():
        parts.append(
            pd.DataFrame(
                {
                    "task": frame["task"],
                    "row": name,
                    "trial_id": frame[f"{key}_trial"],
                    "epoch": frame[f"{key}_epoch"],
                    "value": frame[f"{key}_acc"],
                }
            )
        )
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return out.assign(record="search", split=VALIDATION, selection=SEARCH_SELECTION, n=1)


def csv_frame(table: Comparison) -> pd.DataFrame:
    """Every number of the table in one long frame (`CSV_COLUMNS`): `record` is `seed` (one
    per confirmation run and task), `mean`, `multi - single`, `delta_m`, the methods section's
    (`analysis.methods.csv_records`) or `search`; `value` is
    an accuracy (fraction) unless `unit` says points or percent. A `mean` has the seeds
    `planned` and `failed` (diverged or errored) beside its n, and `clipped` when its interval
    was clipped to [0, 1]; a comparison has its `test`, raw `p_value`, `p_holm` (Holm within the
    table's family) and `mde` (same unit as `value`); one not made (missing or "not compared")
    has none of them."""
    parts = []
    if not table.no_test:
        parts += [_seed_records(table), _summary_records(table)]
        parts += [_difference_records(table), _delta_m_records(table)]
    if table.methods is not None:
        from analysis.methods import csv_records

        parts.append(csv_records(table.methods))
    parts.append(_search_records(table))
    frame = pd.concat([p for p in parts if len(p)], ignore_index=True)
    if "unit" not in frame:
        frame["unit"] = np.nan
    frame["unit"] = frame["unit"].fillna("accuracy")
    frame["data"] = "synthetic" if table.synthetic else "real"
    for col in CSV_COLUMNS:
        if col not in frame:
            frame[col] = np.nan
    return frame[CSV_COLUMNS]


def to_csv(table: Comparison) -> str:
    """The long frame of `csv_frame` as CSV."""
    return csv_frame(table).to_csv(index=False, float_format="%.6g")


FORMATS: dict[str, Callable[[Comparison], str]] = {
    "text": to_text,
    "markdown": to_markdown,
    "csv": to_csv,
    "html": to_html,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.table",
        description="Print the single- vs multi-task comparison table of a study.",
    )
    parser.add_argument(
        "study", help=f"study directory (holds {SETTINGS_FILE}) or its URI (s3://...)"
    )
    parser.add_argument("--format", choices=sorted(FORMATS), default="text")
    parser.add_argument("--out", help="write to this file instead of standard output")
    remote.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        study = remote.local_study(args.study, args.storage_endpoint, args.cache_dir)
        shown = remote.shown_name(args.study, args.storage_endpoint)
        text = FORMATS[args.format](comparison(load_study(study, shown)))
        if args.out:
            with open(args.out, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote {args.out}")
        else:
            sys.stdout.write(text)
    except AnalysisError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The confirmation's arms: per task and row, the test accuracy of every seed's run, their summary
over seeds, the multi - single differences with their tests (paired over seeds where the arms
share them), Δm per seed pair, and the Holm family of the shown rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from analysis.cells import PCT, clip_interval, is_nan, text_of
from analysis.confirmation import FAILED_STATUSES, label_rank
from analysis.results import Study
from analysis.stats import (
    Difference,
    holm,
    mean_interval,
    one_sample,
    paired,
)
from names import (
    ACC,
    BASELINE_LABEL,
    IMAGES,
    MULTI_ARM,
    MULTI_SPACE,
    SINGLE_ARM,
    SINGLE_STEPS,
    STEPS,
    TEST,
    TUNED_BEST,
    eval_metric,
    single_space,
    task_metric,
)

FASHIONS = {SINGLE_ARM: "single-task", MULTI_ARM: "multi-task"}
SHOWN = (BASELINE_LABEL, TUNED_BEST)  # the labels the table shows; every label is in its CSV
KINDS = {BASELINE_LABEL: "baseline", TUNED_BEST: "tuned"}
SELECTION = "last epoch"  # the epoch of a confirmation run that is scored (once)
DELTA_M = "Δm"
SEED_COLUMNS = ["task", "row", "label", "fashion", "space", "seed", "trial_id", "source_trial"]
SEED_COLUMNS += ["status", "epoch", "acc", "steps", "images", "single_steps", "counted"]


def row_name(label: str, fashion: str) -> str:
    """A table row's name: (`baseline`, `single`) -> "baseline single-task", (`tuned-1`,
    `multi`) -> "tuned multi-task", (`tuned-2`, `multi`) -> "tuned-2 multi-task"."""
    return f"{KINDS.get(label, label)} {FASHIONS[fashion]}"


def row_space(task: str, fashion: str) -> str:
    return single_space(task) if fashion == SINGLE_ARM else MULTI_SPACE


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
                "fashion": np.where(runs["space"] == MULTI_SPACE, MULTI_ARM, SINGLE_ARM),
                "space": runs["space"],
                "seed": runs["seed"],
                "trial_id": runs["trial_id"],
                "source_trial": runs["source_trial"],
                "status": runs["status"],
                "epoch": runs["last_epoch"],
                "acc": pd.to_numeric(runs.get(eval_metric(ACC, task, TEST)), errors="coerce"),
                "steps": runs.get(task_metric(STEPS, task)),
                "images": runs.get(task_metric(IMAGES, task)),
                "single_steps": runs.get(task_metric(SINGLE_STEPS, task), np.nan),
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
    keys = [object() if is_nan(s) else int(s) for s in counted["seed"]]  # unknown: unique
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
        why = text_of(by.loc[MULTI_ARM, "missing"]) or text_of(by.loc[SINGLE_ARM, "missing"])
        why = not_compared(refused[task]) if task in refused else why
        counted = seeds[seeds["counted"] & (seeds["task"] == task) & (seeds["label"] == label)]
        arms = {f: arm_by_seed(counted[counted["fashion"] == f]) for f in FASHIONS}
        d = paired(arms[MULTI_ARM], arms[SINGLE_ARM])
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
            (acc[(t, MULTI_ARM, seed)] - acc[(t, SINGLE_ARM, seed)]) / acc[(t, SINGLE_ARM, seed)]
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
        why = next((m for m in rows["missing"] if text_of(m)), None)
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


def refused_tasks(study: Study, tasks: Sequence[str]) -> dict[str, str]:
    """Tasks whose single- and multi-task runs trained different sources, and why."""
    found = {t: study.source_problem(t, [single_space(t), MULTI_SPACE]) for t in tasks}
    return {t: why for t, why in found.items() if why}

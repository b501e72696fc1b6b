"""The search-stage selection figures: per task, the best single- and multi-task *validation*
accuracy a search found, and its baseline trials'. Optimistic by construction: the trials and
epochs are selected on the very validation data they are reported on, with one seed. The
comparison itself is `table`'s test figures; this is its separate, labelled section.

Which trial: `ranked_trials`, the search's one ranking, which the confirmation stage
retrains: among the trials that ran all their epochs, the best validation score at the last
epoch (for `multi` the study metric, score = mean validation accuracy over its tasks). So the
trial shown is the one confirmed as `tuned-1`.

Which epoch: its best-score epoch, the peak, with the accuracy of every task at that one epoch
(never per-task maxima from different trials or epochs). The peak is optimistic and is not what
was confirmed: the confirmation retrains the configuration and scores its last epoch on test.

Per task:
  single-task  the top trial of `single-<task>`, at its peak
  multi-task   the top trial of `multi`, every task at that trial's peak
  baseline     the baseline configuration's trial of each space (`names.baseline`, enqueued
               first), at its peak
and the change multi vs single in absolute points ("80.6% (↓ 8.1)"), plus
Δm = mean over tasks of (acc_multi - acc_single) / acc_single, in %.

A trial that is missing is shown as missing, never invented.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from analysis.results import Study
from names import MULTI_ARM, MULTI_SPACE, SINGLE_ARM, TRIAL_PREFIX, VALIDATION, single_space

SEARCH_TITLE = "Search-stage selection figures (validation, optimistic)"
COLUMNS = {
    SINGLE_ARM: "single-task (best)",
    MULTI_ARM: "multi-task (best by score)",
    "baseline_single": "baseline single-task",
    "baseline_multi": "baseline multi-task",
}


# ---------------------------------------------------------------------------------------------
# pure pieces


def format_pct(acc: float) -> str:
    """0.806 -> "80.6%"."""
    return f"{acc * 100:.1f}%"


def format_change(multi: float, single: float | None) -> str:
    """Multi-task accuracy with its change from single-task in points: "80.6% (↓ 8.1)"."""
    if single is None or _nan(single):
        return format_pct(multi)
    points = round((multi - single) * 100, 1)
    if points > 0:
        change = f"↑ {points:.1f}"
    elif points < 0:
        change = f"↓ {-points:.1f}"
    else:
        change = "= 0.0"
    return f"{format_pct(multi)} ({change})"


def delta_m(multi: Mapping[str, float], single: Mapping[str, float]) -> float:
    """Δm in %: mean over tasks of (multi - single) / single. NaN if a task lacks either."""
    tasks = list(multi)
    if not tasks or set(tasks) != set(single):
        return math.nan
    values = [(multi[t] - single[t]) / single[t] for t in tasks]
    if any(_nan(v) or math.isinf(v) for v in values):
        return math.nan
    return float(np.mean(values) * 100)


def format_delta_m(value: float) -> str:
    return f"{value:+.1f}%"


def _nan(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


RANKED = "finished"  # the stop reason of the trials ranked: they ran all their epochs
RANKING = (
    "ranked by validation score at the last epoch, among trials that ran all their epochs "
    "(the confirmation's tuned-1, tuned-2, ...)"
)


def ranked_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """The search's ranking, which the confirmation stage retrains (`tuned-1` first): trials
    that ran all their epochs (stop reason `finished`: neither stopped by ASHA nor interrupted,
    diverged or errored), best validation score at their *last* epoch first (ties: the earlier
    trial). Selection then matches confirmation, which scores a run at its last epoch: a trial
    that peaked early and decayed is not preferred for its peak, and one that ASHA stopped
    after a few epochs is never compared by an early score."""
    ended = trials[trials["stop_reason"] == RANKED].dropna(subset=["last_score"])
    return ended.sort_values(["last_score", "order"], ascending=[False, True], kind="stable")


def best_trial(trials: pd.DataFrame) -> pd.Series | None:
    """The first of `ranked_trials` (the search trial confirmed as `tuned-1`), or None."""
    ranked = ranked_trials(trials)
    return None if ranked.empty else ranked.iloc[0]


def _pick(study: Study, space: str, baseline: bool) -> tuple[pd.Series | None, str | None]:
    """A space's best (or baseline) trial, or why there is none."""
    if space not in study.space_tasks:
        return None, f"missing (no {space} run)"
    rows = study.space_trials(space)
    if baseline:
        rows = rows[rows["is_baseline"]]
        if rows.empty:
            return None, f"missing (no baseline trial in {space})"
    if rows.empty:
        return None, f"missing (no {space} trials)"
    errored = (rows["stop_reason"] == "errored").all() and rows["best_score"].isna().all()
    if errored:
        what = (
            f"the baseline trial of {space} errored" if baseline else f"{space}: all trials errored"
        )
        return None, f"missing ({what})"
    picked = best_trial(rows)
    if picked is None:
        what = (
            f"the baseline trial of {space} did not run all its epochs"
            if baseline
            else f"{space}: no trial ran all its epochs"
        )
        return None, f"missing ({what})"
    return picked, None


# ---------------------------------------------------------------------------------------------
# the table


@dataclasses.dataclass
class SearchComparison:
    """Numbers (`frame`, one row per task) and display cells (`cells`) of the search-stage
    section."""

    title: str
    frame: pd.DataFrame
    cells: pd.DataFrame
    notes: list[str]
    delta_m: float
    baseline_delta_m: float
    synthetic: bool


def _entry(trial: pd.Series | None, task: str) -> dict[str, object]:
    """A column's accuracy for one task, with the trial and epoch it comes from."""
    if trial is None:
        return {"acc": math.nan, "trial": None, "epoch": None}
    acc = trial.get(f"acc_at_best/{task}", math.nan)
    return {
        "acc": float(acc) if not _nan(acc) else math.nan,
        "trial": f"{trial['space']}/{TRIAL_PREFIX}{trial['trial_id']}",
        "epoch": int(trial["best_epoch"]) if not pd.isna(trial["best_epoch"]) else None,
    }


# each column and the column its change is measured against (None: shown as it is)
VERSUS = {
    SINGLE_ARM: None,
    MULTI_ARM: SINGLE_ARM,
    "baseline_single": None,
    "baseline_multi": "baseline_single",
}


def _picks(study: Study, task: str) -> dict[str, tuple[pd.Series | None, str | None]]:
    """Each column's trial for one task, or why there is none (keys as `COLUMNS`)."""
    spaces = {SINGLE_ARM: single_space(task), MULTI_ARM: MULTI_SPACE}
    return {
        key: _pick(study, spaces[key.removeprefix("baseline_")], key.startswith("baseline_"))
        for key in COLUMNS
    }


def _cells(
    task: str, picks: Mapping[str, tuple[object, str | None]], entries: Mapping[str, dict]
) -> dict[str, str]:
    """One task's display cells: why a trial is missing, else its accuracy (and change)."""
    cells = {"task": task}
    for key, ref in VERSUS.items():
        against = entries[ref]["acc"] if ref else None
        cells[COLUMNS[key]] = picks[key][1] or _cell(entries[key]["acc"], against)
    return cells


def search_comparison(study: Study) -> SearchComparison:
    """The search-stage selection figures of a loaded study (validation, optimistic)."""
    tasks = list(study.space_tasks.get(MULTI_SPACE, ())) or study.task_names
    rows, cells = [], []
    why_dm: dict[str, list[str | None]] = {key: [] for key, ref in VERSUS.items() if ref}
    for task in tasks:
        picks = _picks(study, task)
        entries = {key: _entry(trial, task) for key, (trial, _) in picks.items()}
        rows.append(_row(task, entries))
        cells.append(_cells(task, picks, entries))
        for key in why_dm:
            why_dm[key] += [picks[key][1], picks[VERSUS[key]][1]]
    frame = pd.DataFrame(rows)
    for key in COLUMNS:
        frame[f"{key}_epoch"] = pd.to_numeric(frame[f"{key}_epoch"]).astype("Int64")
    dm = {key: _frame_delta_m(frame, key, VERSUS[key]) for key in why_dm}
    frame["delta_m_pct"] = dm[MULTI_ARM]
    frame["baseline_delta_m_pct"] = dm["baseline_multi"]
    cells.append(
        {"task": "Δm"} | {COLUMNS[k]: _delta_m_cell(dm.get(k), why_dm.get(k)) for k in VERSUS}
    )
    notes = _provenance(frame, _pick(study, MULTI_SPACE, False)[0]) + _errored_notes(study)
    for task in tasks:  # two datasets under one name: its changes compare different data
        problem = study.source_problem(task, [single_space(task), MULTI_SPACE])
        if problem:
            notes.append(f"{task}: its changes compare different data, ignore them: {problem}")
    title = SEARCH_TITLE
    if study.synthetic:
        title += " (synthetic data)"
    split = (
        VALIDATION
        if study.split_recorded
        else "the dataset's held-out split (the study predates the three-way split: it has no "
        "separate validation data)"
    )
    notes.append(
        f"split: {split}; trials {RANKING}; accuracy at each trial's best-score epoch, its "
        "peak, not the last epoch that was confirmed; trials and epochs are selected on this "
        "same data with one seed, so these figures are optimistic selection figures, not the "
        "comparison"
    )
    notes.append(
        "change in points vs single-task; Δm = mean over tasks of (multi - single) / single"
    )
    table = pd.DataFrame(cells)
    return SearchComparison(
        title, frame, table, notes, dm[MULTI_ARM], dm["baseline_multi"], study.synthetic
    )


def _row(task: str, entries: Mapping[str, Mapping[str, object]]) -> dict[str, object]:
    """The numbers of one task's row: each column's accuracy, trial and epoch, and changes."""
    row: dict[str, object] = {"task": task}
    for key, entry in entries.items():
        row.update({f"{key}_{field}": value for field, value in entry.items()})
    acc = {key: entry["acc"] for key, entry in entries.items()}
    row["change_pts"] = (acc[MULTI_ARM] - acc[SINGLE_ARM]) * 100
    row["baseline_change_pts"] = (acc["baseline_multi"] - acc["baseline_single"]) * 100
    return row


def _delta_m_cell(value: float | None, why: list[str | None] | None) -> str:
    """The Δm row's cell: blank under a single-task column, else the value or why it is n/a."""
    if why is None:
        return ""
    return format_delta_m(value) if not _nan(value) else _na([w for w in why if w])


def _errored_notes(study: Study) -> list[str]:
    notes = []
    for space in study.spaces:
        errored = study.space_trials(space)["stop_reason"].eq("errored")
        if len(errored) and errored.all():
            notes.append(f"{space}: all {len(errored)} trials errored")
    return notes


def _na(reasons: list[str]) -> str:
    """ "n/a (no single-x run)" from the first missing cell's "missing (no single-x run)"."""
    first = reasons[0].removeprefix("missing ") if reasons else "(an accuracy is missing)"
    return f"n/a {first}"


def _cell(acc: float, baseline: float | None = None) -> str:
    if _nan(acc):
        return "missing (no accuracy reported)"
    return format_change(acc, baseline)


def _frame_delta_m(frame: pd.DataFrame, multi: str, single: str) -> float:
    m = dict(zip(frame["task"], frame[f"{multi}_acc"], strict=True))
    s = dict(zip(frame["task"], frame[f"{single}_acc"], strict=True))
    return delta_m(m, s)


def _provenance(frame: pd.DataFrame, multi: pd.Series | None) -> list[str]:
    out = []
    for _, r in frame.iterrows():
        if isinstance(r["single_trial"], str):
            out.append(
                f"single-task {r['task']}: {r['single_trial']} epoch {r['single_epoch']} (peak)"
            )
    if multi is not None:
        out.append(
            f"multi-task: {frame['multi_trial'].iloc[0]} epoch {frame['multi_epoch'].iloc[0]} "
            f"(peak score {multi['best_score']:.4f}; last-epoch score {multi['last_score']:.4f}, "
            f"by which it ranks; scheme {multi.get('scheme')})"
        )
    baselines = {
        f"{t} epoch {e}"
        for key in ("baseline_single", "baseline_multi")
        for t, e in zip(frame[f"{key}_trial"], frame[f"{key}_epoch"], strict=True)
        if isinstance(t, str)
    }
    if baselines:
        out.append("baseline configuration: " + ", ".join(sorted(baselines)))
    return out

"""The verdict: per space, which configuration won, with what hyperparameters, its score and
its change against the baseline. The report's first card and the CLI summary's per-space lines.

Two sources, never mixed in one row:

- **test** (the study has confirmation runs): the space's `tuned-1` against its `baseline`,
  per task, the mean test accuracy over seeds with its 95 % interval, the table's own numbers
  (`table.summary_frame`); the change is the difference of the two means with Welch's 95 %
  interval and p-value (`stats.welch`) over the same counted seeds.
- **validation** (no confirmation runs): the search's top trial by the table's rules
  (`search_table.best_trial`: the best validation score at the last epoch among trials that
  ran all their epochs, the one a confirmation would retrain as tuned-1), per task its
  validation accuracy at its best-score epoch (its peak), against the space's baseline trial
  at its own peak. Optimistic: selected on the same data it is scored on, one seed, peak epoch.

`verdict_data(study)` is pure (a DataFrame, `COLUMNS`); `search_picks(study)` is the search
pick of every space (also for the CLI); `render_html` draws the card.
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from analysis import table as table_mod
from analysis.results import Study
from analysis.search_table import best_trial
from analysis.stats import CONFIDENCE, welch
from names import BASELINE_LABEL, TEST, TRIAL_PREFIX, TUNED_BEST, VALIDATION

# the hyperparameters the card shows, in this order (others a space suggests follow, by name)
PARAM_KEYS = ("optimizer", "lr", "weight_decay", "lr_schedule", "scheme", "coin_p", "temperature")
PARAM_PREFIXES = ("loss_weights/",)
SEARCH_CAVEAT = "validation, optimistic, selected on the same data"
SCORE_ROW = "score (mean over tasks)"  # the study metric's row of a multi-task space
COLUMNS = [
    "space",
    "task",
    "split",
    "selection",
    "winner",
    "trial_id",
    "epoch",
    "params",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "baseline",
    "baseline_value",
    "baseline_ci_low",
    "baseline_ci_high",
    "baseline_n",
    "change_pts",
    "change_ci_low",
    "change_ci_high",
    "p_value",
    "missing",
]
PCT = 100.0


@dataclasses.dataclass(frozen=True)
class SearchPick:
    """A space's search-stage top trial (`best_trial`; shown at its peak epoch) and its
    baseline trial."""

    space: str
    trials: int
    errored: int
    best: pd.Series | None
    baseline: pd.Series | None

    @property
    def change_pts(self) -> float:
        """Best score minus the baseline trial's best score, in points (NaN without both)."""
        if self.best is None or self.baseline is None:
            return math.nan
        return float(self.best["best_score"] - self.baseline["best_score"]) * PCT


def search_picks(study: Study) -> list[SearchPick]:
    """Per space: its trial counts, its best trial (`best_trial`) and its baseline trial."""
    picks = []
    for space in study.spaces:
        trials = study.space_trials(space)
        base = trials[trials["is_baseline"]]
        picks.append(
            SearchPick(
                space=space,
                trials=len(trials),
                errored=int((trials["stop_reason"] == "errored").sum()),
                best=best_trial(trials),
                baseline=None if base.empty or base["best_score"].isna().all() else base.iloc[0],
            )
        )
    return picks


def params_of(row: Mapping, n_tasks: int) -> dict[str, object]:
    """The hyperparameters of a trial or run row (`PARAM_KEYS`, then per-task ones), without
    the blank ones; a single-task space's scheme label is not a hyperparameter."""
    keys = [k for k in PARAM_KEYS if not (k == "scheme" and n_tasks < 2)]
    keys += sorted(k for k in row if isinstance(k, str) and k.startswith(PARAM_PREFIXES))
    return {k: row[k] for k in keys if k in row and not _blank(row[k])}


def format_params(params: Mapping[str, object]) -> str:
    """{"lr": 0.001, "optimizer": "adam"} -> "lr=1.0e-03, optimizer=adam"."""
    out = []
    for key, value in params.items():
        if isinstance(value, float) and not float(value).is_integer():
            value = f"{value:.1e}" if abs(value) < 0.01 else f"{value:g}"
        out.append(f"{key}={value}")
    return ", ".join(out)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


# ---------------------------------------------------------------------------------------------
# the extract


def verdict_data(study: Study) -> pd.DataFrame:
    """One row per space and task (`COLUMNS`): test figures when the study has confirmation
    runs, else validation figures of the search (see the module's docstring)."""
    if table_mod.no_test_reason(study) is None:
        rows = _test_rows(study)
    else:
        rows = [r for pick in search_picks(study) for r in _search_rows(study, pick)]
    return pd.DataFrame.from_records(rows, columns=COLUMNS)


def _search_rows(study: Study, pick: SearchPick) -> list[dict]:
    tasks = list(study.space_tasks.get(pick.space, ()))
    best, base = pick.best, pick.baseline
    common = {
        "space": pick.space,
        "split": VALIDATION,
        "selection": "the top search trial (best score at the last epoch among trials that ran "
        "all their epochs) at its peak (best-score) epoch, against the space's baseline trial "
        "at its peak",
        "n": 1,
        "baseline_n": 1,
        "missing": None
        if best is not None
        else f"missing ({pick.space}: no trial ran all its epochs)",
    }
    if best is not None:
        common.update(
            winner=f"trial {best['trial_id']}" + (" (the baseline)" if best["is_baseline"] else ""),
            trial_id=str(best["trial_id"]),
            epoch=int(best["best_epoch"]),
            params=format_params(params_of(best, len(tasks))),
        )
    if base is not None:
        common["baseline"] = f"trial {base['trial_id']}, epoch {int(base['best_epoch'])}"
    metrics = [(t, f"acc_at_best/{t}") for t in tasks]
    if len(tasks) > 1:
        metrics.append((SCORE_ROW, "best_score"))
    rows = []
    for task, col in metrics:
        value = _get(best, col)
        against = _get(base, col)
        rows.append(
            {**common, "task": task, "value": value, "baseline_value": against}
            | {"change_pts": (value - against) * PCT}
        )
    return rows


def _get(row: pd.Series | None, col: str) -> float:
    if row is None:
        return math.nan
    value = row.get(col, math.nan)
    return math.nan if _blank(value) else float(value)


def _test_rows(study: Study) -> list[dict]:
    """Per space and task: tuned-1 against the baseline, the table's summary numbers."""
    tasks = table_mod.table_tasks(study)
    seeds = table_mod.seed_frame(study, tasks)
    summary = table_mod.summary_frame(study, seeds, tasks)
    rows = []
    for space in study.spaces:
        runs = study.runs[study.runs["space"] == space] if len(study.runs) else study.runs
        tuned = runs[runs["label"] == TUNED_BEST]
        n_tasks = len(study.space_tasks.get(space, ()))
        first = tuned.iloc[0] if len(tuned) else None
        for task in study.space_tasks.get(space, ()):
            part = summary[(summary["space"] == space) & (summary["task"] == task)]
            by = part.set_index("label")
            if TUNED_BEST not in by.index or BASELINE_LABEL not in by.index:
                continue
            rows.append(_test_row(space, task, by, seeds, first, n_tasks, _same(study, first)))
    return rows


def _same(study: Study, run: pd.Series | None) -> bool:
    """Whether a tuned run retrains its space's baseline trial (the search found no better)."""
    if run is None or _blank(run.get("source_trial")):
        return False
    trials = study.space_trials(run["space"])
    hit = trials[trials["trial_id"].astype(str) == str(run["source_trial"])]
    return bool(len(hit) and hit["is_baseline"].iloc[0])


def _test_row(
    space: str,
    task: str,
    by: pd.DataFrame,
    seeds: pd.DataFrame,
    first: object,
    n_tasks: int,
    same: bool,
) -> dict:
    t, b = by.loc[TUNED_BEST], by.loc[BASELINE_LABEL]
    counted = seeds[seeds["counted"] & (seeds["space"] == space) & (seeds["task"] == task)]
    arms = {
        lb: counted.loc[counted["label"] == lb, "acc"] * PCT for lb in (TUNED_BEST, BASELINE_LABEL)
    }
    d = welch(arms[TUNED_BEST], arms[BASELINE_LABEL])
    missing = _text(t["missing"]) or _text(b["missing"])
    source = None if first is None else first.get("source_trial")
    return {
        "space": space,
        "task": task,
        "split": TEST,
        "selection": f"{TUNED_BEST} (best search configuration by validation score), "
        f"retrained with {int(t['n'])} seed(s), scored once at its last epoch",
        "winner": TUNED_BEST + _source_text(space, source, same),
        "trial_id": None if _blank(source) else str(source),
        "epoch": None,
        "params": "" if first is None else format_params(params_of(first, n_tasks)),
        "value": t["mean"],
        "ci_low": t["ci_low"],
        "ci_high": t["ci_high"],
        "n": int(t["n"]),
        "baseline": f"{BASELINE_LABEL} configuration",
        "baseline_value": b["mean"],
        "baseline_ci_low": b["ci_low"],
        "baseline_ci_high": b["ci_high"],
        "baseline_n": int(b["n"]),
        "change_pts": np.nan if missing else d.diff,
        "change_ci_low": d.bounds()["ci_low"],
        "change_ci_high": d.bounds()["ci_high"],
        "p_value": math.nan if d.p is None else d.p,
        "missing": missing,
    }


def _source_text(space: str, source: object, same: bool) -> str:
    """ " (search trial multi/trial_x)", saying when that trial is the baseline's."""
    if _blank(source):
        return ""
    also = ": the baseline configuration itself" if same else ""
    return f" (search trial {space}/{TRIAL_PREFIX}{source}{also})"


def _text(value: object) -> str | None:
    return None if _blank(value) else str(value)


# ---------------------------------------------------------------------------------------------
# the render


def _acc(value: float, low: float, high: float, n: int, bold: bool = False) -> str:
    """ "<b>86.0%</b><br><small>[83.5%, 88.5%] n=3</small>" (HTML)."""
    if _blank(value):
        return "missing"
    text = f"<b>{value:.1%}</b>" if bold else f"{value:.1%}"
    small = [] if _blank(low) or _blank(high) else [f"[{low:.1%}, {high:.1%}]"]
    small += [f"n={n}"] if n and n > 1 else []
    return text + (f"<br><small>{' '.join(small)}</small>" if small else "")


def _baseline_acc(r: Mapping) -> str:
    return _acc(r["baseline_value"], r["baseline_ci_low"], r["baseline_ci_high"], r["baseline_n"])


def _change(r: Mapping) -> str:
    """ "+14.0 pts<br><small>[+9.8, +18.2] p=0.002</small>" (HTML)."""
    if _blank(r["change_pts"]):
        return "n/a"
    small = []
    if not (_blank(r["change_ci_low"]) or _blank(r["change_ci_high"])):
        small.append(f"[{r['change_ci_low']:+.1f}, {r['change_ci_high']:+.1f}]")
    if not _blank(r["p_value"]):
        small.append(f"p={r['p_value']:.3f}")
    text = f"{r['change_pts']:+.1f} pts"
    return text + (f"<br><small>{' '.join(small)}</small>" if small else "")


def render_html(data: pd.DataFrame, synthetic: bool) -> str:
    """The verdict card: one block per space, its winner, hyperparameters and a row per task."""
    if data.empty:
        why = "no verdict yet: no trial finished an epoch"
        return f'<div class="verdict"><p class="missing">{why}</p></div>'
    blocks = []
    for space, rows in data.groupby("space", sort=False):
        first = rows.iloc[0]
        cells = "".join(
            f"<tr><td>{html.escape(str(r['task']))}</td>"
            f"<td>{_acc(r['value'], r['ci_low'], r['ci_high'], r['n'], bold=True)}</td>"
            f"<td>{_baseline_acc(r)}</td><td>{_change(r)}</td></tr>"
            for r in rows.to_dict("records")
        )
        winner = html.escape(_text(first["winner"]) or _text(first["missing"]) or "none")
        blocks.append(
            f'<div class="verdict-space" data-space="{html.escape(space)}">'
            f"<h3>{html.escape(space)}: {winner}</h3>"
            f'<p class="params">{html.escape(_text(first["params"]) or "")}</p>'
            '<div class="scroll"><table class="plain"><tr><th>task</th><th>winner</th>'
            f"<th>baseline<br><small>{html.escape(_text(first['baseline']) or 'missing')}"
            "</small></th>"
            f"<th>change</th></tr>{cells}</table></div></div>"
        )
    first = data.iloc[0]
    if first["split"] == TEST:
        what = (
            f"{TEST} accuracy, mean over seeds [{CONFIDENCE:.0%} interval]; change: tuned "
            f"minus baseline in points [Welch's {CONFIDENCE:.0%} interval] (p-value)"
        )
    else:
        what = f"accuracy: {SEARCH_CAVEAT} (one seed, no test figures yet); change in points"
    head = f"<b>{html.escape(what)}</b>. {html.escape(str(first['selection']))}."
    note = " Synthetic data: these numbers say nothing about real accuracy." if synthetic else ""
    return (
        '<div class="verdict">'
        f'<p class="meta">The winner of each space against its baseline: {head}{note}</p>'
        + "".join(blocks)
        + "</div>"
    )

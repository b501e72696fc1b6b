"""The verdict: the report's first card and the first lines of the end-of-study summary.

Two blocks, in this order:

1. **The question: multi-task vs single-task** (`question_data`). Per shown label (baseline,
   tuned) and task, multi - single test accuracy in points, and Δm in %, at the study's training
   budget (`settings["budget"]`, default `epochs`): the table's own numbers
   (`table.test_frames`: the paired t over seed pairs where both arms have the same seeds, else
   Welch's; Holm over the table's family of multi - single and Δm tests).
2. **Tuned vs the baseline** (`verdict_data`), per space and task: `tuned-1` against the
   space's `baseline`, mean test accuracy over seeds with its 95 % interval (the table's
   summary), the difference by `stats.paired` (over the same counted seeds), Holm-corrected
   over every row of this block (the card's family).

3. **Methods vs ew** (`method_rows`, with `--compare-methods`): per compared method, task and
   Δm, method - ew on test from the table's methods section (`analysis.methods`: paired over
   seeds, Holm over that section's family, with its MDE). A method is named better (or worse)
   than ew only when its Holm p < `stats.ALPHA`.

Wording (`wording`), the same in every block: "better" / "worse" only when the Holm-adjusted
p-value is below `stats.ALPHA`; otherwise "no detectable difference", with the difference the
comparison could have detected at 80 % power (`stats.mde`); "undetermined" where no test is
defined (one seed, no spread). A comparison with a seed that did not count (diverged, errored,
not started) says so beside its word, whatever the word.

Without confirmation runs (validation only) the question block says there are no test figures
and shows the search's per-task figures, and the second block each space's top search trial
against its baseline trial (`search_picks`, `search_table.best_trial`: the top trial by its
last-epoch score among trials that ran all their epochs, shown at its peak epoch), both
labelled validation and optimistic, without any significance claim.

`verdict(study)` extracts (pure DataFrames, `Verdict`); `render_html` (the card) and
`render_text` (the CLI summary's lines) draw it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from analysis import methods as methods_mod
from analysis import table as table_mod
from analysis import table_notes
from analysis.arms import DELTA_M, SHOWN, arm_by_seed, seed_frame, test_columns
from analysis.cells import format_p
from analysis.results import Study
from analysis.search_table import best_trial, search_comparison
from analysis.stats import ALPHA, POWER, holm, paired
from names import (
    BASELINE_LABEL,
    BUDGET_KEY,
    DEFAULT_METHOD,
    LEGACY_BUDGET,
    TEST,
    TRIAL_PREFIX,
    TUNED_BEST,
    VALIDATION,
)

SEARCH_CAVEAT = "validation, optimistic, selected on the same data"
SCORE_ROW = "score (mean over tasks)"  # the study metric's row of a multi-task space


BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no detectable difference"


UNDETERMINED, SEARCH_PICK = "undetermined", "search pick"
QUESTION_COLUMNS = ["label", "task", "split", "unit", "diff", "ci_low", "ci_high", "test"]
QUESTION_COLUMNS += ["p_value", "p_holm", "mde", "mde_why", "n_multi", "n_single", "failed"]
QUESTION_COLUMNS += ["verdict", "says", "missing"]
COLUMNS = ["space", "task", "split", "selection", "config", "trial_id", "epoch", "params"]
COLUMNS += ["value", "ci_low", "ci_high", "clipped", "n", "planned", "baseline"]
COLUMNS += ["baseline_value", "baseline_ci_low", "baseline_ci_high", "baseline_clipped"]
COLUMNS += ["baseline_n", "baseline_planned", "change_pts", "change_ci_low", "change_ci_high"]
COLUMNS += ["test", "p_value", "p_holm", "mde", "mde_why", "failed", "verdict", "says", "missing"]
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


def params_of(row: Mapping, keys: Sequence[str]) -> dict[str, object]:
    """The hyperparameters of a trial or run row: its values of `keys` (what its space's
    search chose, `Study.searched_keys`), without the blank ones."""
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


def wording(
    diff: float,
    p_holm: float | None,
    mde: float | None,
    unit: str,
    why: str | None = None,
    mde_why: str | None = None,
) -> tuple[str, str]:
    """The verdict on one comparison, and its phrase: `BETTER` / `WORSE` only when the
    Holm-adjusted p < ALPHA; else `NO_DIFFERENCE` "(could have detected ≥ 6.5 points at 80 %
    power)"; `UNDETERMINED` where there is no test (`why`)."""
    if _blank(diff):
        return "missing", why or "missing"
    if _blank(p_holm):
        return UNDETERMINED, f"{UNDETERMINED} ({why or 'no test'}: no interval, no p-value)"
    if p_holm < ALPHA:
        word = BETTER if diff > 0 else WORSE
        return word, f"{word} (Holm {format_p(p_holm)})"
    if _blank(mde):
        return NO_DIFFERENCE, f"{NO_DIFFERENCE} (Holm {format_p(p_holm)}; {mde_why or 'no MDE'})"
    could = f"could have detected ≥ {mde:.1f} {unit} at {POWER:.0%} power"
    return NO_DIFFERENCE, f"{NO_DIFFERENCE} (Holm {format_p(p_holm)}; {could})"


def _with_failures(says: str, failed: str | None) -> str:
    return f"{says}; not every seed counted: {failed}" if failed else says


def _failures(rows: pd.DataFrame) -> str | None:
    """ "multi-task: n=2 of 3, 1 diverged" for the summary rows whose seeds did not all count."""
    parts = [
        f"{r['row']}: n={int(r['n'])} of {int(r['planned'])}, {r['not_counted']}"
        for r in rows.to_dict("records")
        if _text(r.get("not_counted"))
    ]
    return "; ".join(parts) or None


def budget_text(study: Study) -> str:
    """ "budget total: <what it means>" (names.BUDGETS, in the table's words), from the study's
    setting; a study recorded before budgets ran under names.LEGACY_BUDGET."""
    return table_notes.budget_text([str(study.settings.get(BUDGET_KEY, LEGACY_BUDGET))])


@dataclasses.dataclass
class Verdict:
    """The two blocks (`question_data`, `verdict_data`), the study's training budget, and why
    there are no test figures (None when there are: `question` is then empty)."""

    question: pd.DataFrame
    tuned: pd.DataFrame
    budget: str
    no_test: str | None
    search: pd.DataFrame  # validation only: per task the search's best single and multi figures
    # with --compare-methods and test figures: per method and task (and Δm), method - ew
    methods: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)


def verdict(study: Study) -> Verdict:
    """The blocks of the verdict of a loaded study."""
    no_test = table_notes.no_test_reason(study)
    search, methods = pd.DataFrame(), pd.DataFrame()
    if no_test is None:
        tasks = table_mod.table_tasks(study)
        seeds = seed_frame(study, tasks)
        summary, diffs, dm = table_mod.test_frames(study, seeds, tasks)
        question, tuned = _question_rows(summary, diffs, dm), _test_rows(study, seeds, summary)
        if methods_mod.compared_methods(study.settings):
            methods = method_rows(methods_mod.methods_section(study, seeds, tasks))
    else:
        question = pd.DataFrame(columns=QUESTION_COLUMNS)
        tuned = _search_frame(study)
        search = search_comparison(study).frame
    return Verdict(question, tuned, budget_text(study), no_test, search, methods)


def method_rows(section: methods_mod.MethodsSection) -> pd.DataFrame:
    """The methods block: per compared method other than ew, per task and Δm, method - ew with
    its test, Holm p (the section's family), MDE, the seeds that did not count and the wording
    of the first block (`wording`)."""
    rows = []
    arms = section.summary.assign(row=section.summary["method"])
    for d in section.differences.to_dict("records"):
        pair = arms[arms["method"].isin([d["method"], DEFAULT_METHOD])]
        if d["task"] != DELTA_M:
            pair = pair[pair["task"] == d["task"]]
        unit = "%" if d["unit"] == "percent" else "points"
        row = _question_row({**d, "diff_pts": d["diff"]}, d["label"], d["task"], unit, pair)
        rows.append({"method": d["method"], **row, "n_multi": d["n"], "n_single": d["n"]})
    return pd.DataFrame.from_records(rows, columns=["method", *QUESTION_COLUMNS])


def question_data(study: Study) -> pd.DataFrame:
    """The first block (`QUESTION_COLUMNS`): per shown label and task, multi - single in points,
    then Δm in %, each with its test, Holm-adjusted p, MDE, failed seeds and wording. Empty
    without test figures."""
    return verdict(study).question


def verdict_data(study: Study) -> pd.DataFrame:
    """The second block, one row per space and task (`COLUMNS`): test figures when the study has
    confirmation runs, else validation figures of the search (see the module's docstring)."""
    return verdict(study).tuned


def _question_rows(summary: pd.DataFrame, diffs: pd.DataFrame, dm: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for label in SHOWN:
        part = diffs[diffs["label"] == label] if len(diffs) else diffs
        for d in part.to_dict("records"):
            arms = summary[(summary["task"] == d["task"]) & (summary["label"] == label)]
            rows.append(_question_row(d, label, d["task"], "points", arms))
            rows[-1].update(n_multi=d["n_multi"], n_single=d["n_single"])
        for d in dm[dm["label"] == label].to_dict("records"):
            row = _question_row(d, label, DELTA_M, "%", summary[summary["label"] == label])
            rows.append(row | {"diff": d["delta_m_pct"], "n_multi": d["n"], "n_single": d["n"]})
    return pd.DataFrame.from_records(rows, columns=QUESTION_COLUMNS)


def _question_row(d: Mapping, label: str, task: str, unit: str, arms: pd.DataFrame) -> dict:
    diff = d.get("diff_pts", d.get("delta_m_pct"))
    why = _text(d["missing"]) or _text(d["no_interval"])
    word, says = wording(diff, d["p_holm"], d["mde"], unit, why, _text(d["mde_why"]))
    failed = _failures(arms)
    return {
        "label": label,
        "task": task,
        "split": TEST,
        "unit": unit,
        "diff": diff,
        **{k: d[k] for k in ("ci_low", "ci_high", "test", "p_value", "p_holm", "mde", "mde_why")},
        "failed": failed,
        "verdict": "not compared" if why and why.startswith("not compared") else word,
        "says": _with_failures(says, failed),
        "missing": _text(d["missing"]),
    }


def _search_frame(study: Study) -> pd.DataFrame:
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
        "verdict": SEARCH_PICK,
        "says": f"{SEARCH_PICK} ({SEARCH_CAVEAT}; one seed, no significance test)",
        "missing": None
        if best is not None
        else f"missing ({pick.space}: no trial ran all its epochs)",
    }
    if best is not None:
        common.update(
            config=f"trial {best['trial_id']}" + (" (the baseline)" if best["is_baseline"] else ""),
            trial_id=str(best["trial_id"]),
            epoch=int(best["best_epoch"]),
            params=format_params(params_of(best, study.searched_keys(pick.space))),
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


def _test_rows(study: Study, seeds: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """Per space and task: tuned-1 against the baseline, the table's summary numbers; the
    changes Holm-corrected as one family (the card's)."""
    rows = []
    for space in study.spaces:
        runs = study.runs[study.runs["space"] == space] if len(study.runs) else study.runs
        tuned = runs[runs["label"] == TUNED_BEST]
        keys = study.searched_keys(space)
        first = tuned.iloc[0] if len(tuned) else None
        for task in study.space_tasks.get(space, ()):
            part = summary[(summary["space"] == space) & (summary["task"] == task)]
            by = part.set_index("label")
            if TUNED_BEST not in by.index or BASELINE_LABEL not in by.index:
                continue
            rows.append(_test_row(space, task, by, seeds, first, keys, _same(study, first)))
    frame = pd.DataFrame.from_records(rows, columns=COLUMNS)
    frame["p_holm"] = holm(frame["p_value"].tolist())
    return _worded(frame)


def _worded(frame: pd.DataFrame) -> pd.DataFrame:
    """Fills `verdict` and `says` of the tuned-vs-baseline rows from their Holm p-values."""
    words, phrases = [], []
    for r in frame.to_dict("records"):
        why = _text(r["missing"]) or _text(r["mde_why"])
        word, says = wording(r["change_pts"], r["p_holm"], r["mde"], "points", why, why)
        words.append(word)
        phrases.append(_with_failures(says, _text(r["failed"])))
    return frame.assign(
        verdict=pd.Series(words, dtype=object), says=pd.Series(phrases, dtype=object)
    )


def _same(study: Study, run: pd.Series | None) -> bool:
    """Whether a tuned run retrains its space's baseline trial (the search found no better)."""
    if run is None or _blank(run.get("source_trial")):
        return False
    trials = study.space_trials(run["space"])
    hit = trials[trials["trial_id"].astype(str) == str(run["source_trial"])]
    return bool(len(hit) and hit["is_baseline"].iloc[0])


def _arm(seeds: pd.DataFrame, space: str, task: str, label: str) -> dict[object, float]:
    counted = seeds[seeds["counted"] & (seeds["space"] == space) & (seeds["task"] == task)]
    return arm_by_seed(counted[counted["label"] == label])


def _test_row(
    space: str,
    task: str,
    by: pd.DataFrame,
    seeds: pd.DataFrame,
    first: object,
    keys: Sequence[str],
    same: bool,
) -> dict:
    t, b = by.loc[TUNED_BEST], by.loc[BASELINE_LABEL]
    d = paired(_arm(seeds, space, task, TUNED_BEST), _arm(seeds, space, task, BASELINE_LABEL))
    missing = _text(t["missing"]) or _text(b["missing"])
    stats_ = test_columns(None if missing else d)
    source = None if first is None else first.get("source_trial")
    return {
        "space": space,
        "task": task,
        "split": TEST,
        "selection": f"{TUNED_BEST} (best search configuration by validation score), "
        f"retrained with {int(t['planned'])} seed(s), scored once at its last epoch",
        "config": TUNED_BEST + _source_text(space, source, same),
        "trial_id": None if _blank(source) else str(source),
        "epoch": None,
        "params": "" if first is None else format_params(params_of(first, keys)),
        **{k: t[k] for k in ("ci_low", "ci_high", "clipped", "planned")},
        "value": t["mean"],
        "n": int(t["n"]),
        "baseline": f"{BASELINE_LABEL} configuration",
        "baseline_value": b["mean"],
        **{f"baseline_{k}": b[k] for k in ("ci_low", "ci_high", "clipped", "planned")},
        "baseline_n": int(b["n"]),
        "change_pts": np.nan if missing else d.diff,
        "change_ci_low": stats_["ci_low"],
        "change_ci_high": stats_["ci_high"],
        **{k: stats_[k] for k in ("test", "p_value", "mde", "mde_why")},
        "failed": _failures(by.loc[[TUNED_BEST, BASELINE_LABEL]].reset_index()),
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

"""The comparison table's notes: what each shown row trained and where its configuration comes
from, the training budget, the runs that did not count, the tests and their family, and why a
study has no test figures yet (text only, from the loaded study and the table's frames).
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence

import pandas as pd

from analysis.results import Study
from analysis.stats import (
    ALPHA,
    CONFIDENCE,
    POWER,
)
from names import (
    BUDGET_KEY,
    BUDGETS,
    LEGACY_BUDGET,
    MULTI_SPACE,
    TEST,
    TRIAL_PREFIX,
    TUNED_BEST,
    VALIDATION,
    single_space,
)

if typing.TYPE_CHECKING:
    pass
from analysis.arms import (
    DELTA_M,
    SELECTION,
    SHOWN,
    refused_tasks,
)
from analysis.cells import (
    CLIPPED,
    is_nan,
)

CONFIRM_COMMAND = "python -m study.confirm"


def _config_text(run: Mapping, keys: Sequence[str]) -> str:
    """A run's values of `keys` (what its space's search chose)."""
    parts = [f"{k}={run[k]}" for k in keys if k in run and not is_nan(run[k])]
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
                if not is_nan(source)
                else "the baseline configuration"
            )
            keys = study.searched_keys(space)
            notes.append(f"{space} {label}: {origin} ({_config_text(run, keys)})")
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
        for key in ("max_epochs", "batch_size", "seed", "stem")
        if key in runs
    }
    epochs = values.get("max_epochs", "?")
    stem = f", backbone stem {values['stem']}" if values.get("stem") else ""
    return (
        "training: every run from scratch on train + validation for "
        f"{epochs} epoch{'' if epochs == '1' else 's'} (no early stopping), batch size "
        f"{values.get('batch_size', '?')} per task{stem}, {budget_text(study_budgets(study))}; "
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

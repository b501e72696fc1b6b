"""Confusion matrices per space and task, each labelled with its split and selection.

Test (`confirmation_confusions`): each space's `tuned-1` confirmation run, its first finished
seed, at its last epoch (counts over the test set). Validation (`best_confusions`): the search's
top trial (`search_table.best_trial`, the one confirmed as tuned-1) at its best-score epoch (its
peak), an optimistic selection on the very data it is scored on. Rows = true class, columns =
predicted, with the class names of `tasks.json`. Row-normalized: each row divided by its
class's count.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from analysis.results import Study
from analysis.search_table import best_trial  # one definition of "best"
from names import TEST, TUNED_BEST, VALIDATION

SEARCH_SELECTION = "top trial at its peak epoch"


@dataclasses.dataclass(frozen=True)
class Confusion:
    space: str
    task: str
    trial_id: str
    epoch: int
    classes: tuple[str, ...]
    counts: np.ndarray  # int64, rows = true class, columns = predicted
    split: str = VALIDATION  # the images counted
    selection: str = SEARCH_SELECTION  # which run and epoch, and how they were chosen

    @property
    def normalized(self) -> np.ndarray:
        return normalize_rows(self.counts)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.counts) / self.total) if self.total else float("nan")

    @property
    def title(self) -> str:
        return (
            f"{self.space} / {self.task}: trial {self.trial_id}, epoch {self.epoch} "
            f"({self.split}, {self.selection})"
        )


def normalize_rows(counts: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (a class without images stays 0)."""
    counts = np.asarray(counts, dtype=float)
    sums = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)


def best_confusions(study: Study) -> tuple[list[Confusion], list[str]]:
    """Per space and task, the top trial's matrix at its best-score epoch; plus notes on any
    that could not be found (no trial ran all its epochs, matrix not recorded)."""
    out: list[Confusion] = []
    notes: list[str] = []
    for space, tasks in study.space_tasks.items():
        best = best_trial(study.space_trials(space))
        if best is None:
            notes.append(f"{space}: no trial ran all its epochs")
            continue
        for task in tasks:
            counts = study.confusion(space, best["trial_id"], int(best["best_epoch"]), task)
            if counts is None or counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
                notes.append(
                    f"{space}/{task}: no confusion matrix recorded for trial "
                    f"{best['trial_id']} epoch {best['best_epoch']}"
                )
                continue
            classes = tuple(study.class_names(task, counts.shape[0]))
            out.append(
                Confusion(
                    space, task, str(best["trial_id"]), int(best["best_epoch"]), classes, counts
                )
            )
    return out, notes


def confirmation_confusions(
    study: Study, label: str = TUNED_BEST
) -> tuple[list[Confusion], list[str]]:
    """Per space and task, the test matrix of the space's `label` confirmation run (its first
    finished seed, last epoch); plus notes on spaces whose run has none."""
    out: list[Confusion] = []
    notes: list[str] = []
    runs = study.runs
    if runs.empty:
        return out, notes
    for space in dict.fromkeys(runs["space"]):
        done = runs[(runs["space"] == space) & (runs["label"] == label)]
        done = done[done["status"] == "finished"].sort_values("seed")
        if done.empty:
            notes.append(f"{space}: no finished {label} confirmation run")
            continue
        run = done.iloc[0]
        selection = f"{label} seed {run['seed']}, last epoch"
        for task in str(run["tasks"]).split(","):
            counts = study.test_confusion(space, run["trial_id"], task)
            if counts is None or counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
                notes.append(f"{space}/{task}: no {TEST} confusion matrix in {label} run")
                continue
            classes = tuple(study.class_names(task, counts.shape[0]))
            epoch = int(run["last_epoch"])
            out.append(
                Confusion(
                    space, task, str(run["trial_id"]), epoch, classes, counts, TEST, selection
                )
            )
    return out, notes


def confusion_frame(conf: Confusion) -> pd.DataFrame:
    """Long form: one row per (true, predicted) with the count and the row share."""
    k = len(conf.classes)
    true = np.repeat(np.arange(k), k)
    pred = np.tile(np.arange(k), k)
    return pd.DataFrame(
        {
            "true": np.asarray(conf.classes)[true],
            "predicted": np.asarray(conf.classes)[pred],
            "count": conf.counts.ravel(),
            "share": conf.normalized.ravel(),
        }
    )

"""The trained model behind a row of the comparison table, ready to use.

    from analysis.models import load_model
    model = load_model("studies/s", "multi")                  # tuned-1, its first seed
    model = load_model("studies/s", "single-cifar10", label="baseline", seed=2)
    logits = model(images_uint8, "cifar10")                   # N x 3 x 32 x 32 uint8

A row of the table (`table`) is a space's confirmation runs of one label (`baseline`,
`tuned-1`, ...), one per seed; each keeps its final checkpoint in its trial folder
(`confirm-<space>/trial_<id>/checkpoint_*`, or a later round's `confirm-<space>-round-<k>/`;
the one whose `meta.json` holds the highest epoch).
The model is rebuilt from that folder alone by `trainables.checkpoint.load_model`, which also
applies the normalization stored in the checkpoint.

Unlike the rest of `analysis`, this needs torch; it is imported inside the functions, so
importing `analysis` (or this module) stays free of torch and Ray.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.results import Study, load_study
from errors import AnalysisError
from names import CHECKPOINT_GLOB, TRIAL_PREFIX, TUNED_BEST, confirm_experiment


def find_run(
    study: Study, space: str, label: str = TUNED_BEST, seed: int | None = None
) -> pd.Series:
    """The confirmation run (a row of `study.runs`) of `space`, `label` and `seed` (None: the
    lowest finished seed); raises `AnalysisError` when there is no finished one."""
    runs = study.runs
    if runs.empty:
        raise AnalysisError(f"{study.path}: no confirmation runs (python -m study.confirm)")
    rows = runs[(runs["space"] == space) & (runs["label"] == label)]
    if rows.empty:
        found = ", ".join(sorted({f"{s} {lb}" for s, lb in zip(runs["space"], runs["label"])}))
        raise AnalysisError(f"no {label} confirmation run of {space} (found: {found})")
    if seed is not None:
        rows = rows[rows["seed"] == seed]
        if rows.empty:
            raise AnalysisError(f"no {label} run of {space} with seed {seed}")
    done = rows[rows["status"] == "finished"].sort_values("seed")
    if done.empty:
        raise AnalysisError(
            f"the {label} run of {space} (seed {'any' if seed is None else seed}) has not "
            "finished: " + ", ".join(sorted(set(rows["status"])))
        )
    return done.iloc[0]


def final_checkpoint(trial_dir: Path, epoch: int | None = None) -> Path:
    """The run's checkpoint folder with the highest epoch (its `meta.json`); when `epoch` is
    given it must hold that epoch (the run's last), else `AnalysisError`."""
    from trainables.checkpoint import checkpoint_epoch

    folders = [p for p in trial_dir.glob(CHECKPOINT_GLOB) if p.is_dir()]
    if not folders:
        raise AnalysisError(f"{trial_dir}: no checkpoint folder ({CHECKPOINT_GLOB})")
    best = max(folders, key=lambda p: (checkpoint_epoch(p), p.name))
    if epoch is not None and checkpoint_epoch(best) != epoch:
        raise AnalysisError(
            f"{trial_dir}: newest checkpoint {best.name} holds epoch {checkpoint_epoch(best)}, "
            f"not the run's last epoch {epoch}"
        )
    return best


def load_model(
    study_dir: str | os.PathLike[str],
    space: str,
    label: str = TUNED_BEST,
    seed: int | None = None,
    device: str = "cpu",
) -> Any:
    """The final model of one confirmation run, ready for inference: the run of `space`
    (`single-<task>` or `multi`), `label` (`baseline`, `tuned-1`, ...) and `seed` (None: its
    lowest finished seed), rebuilt on `device` from its last checkpoint. Call it as
    `model(images, task)` on uint8 N x 3 x 32 x 32 images; it normalizes them with the
    statistics stored in the checkpoint and returns the task's logits.

    Raises `AnalysisError` (one line) when the study has no such finished run or checkpoint.
    """
    from trainables import checkpoint

    study = load_study(study_dir)
    run = find_run(study, space, label, seed)
    experiment = run.get("experiment")  # its round's folder (`--confirm-seeds auto`)
    experiment = experiment if isinstance(experiment, str) else confirm_experiment(space)
    trial_dir = Path(study_dir) / experiment / f"{TRIAL_PREFIX}{run['trial_id']}"
    epoch = None if pd.isna(run["last_epoch"]) else int(run["last_epoch"])
    loaded = checkpoint.load_model(final_checkpoint(trial_dir, epoch), device=device)
    model = loaded[0] if isinstance(loaded, tuple) else loaded  # (model, config, stats) or model
    if hasattr(model, "eval"):
        model.eval()  # inference: batch norm's running statistics, no dropout
    return model

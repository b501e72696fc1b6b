"""Single-task space: the optimizer knobs. The scheme is fixed: one task trains every step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna

# the seed's hand-picked run: Adam, lr 1e-3, no weight decay, step LR (batch from the study)
SEED_POINT: dict[str, Any] = {
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 0.0,
    "lr_schedule": "step",
}


def define(trial: optuna.Trial, tasks: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "optimizer": trial.suggest_categorical("optimizer", ["adam", "adamw", "sgd"]),
        "lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True),
        "weight_decay": trial.suggest_categorical("weight_decay", [0.0, 1e-5, 1e-4, 5e-4]),
        "lr_schedule": trial.suggest_categorical("lr_schedule", ["step", "cosine", "onecycle"]),
    }

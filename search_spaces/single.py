"""Single-task space: the optimizer knobs. The scheme is fixed: one task trains every step.

Only suggestions live here (the choices are the registries' own, `trainables.optim`: every
optimizer and LR schedule, the multi-task baseline's constant one included). The baseline it is
compared against (the original project's hand-picked configuration) is `names.BASELINE_SINGLE`,
enqueued by the study as the first trial.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna

from trainables.optim import LR_SCHEDULES, OPTIMIZERS


def define(trial: optuna.Trial, tasks: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "optimizer": trial.suggest_categorical("optimizer", list(OPTIMIZERS)),
        "lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True),
        "weight_decay": trial.suggest_categorical("weight_decay", [0.0, 1e-5, 1e-4, 5e-4]),
        "lr_schedule": trial.suggest_categorical("lr_schedule", list(LR_SCHEDULES)),
    }

"""Multi-task space: the single-task knobs plus the task-sampling scheme and its parameters.

Scheme parameters are suggested only for the scheme that reads them (conditional, define-by-run).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna

from search_spaces import single

SCHEMES = ["coin", "round_robin", "uniform", "proportional", "temperature", "annealed", "joint"]


def define(trial: optuna.Trial, tasks: Sequence[str] = ("cifar10", "fashionrgb")) -> dict[str, Any]:
    params = single.define(trial, tasks)
    params["scheme"] = trial.suggest_categorical("scheme", SCHEMES)
    if params["scheme"] == "coin":
        params["coin_p"] = trial.suggest_float("coin_p", 0.2, 0.9)
    elif params["scheme"] == "temperature":
        params["temperature"] = trial.suggest_float("temperature", 1.0, 10.0, log=True)
    elif params["scheme"] == "joint":
        for task in tasks:  # Ray's OptunaSearch unflattens these into loss_weights={task: w}
            params[f"loss_weights/{task}"] = trial.suggest_float(
                f"loss_weights/{task}", 0.5, 2.0, log=True
            )
    return params

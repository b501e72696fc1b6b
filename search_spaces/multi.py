"""Multi-task space: the single-task knobs plus the task-sampling scheme and its parameters.

Which schemes exist and what each one's parameters and search ranges are is the schemes' own
contract (`trainables.sampling.SCHEMES`), read here rather than repeated, so a newly registered
scheme is searched without touching this file. A scheme's parameters are suggested only when
that scheme is chosen (conditional, define-by-run); a per-task parameter is suggested once per
task as `<name>/<task>`, which Ray's OptunaSearch unflattens into `<name>={task: value}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna

from search_spaces import single
from trainables.sampling import SCHEMES, Param


def define(trial: optuna.Trial, tasks: Sequence[str] = ("cifar10", "fashionrgb")) -> dict[str, Any]:
    params = single.define(trial, tasks)
    params["scheme"] = trial.suggest_categorical("scheme", list(SCHEMES))
    for param in SCHEMES[params["scheme"]].params:
        for key in _keys(param, tasks):
            params[key] = trial.suggest_float(key, *param.search, log=param.log)
    return params


def _keys(param: Param, tasks: Sequence[str]) -> list[str]:
    """The searched keys of a parameter: its name, or `<name>/<task>` for each task."""
    return [f"{param.name}/{task}" for task in tasks] if param.per_task else [param.name]

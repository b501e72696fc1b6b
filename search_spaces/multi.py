"""Multi-task space: the single-task knobs, the task-sampling scheme and its parameters, and,
where the scheme trains several tasks in one step, the multi-task method and its parameters.

Which schemes and methods exist and what their parameters and search ranges are is their
registries' contract (`trainables.sampling.SCHEMES`, `trainables.methods.METHODS`), read here
rather than repeated, so a newly registered one is searched without touching this file. Every
choice is conditional (define-by-run): a scheme's parameters only with that scheme; `method`
only under a scheme whose steps hold several tasks (`Scheme.shares_steps`: joint), from the
study's `--methods` (suggested only when they are more than `ew` alone, so a study without
`--methods` searches what it always did); a method's parameters only with that method (but
those the study fixes, `--method-params`, which come as constants). Under any other scheme
nothing is suggested and the trial runs `ew`: every method a trial names is one it uses. A
method other than ew does its own weighting, so joint's static `loss_weights` stay at 1 and
are not suggested with it. A per-task parameter is suggested once per task as `<name>/<task>`,
which the searcher (`study.search`) unflattens into `<name>={task: value}`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna

from names import DEFAULT_METHOD, METHOD_KEY
from search_spaces import single
from trainables.sampling import LOSS_WEIGHTS, SCHEMES, Param


def define(
    trial: optuna.Trial,
    tasks: Sequence[str] = ("cifar10", "fashionrgb"),
    methods: Sequence[str] = (DEFAULT_METHOD,),
    fixed: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Suggest a trial: `methods` the choices of `method` (registry order), `fixed` the method
    parameters the study fixes (not suggested)."""
    params = single.define(trial, tasks)
    params["scheme"] = trial.suggest_categorical("scheme", list(SCHEMES))
    scheme = SCHEMES[params["scheme"]]
    method = DEFAULT_METHOD
    if scheme.shares_steps and tuple(methods) != (DEFAULT_METHOD,):
        method = params[METHOD_KEY] = trial.suggest_categorical(METHOD_KEY, list(methods))
    for param in scheme.params:
        if param.name == LOSS_WEIGHTS and method != DEFAULT_METHOD:
            continue  # the method weighs the tasks itself
        for key in param_keys(param, tasks):
            params[key] = trial.suggest_float(key, *param.search, log=param.log)
    for param in method_space(method):
        if param.name not in (fixed or {}):
            params[param.name] = trial.suggest_float(param.name, *param.search, log=param.log)
    return params


def method_space(method: str) -> tuple[Param, ...]:
    """A method's parameters (none for ew: the registry, which imports torch, is not needed)."""
    if method == DEFAULT_METHOD:
        return ()
    from trainables.methods import get_method

    return get_method(method).params


def param_keys(param: Param, tasks: Sequence[str]) -> list[str]:
    """The searched keys of a parameter: its name, or `<name>/<task>` for each task."""
    return [f"{param.name}/{task}" for task in tasks] if param.per_task else [param.name]

"""Optimizers and learning-rate schedules: two registries, each entry carrying its contract.

Like the task-sampling schemes (`trainables.sampling.SCHEMES`), adding an optimizer or a
schedule touches this file (and its test) only: the trial config validates `optimizer` and
`lr_schedule` against `OPTIMIZERS` and `LR_SCHEDULES`, the single-task search space offers every
registered name, and the engine builds the optimizer and scales the peak LR through them.

An `Optimizer` builds a torch optimizer from parameters (or parameter groups) and the trial
config (`lr`, `weight_decay`, and whatever else it reads, e.g. sgd's `momentum`); its contract is
whether weight decay is decoupled (AdamW: the weights shrink by lr x weight_decay each step,
apart from the gradient) or L2 (added to the gradient, so the optimizer's own scaling applies).

A `Schedule` is a pure function `factor(progress) -> float`, the multiplier of the peak LR at
`progress` in [0, 1] of the run's planned steps (`trainables.budget.StepPlan.progress`, so a
resumed trial continues its schedule exactly). Its contract: every factor is in [0, 1]; the
factor rises (never falls) up to `warmup`, where it is 1, and never rises after; progress
outside [0, 1] is clamped (`lr_factor`). Torch is imported inside the builders, so the trial
config (which reads the names) stays free of it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from trainables.config import TrialConfig

Params = Iterable[Any]  # tensors, or parameter groups ({"params": [...], ...})
Build = Callable[[Params, "TrialConfig"], "torch.optim.Optimizer"]


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """A registered optimizer: how it is built and how its weight decay acts."""

    name: str
    build: Build  # (params, config) -> optimizer at config.lr and config.weight_decay
    decoupled_decay: bool  # True: p <- p (1 - lr wd) apart from the gradient; False: L2 on it
    description: str


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A registered LR schedule: `factor(progress)` for progress in [0, 1]."""

    name: str
    factor: Callable[[float], float]
    description: str
    warmup: float = 0.0  # progress at which the factor first reaches 1 (0: it starts there)


# fused Adam(W): one kernel per step, ~4x faster than foreach also on CPU. Not SGD: fused SGD
# fails on the heads of tasks that did not train this step (no grad, no momentum yet).
def _adam(params: Params, config: TrialConfig) -> torch.optim.Optimizer:
    import torch

    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)


def _adamw(params: Params, config: TrialConfig) -> torch.optim.Optimizer:
    import torch

    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)


def _sgd(params: Params, config: TrialConfig) -> torch.optim.Optimizer:
    import torch

    return torch.optim.SGD(
        params,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=True,
        weight_decay=config.weight_decay,
    )


def _step(p: float) -> float:  # the single-task baseline's: x0.1 at 50%, x0.01 at 75%
    return 0.1 ** (int(p >= 0.5) + int(p >= 0.75))


def _constant(p: float) -> float:  # the multi-task baseline's
    return 1.0


def _cosine(p: float) -> float:
    return 0.5 * (1 + math.cos(math.pi * p))


def _onecycle(p: float) -> float:  # linear warm-up over the first 25% from 1/25, then cosine to 0
    if p < 0.25:
        return 0.04 + 0.96 * p / 0.25
    return 0.5 * (1 + math.cos(math.pi * (p - 0.25) / 0.75))


# in the order the search space offers them
OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o
    for o in (
        Optimizer("adam", _adam, False, "Adam, weight decay as L2 on the gradient"),
        Optimizer("adamw", _adamw, True, "AdamW, decoupled weight decay"),
        Optimizer("sgd", _sgd, False, "SGD with Nesterov momentum (`momentum`), L2 decay"),
    )
}
LR_SCHEDULES: dict[str, Schedule] = {
    s.name: s
    for s in (
        Schedule("step", _step, "x0.1 at 50% and again at 75% of the planned steps"),
        Schedule("cosine", _cosine, "cosine from 1 to 0"),
        Schedule("onecycle", _onecycle, "linear warm-up from 1/25 over 25%, then cosine", 0.25),
        Schedule("constant", _constant, "the peak LR throughout"),
    )
}


def build_optimizer(name: str, params: Params, config: TrialConfig) -> torch.optim.Optimizer:
    """The registered optimizer `name` over `params`; ValueError for an unknown name (a trial
    config has validated its own)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}")
    return OPTIMIZERS[name].build(params, config)


def lr_factor(schedule: str, progress: float) -> float:
    """Multiplier of the peak LR at `progress` (clamped to [0, 1]) of the run's planned steps
    under the registered `schedule`; ValueError for an unknown name."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr schedule {schedule!r}")
    return LR_SCHEDULES[schedule].factor(min(max(float(progress), 0.0), 1.0))

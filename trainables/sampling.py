"""Task-sampling schemes: which task(s) train in each iteration of a multi-task epoch.

A scheme carries its whole contract, so adding one touches this file and its test only:
`probs(progress, sizes, params)`, its definition as long-run per-task step shares; `plan(rng,
iteration, progress, sizes, params) -> steps`, where each step is a tuple of task indices whose
losses are summed for one optimizer step (by default one task per iteration, drawn from `probs`);
and its parameters (`Param`: the flat config key, default, valid bounds, search range). The trial
config validates them, the multi-task search space suggests them and the engine hands them to
the scheme, all from this registry.

`TaskSampler` is the only stateful piece: it draws each iteration's randomness from `(seed,
iteration)`, so its whole state is two counters and resuming from a checkpoint reproduces the
same sequence.

Schemes (registry `SCHEMES`, in the order the search space offers them):
  coin          the baseline's: each task independently trains with probability p, own step each
  round_robin   one task per iteration, in turn
  uniform       one task per iteration, equal probability
  proportional  one task per iteration, probability ∝ training-set size
  temperature   one task per iteration, probability ∝ size^(1/T)
  annealed      proportional at the start of training, uniform at the end, linear in between
  joint         every iteration one step over all tasks, losses summed (optional static weights)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Steps = list[tuple[int, ...]]
Plan = Callable[[np.random.Generator, int, float, np.ndarray, dict[str, Any]], Steps]
Probs = Callable[[float, np.ndarray, dict[str, Any]], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Param:
    """A parameter a scheme reads, under its flat key in the trial config and Ray's config.

    A per-task parameter is a `{task: value}` mapping in the config (None: `default` for every
    task; the search space suggests it as `<name>/<task>`, which the searcher unflattens), and
    reaches the scheme as an array in task order.
    """

    name: str
    default: float  # for a per-task parameter: each task's value when none is given
    bounds: tuple[float, float]  # valid values, inclusive (see open_low)
    search: tuple[float, float]  # the range a search space draws from
    log: bool = False  # search on a log scale
    per_task: bool = False
    open_low: bool = False  # the lower bound itself is not valid
    help: str = ""

    def admits(self, value: float) -> bool:
        low, high = self.bounds
        return (low < value if self.open_low else low <= value) and value <= high

    def rule(self) -> str:
        """The valid values in words: `in (0, 1]`, `>= 0`."""
        low, high = self.bounds
        if high == math.inf:
            return f"{'>' if self.open_low else '>='} {low:g}"
        return f"in {'(' if self.open_low else '['}{low:g}, {high:g}]"


def _one_task(probs: Probs) -> Plan:
    def plan(
        rng: np.random.Generator,
        iteration: int,
        progress: float,
        sizes: np.ndarray,
        params: dict[str, Any],
    ) -> Steps:
        p = probs(progress, sizes, params)
        return [(int(rng.choice(len(sizes), p=p)),)]

    return plan


@dataclasses.dataclass(frozen=True)
class Scheme:
    """A registered scheme: its definition, its plan and the parameters it reads.

    `probs` and `plan` receive the parameters as `{name: value}` (a per-task one as an array in
    task order); `plan` must draw its randomness from the `rng` it is given, nothing else.
    """

    name: str
    probs: Probs  # the definition: expected per-task share of steps at a given progress
    description: str
    params: tuple[Param, ...] = ()  # what the scheme reads from the trial config
    plan: Plan | None = None  # None: one task per iteration, drawn from `probs`
    # its steps sum several tasks' losses: under the per-task budget (trainables.budget) the
    # tasks due in an iteration then share one step; otherwise each takes its own
    shares_steps: bool = False

    def __post_init__(self) -> None:
        if self.plan is None:
            object.__setattr__(self, "plan", _one_task(self.probs))


def scheme_params() -> dict[str, Param]:
    """Every parameter of every registered scheme, by name (a name two schemes share is one
    parameter: they must declare it alike)."""
    out: dict[str, Param] = {}
    for scheme in SCHEMES.values():
        for param in scheme.params:
            if out.setdefault(param.name, param) != param:
                raise ValueError(f"schemes declare parameter {param.name!r} differently")
    return out


def _uniform(sizes: np.ndarray) -> np.ndarray:
    return np.full(len(sizes), 1.0 / len(sizes))


def _proportional(sizes: np.ndarray) -> np.ndarray:
    return sizes / sizes.sum()


def _tempered(sizes: np.ndarray, temperature: float) -> np.ndarray:
    w = sizes ** (1.0 / temperature)
    return w / w.sum()


def _annealed(progress: float, sizes: np.ndarray) -> np.ndarray:
    a = min(max(progress, 0.0), 1.0)
    return (1 - a) * _proportional(sizes) + a * _uniform(sizes)


def _coin(rng, iteration, progress, sizes, params) -> Steps:
    return [(i,) for i in range(len(sizes)) if rng.random() < params["coin_p"]]


LOSS_WEIGHTS = "loss_weights"  # joint's static per-task weights (the engine applies them)

SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in [
        Scheme(
            "coin",
            lambda prog, sizes, prm: _uniform(sizes),
            "the baseline's scheme: each task independently trains with probability p, own step",
            params=(
                Param(
                    "coin_p",
                    default=0.5,
                    bounds=(0.0, 1.0),
                    open_low=True,
                    search=(0.2, 0.9),
                    help="chance that a task trains in an iteration",
                ),
            ),
            plan=_coin,
        ),
        Scheme(
            "round_robin",
            lambda prog, sizes, prm: _uniform(sizes),
            "one task per iteration, in turn",
            plan=lambda rng, it, prog, sizes, prm: [(it % len(sizes),)],
        ),
        Scheme(
            "uniform",
            lambda prog, sizes, prm: _uniform(sizes),
            "one task per iteration, equal probability",
        ),
        Scheme(
            "proportional",
            lambda prog, sizes, prm: _proportional(sizes),
            "one task per iteration, probability proportional to training-set size",
        ),
        Scheme(
            "temperature",
            lambda prog, sizes, prm: _tempered(sizes, prm["temperature"]),
            "one task per iteration, probability proportional to size^(1/T)",
            params=(
                Param(
                    "temperature",
                    default=2.0,
                    bounds=(0.0, math.inf),
                    open_low=True,
                    search=(1.0, 10.0),
                    log=True,
                    help="T: sampling probability proportional to size^(1/T)",
                ),
            ),
        ),
        Scheme(
            "annealed",
            lambda prog, sizes, prm: _annealed(prog, sizes),
            "proportional at the start of training, uniform at the end",
        ),
        Scheme(
            "joint",
            lambda prog, sizes, prm: _uniform(sizes),
            "every iteration one step over all tasks, losses summed (optional static weights)",
            params=(
                Param(
                    LOSS_WEIGHTS,
                    default=1.0,
                    bounds=(0.0, math.inf),
                    search=(0.5, 2.0),
                    log=True,
                    per_task=True,
                    help="static weight of each task's loss (the engine applies it)",
                ),
            ),
            plan=lambda rng, it, prog, sizes, prm: [tuple(range(len(sizes)))],
            shares_steps=True,
        ),
    ]
}


class TaskSampler:
    """Draws each iteration's steps from a scheme; deterministic in (seed, iteration).

    State (for checkpoints): the iteration counter and the cumulative per-task step counts.
    """

    def __init__(
        self, scheme: str, sizes: Sequence[int], seed: int = 0, params: dict[str, Any] | None = None
    ) -> None:
        self.scheme = SCHEMES[scheme]
        self.sizes = np.asarray(sizes, dtype=np.float64)
        self.seed = seed
        self.params = dict(params or {})
        self.iteration = 0
        self.counts = np.zeros(len(sizes), dtype=np.int64)  # steps each task took part in

    def next(self, progress: float) -> Steps:
        """Steps of the next iteration; `progress` in [0, 1] is the fraction of training done."""
        rng = np.random.default_rng([self.seed, self.iteration])
        return self.take(self.scheme.plan(rng, self.iteration, progress, self.sizes, self.params))

    def take(self, steps: Steps) -> Steps:
        """Record `steps` as the next iteration's (the per-task budget decides them itself)."""
        self.iteration += 1
        for step in steps:
            self.counts[list(step)] += 1
        return steps

    def shares(self) -> np.ndarray:
        """Observed fraction of task-steps that went to each task so far."""
        total = self.counts.sum()
        return self.counts / total if total else np.zeros(len(self.counts))

    def state_dict(self) -> dict[str, Any]:
        return {"iteration": self.iteration, "counts": self.counts.tolist()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.iteration = int(state["iteration"])
        self.counts = np.asarray(state["counts"], dtype=np.int64)

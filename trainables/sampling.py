"""Task-sampling schemes: which task(s) train in each iteration of a multi-task epoch.

A scheme is a pure function `plan(rng, iteration, progress, sizes, params) -> steps`, where each
step is a tuple of task indices whose losses are summed for one optimizer step, plus `probs`, its
definition as long-run per-task step shares. `TaskSampler` is the only stateful piece: it draws
each iteration's randomness from `(seed, iteration)`, so its whole state is two counters and
resuming from a checkpoint reproduces the same sequence.

Schemes (registry `SCHEMES`):
  coin          the seed's: each task independently trains with probability p, own step each
  round_robin   one task per iteration, in turn
  uniform       one task per iteration, equal probability
  proportional  one task per iteration, probability ∝ training-set size
  temperature   one task per iteration, probability ∝ size^(1/T)
  annealed      proportional at the start of training, uniform at the end, linear in between
  joint         every iteration one step over all tasks, losses summed (optional static weights)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Steps = list[tuple[int, ...]]
Plan = Callable[[np.random.Generator, int, float, np.ndarray, dict[str, Any]], Steps]
Probs = Callable[[float, np.ndarray, dict[str, Any]], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Scheme:
    name: str
    plan: Plan
    probs: Probs  # the definition: expected per-task share of steps at a given progress
    params: tuple[str, ...]  # TrialConfig fields the scheme reads
    description: str


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


def _one_task(probs: Probs) -> Plan:
    def plan(rng, iteration, progress, sizes, params):
        p = probs(progress, sizes, params)
        return [(int(rng.choice(len(sizes), p=p)),)]

    return plan


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in [
        Scheme(
            "coin",
            lambda rng, it, prog, sizes, prm: [
                (i,) for i in range(len(sizes)) if rng.random() < prm["coin_p"]
            ],
            lambda prog, sizes, prm: _uniform(sizes),
            ("coin_p",),
            "the seed's scheme: each task independently trains with probability p, own step",
        ),
        Scheme(
            "round_robin",
            lambda rng, it, prog, sizes, prm: [(it % len(sizes),)],
            lambda prog, sizes, prm: _uniform(sizes),
            (),
            "one task per iteration, in turn",
        ),
        Scheme(
            "uniform",
            _one_task(lambda prog, sizes, prm: _uniform(sizes)),
            lambda prog, sizes, prm: _uniform(sizes),
            (),
            "one task per iteration, equal probability",
        ),
        Scheme(
            "proportional",
            _one_task(lambda prog, sizes, prm: _proportional(sizes)),
            lambda prog, sizes, prm: _proportional(sizes),
            (),
            "one task per iteration, probability proportional to training-set size",
        ),
        Scheme(
            "temperature",
            _one_task(lambda prog, sizes, prm: _tempered(sizes, prm["temperature"])),
            lambda prog, sizes, prm: _tempered(sizes, prm["temperature"]),
            ("temperature",),
            "one task per iteration, probability proportional to size^(1/T)",
        ),
        Scheme(
            "annealed",
            _one_task(lambda prog, sizes, prm: _annealed(prog, sizes)),
            lambda prog, sizes, prm: _annealed(prog, sizes),
            (),
            "proportional at the start of training, uniform at the end",
        ),
        Scheme(
            "joint",
            lambda rng, it, prog, sizes, prm: [tuple(range(len(sizes)))],
            lambda prog, sizes, prm: _uniform(sizes),
            ("loss_weights",),
            "every iteration one step over all tasks, losses summed (optional static weights)",
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
        steps = self.scheme.plan(rng, self.iteration, progress, self.sizes, self.params)
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

"""Training budgets: how many optimizer steps a run takes, and when each task takes them.

A multi-task run is compared with the single-task runs of its tasks; the budget says at what
training that comparison is made. With n_t task t's own training set, B the batch size, E the
epochs and q_t = ceil(n_t / B) (one pass over task t), a task's single-task run takes E * q_t
steps. A task-step is one task's loss in one optimizer step (a `joint` step over two tasks is two
task-steps). The budgets (`names.BUDGETS`, with their descriptions; the analysis states them
too, so they live with the other shared facts):

  total     (default) the run takes sum_t E * q_t task-steps in all, as its tasks' single-task
            runs together; the scheme shares them among the tasks, as it always did
  per-task  each task takes exactly its E * q_t steps, q_t per epoch, spread evenly over each
            epoch (never front-loaded); the scheme only groups them (see `shares_steps`)
  epochs    the original project's rule: an epoch is ceil(max_t n_t / B) iterations of the scheme

`StepPlan` turns a budget into each epoch's iterations, `(progress, steps)` at a time, from a
`TaskSampler` alone: no model, no torch, so tests count the steps of any run in milliseconds,
and the engine trains exactly what it yields. Its only state is the sampler's (iteration and
cumulative per-task counts, both in every checkpoint) and the epoch number, so a resumed run
takes the same steps as an uninterrupted one. `progress` (the LR schedule's and the scheme's) is
task-steps taken over the run's planned task-steps; under `epochs`, iterations over planned
iterations, as before budgets.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from names import BUDGETS, DEFAULT_BUDGET, LEGACY_BUDGET
from trainables.sampling import SCHEMES, Steps, TaskSampler


def describe(budget: str) -> str:
    """A budget's description (`names.BUDGETS`); per-task's also names the schemes that give
    the same run under it (every one-task-per-step scheme)."""
    if budget != "per-task":
        return BUDGETS[budget]
    one_task = ", ".join(name for name, s in SCHEMES.items() if not s.shares_steps)
    return f"{BUDGETS[budget]} ({one_task})"


def quotas(sizes: Sequence[int], batch_size: int) -> np.ndarray:
    """Each task's steps per epoch of its single-task run: ceil(n_t / B)."""
    return np.array([math.ceil(n / batch_size) for n in sizes], dtype=np.int64)


class StepPlan:
    """Each epoch's iterations of a run under a budget: `epoch(e)` yields `(progress, steps)`
    per iteration, drawing them from (and recording them in) `sampler`."""

    def __init__(
        self,
        sampler: TaskSampler,
        sizes: Sequence[int],
        batch_size: int,
        max_epochs: int,
        budget: str,
    ) -> None:
        if budget not in BUDGETS:
            raise ValueError(f"unknown budget {budget!r}; expected one of {sorted(BUDGETS)}")
        self.sampler, self.budget, self.max_epochs = sampler, budget, max_epochs
        self.quotas = quotas(sizes, batch_size)
        self.iters_per_epoch = int(self.quotas.max())  # ceil(largest n / B)

    @property
    def single_task_steps(self) -> list[int]:
        """Each task's steps in its single-task run: E * q_t."""
        return [int(q) * self.max_epochs for q in self.quotas]

    @property
    def planned(self) -> int:
        """The run's planned total: iterations under `epochs`, else task-steps."""
        per_epoch = self.iters_per_epoch if self.budget == LEGACY_BUDGET else self.quotas.sum()
        return int(per_epoch) * self.max_epochs

    def progress(self) -> float:
        """Fraction of the planned total done (may pass 1 by the last iteration's overshoot)."""
        done = self.sampler.iteration if self.budget == LEGACY_BUDGET else self.sampler.counts.sum()
        return float(done) / self.planned

    def epoch(self, epoch: int) -> Iterator[tuple[float, Steps]]:
        """The iterations of epoch `epoch` (0-based), each `(progress before it, its steps)`."""
        if self.budget == LEGACY_BUDGET:
            for _ in range(self.iters_per_epoch):
                progress = self.progress()
                yield progress, self.sampler.next(progress)
        elif self.budget == DEFAULT_BUDGET:
            # cumulative target, so overshoot never accumulates: at most one iteration's steps
            target = (epoch + 1) * int(self.quotas.sum())
            while self.sampler.counts.sum() < target:
                progress = self.progress()
                yield progress, self.sampler.next(progress)
        else:
            for k in range(self.iters_per_epoch):
                progress = self.progress()
                yield progress, self.sampler.take(self._due(k))

    def _due(self, k: int) -> Steps:
        """Per-task: the tasks due in iteration k of an epoch (Bresenham: task t q_t times in
        the epoch's I iterations, evenly), one step each or one step together."""
        n = self.iters_per_epoch
        due = tuple(int(t) for t, q in enumerate(self.quotas) if (k + 1) * q // n > k * q // n)
        if not due:
            return []
        return [due] if self.sampler.scheme.shares_steps else [(t,) for t in due]


def count_steps(plan: StepPlan) -> np.ndarray:
    """Run a fresh plan to its end without a model: the steps of each task in each epoch,
    shape (max_epochs, tasks). What the engine trains, counted."""
    out = np.zeros((plan.max_epochs, len(plan.quotas)), dtype=np.int64)
    for epoch in range(plan.max_epochs):
        for _, steps in plan.epoch(epoch):
            for step in steps:
                out[epoch, list(step)] += 1
    return out

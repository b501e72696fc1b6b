"""Loss weightings: the step is one ordinary backward of a weighted sum of the task losses.

  ew   equal weights: the plain sum, exactly what `joint` with weights 1 does (the reference)
  uw   uncertainty weighting (Kendall et al. 2018): sum 0.5 exp(-s_i) L_i + 0.5 s_i, with the
       log-variances s_i trained by the optimizer (`parameters()`) and kept in the state
  dwa  dynamic weight average (Liu et al. 2019): w_i = K softmax(r / T)_i, r_i the ratio of task
       i's mean training loss over the last two epochs; weights 1 during the first two epochs
  rlw  random loss weighting (Lin et al. 2022): w = softmax(z), z ~ N(0, I) drawn afresh each
       step from `(seed, step)`

Each follows its paper's scale (ew and dwa sum to K tasks, rlw to 1, uw is learned); the search
tunes the learning rate per method, which absorbs it.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from names import DEFAULT_METHOD
from trainables.methods.base import Combiner, Method, step_seed
from trainables.sampling import Param


def _weighted_backward(losses: Sequence[Tensor], weights: Tensor) -> None:
    total = functools.reduce(operator.add, (w * loss for w, loss in zip(weights, losses)))
    total.backward()


class EqualWeights(Combiner):
    def backward(
        self, losses: Sequence[Tensor], shared: Sequence[Tensor], heads: Sequence[Tensor]
    ) -> Tensor:
        self._check(losses)
        functools.reduce(operator.add, losses).backward()  # l_0 + l_1 + ...: the plain sum
        self.step += 1
        return torch.ones(self.n_tasks, device=losses[0].device)


class Uncertainty(Combiner):
    """Learned log-variances s (one per task, initialized to 0: weights 1/2 each)."""

    def __init__(
        self, n_tasks: int, params: Mapping[str, float], seed: int, device: torch.device
    ) -> None:
        super().__init__(n_tasks, params, seed)
        self.log_vars = nn.Parameter(torch.zeros(n_tasks, device=device))

    def parameters(self) -> list[nn.Parameter]:
        return [self.log_vars]

    def backward(
        self, losses: Sequence[Tensor], shared: Sequence[Tensor], heads: Sequence[Tensor]
    ) -> Tensor:
        self._check(losses)
        s = self.log_vars
        total = (0.5 * torch.exp(-s) * torch.stack(losses) + 0.5 * s).sum()
        total.backward()
        self.step += 1
        return (0.5 * torch.exp(-s)).detach()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "log_vars": self.log_vars.detach().clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        with torch.no_grad():  # in place: the optimizer keeps holding this very parameter
            self.log_vars.copy_(state["log_vars"])


class DynamicWeightAverage(Combiner):
    """Sums each task's (detached) loss over the epoch; `end_epoch` rolls the mean into a two-
    epoch history and computes the next epoch's weights from it."""

    def __init__(
        self, n_tasks: int, params: Mapping[str, float], seed: int, device: torch.device
    ) -> None:
        super().__init__(n_tasks, params, seed)
        self.device = device
        self.loss_sum = torch.zeros(n_tasks, dtype=torch.float64, device=device)
        self.batches = 0
        self.history: list[list[float]] = []  # the last two epochs' mean losses, oldest first
        self.current = self._weights()  # this epoch's weights (they change only between epochs)

    def _weights(self) -> Tensor:
        if len(self.history) < 2:
            w = np.ones(self.n_tasks)
        else:
            rate = np.asarray(self.history[1]) / np.asarray(self.history[0])
            z = np.exp((rate - rate.max()) / self.params["dwa_temperature"])
            w = self.n_tasks * z / z.sum()
        return torch.as_tensor(w, dtype=torch.float32, device=self.device)

    def backward(
        self, losses: Sequence[Tensor], shared: Sequence[Tensor], heads: Sequence[Tensor]
    ) -> Tensor:
        self._check(losses)
        w = self.current
        _weighted_backward(losses, w)
        self.loss_sum += torch.stack(losses).detach().double()
        self.batches += 1
        self.step += 1
        return w

    def end_epoch(self) -> None:
        if self.batches:
            mean = (self.loss_sum / self.batches).tolist()
            self.history = [*self.history, mean][-2:]
        self.loss_sum.zero_()
        self.batches = 0
        self.current = self._weights()

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "loss_sum": self.loss_sum.tolist(),
            "batches": self.batches,
            "history": [list(h) for h in self.history],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.loss_sum = torch.tensor(state["loss_sum"], dtype=torch.float64, device=self.device)
        self.batches = int(state["batches"])
        self.history = [list(map(float, h)) for h in state["history"]]
        self.current = self._weights()


class RandomWeights(Combiner):
    """Weights softmax(z), z ~ N(0, I), drawn from `(seed, step)`: the state is the step."""

    def __init__(
        self, n_tasks: int, params: Mapping[str, float], seed: int, device: torch.device
    ) -> None:
        super().__init__(n_tasks, params, seed)
        self.device = device

    def weights(self) -> Tensor:
        z = np.random.default_rng(step_seed(self.seed, self.step)).standard_normal(self.n_tasks)
        w = np.exp(z - z.max())
        return torch.as_tensor(w / w.sum(), dtype=torch.float32, device=self.device)

    def backward(
        self, losses: Sequence[Tensor], shared: Sequence[Tensor], heads: Sequence[Tensor]
    ) -> Tensor:
        self._check(losses)
        w = self.weights()
        _weighted_backward(losses, w)
        self.step += 1
        return w


WEIGHTINGS: tuple[Method, ...] = (
    Method(
        DEFAULT_METHOD,
        "equal weights: one backward of the summed task losses (the reference)",
        "unitary scalarization; Kurin et al. 2022, Xin et al. 2022",
        build=lambda n, p, seed, dev: EqualWeights(n, p, seed),
    ),
    Method(
        "uw",
        "uncertainty weighting: losses weighted by learned log-variances, 0.5 e^-s L + 0.5 s",
        "Kendall et al. 2018",
        build=Uncertainty,
    ),
    Method(
        "dwa",
        "dynamic weight average: weight K softmax(r/T), r the loss ratio of the last two epochs",
        "Liu et al. 2019",
        build=DynamicWeightAverage,
        params=(
            Param(
                "dwa_temperature",
                default=2.0,
                bounds=(0.0, math.inf),
                open_low=True,
                search=(0.5, 10.0),
                log=True,
                help="T: larger makes DWA's weights more uniform (the paper: 2)",
            ),
        ),
    ),
    Method(
        "rlw",
        "random loss weighting: weights softmax of a standard normal draw, new each step",
        "Lin et al. 2022",
        build=RandomWeights,
        order_invariant=False,  # a draw is tied to task positions (invariant only in law)
    ),
)

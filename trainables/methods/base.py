"""The contract of a multi-task method (`Method`) and the runtime object it builds (`Combiner`).

A `Method` is a registry entry: name, description, paper, parameters (`trainables.sampling.Param`,
so a method's parameters are validated and searched exactly like a scheme's), whether it needs the
per-task Jacobian of the shared parameters, whether its step is invariant to the order of the
tasks, and which importable modules it needs beyond the core install. `Method.create` checks all
of that and builds a `Combiner` for one trial.

A `Combiner` turns one step's per-task losses (each from its own batch) into gradients:
`backward(losses, shared, heads)` fills `.grad` of the shared and head parameters (the caller
zeroes them first and steps the optimizer after), and returns the per-task weights it used
(detached, in task order; None where the method has none to show). Everything it needs to
continue after a restart is in `state_dict`; its randomness, if any, is a function of
`(seed, step)`, so a resumed trial repeats an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from errors import UserError
from trainables.sampling import Param


class Combiner:
    """One trial's method: combines the per-task losses of a step into parameter gradients.

    Subclasses implement `backward`; they keep any further state in attributes listed in their
    `state_dict`. `step` counts the backward calls (the stream of any randomness they draw).
    """

    def __init__(self, n_tasks: int, params: Mapping[str, float], seed: int) -> None:
        self.n_tasks = n_tasks
        self.params = dict(params)
        self.seed = seed
        self.step = 0

    def parameters(self) -> list[nn.Parameter]:
        """Parameters the optimizer trains besides the model's (none by default)."""
        return []

    def backward(
        self, losses: Sequence[Tensor], shared: Sequence[Tensor], heads: Sequence[Tensor]
    ) -> Tensor | None:
        """Accumulate this step's gradients into `.grad`; return the per-task weights."""
        raise NotImplementedError

    def end_epoch(self) -> None:
        """Called once after each training epoch (a method with an epoch history rolls it)."""

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.step = int(state["step"])

    def _check(self, losses: Sequence[Tensor]) -> None:
        if len(losses) != self.n_tasks:
            raise ValueError(f"expected {self.n_tasks} losses (one per task), got {len(losses)}")


Build = Callable[[int, dict[str, float], int, torch.device], Combiner]


@dataclasses.dataclass(frozen=True)
class Method:
    """A registered multi-task method and its contract.

    `build(n_tasks, params, seed, device)` receives every declared parameter (defaults filled
    in, bounds checked). `requires`: importable modules beyond the core install, with `extra` the
    `pip install "mtl-study[<extra>]"` that brings them.
    """

    name: str
    description: str
    reference: str  # the paper, short
    build: Build
    params: tuple[Param, ...] = ()
    jacobian: bool = False  # needs each task's gradient of the shared parameters (one pass each)
    order_invariant: bool = True  # permuting the tasks permutes the step's weights, nothing else
    weights: bool = True  # `backward` returns the per-task weights
    requires: tuple[str, ...] = ()
    extra: str | None = None

    def missing(self) -> list[str]:
        """The modules in `requires` that cannot be imported here."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def resolve(self, params: Mapping[str, float] | None = None) -> dict[str, float]:
        """Every declared parameter's value: given ones checked against their bounds, the rest
        their defaults. Raises `UserError` for an undeclared or out-of-bounds one."""
        given = dict(params or {})
        declared = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            known = ", ".join(declared) or "none"
            raise UserError(f"method {self.name} has no parameter {unknown[0]!r} (its: {known})")
        out: dict[str, float] = {}
        for name, param in declared.items():
            value = float(given.get(name, param.default))
            if not param.admits(value):
                raise UserError(f"{name} must be {param.rule()} for method {self.name}: {value:g}")
            out[name] = value
        return out

    def create(
        self,
        n_tasks: int,
        params: Mapping[str, float] | None = None,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> Combiner:
        """The method for one trial of `n_tasks` tasks; `UserError` for what a user can get
        wrong (a single task, a parameter, an extra that is not installed)."""
        if n_tasks < 2:
            raise UserError(f"method {self.name} combines several tasks; this step has {n_tasks}")
        resolved = self.resolve(params)
        missing = self.missing()
        if missing:
            hint = f': pip install "mtl-study[{self.extra}]"' if self.extra else ""
            raise UserError(f"method {self.name} needs {', '.join(missing)}{hint}")
        return self.build(n_tasks, resolved, seed, torch.device(device))


def step_seed(seed: int, step: int) -> int:
    """A 63-bit seed for step `step` of a run seeded `seed` (independent streams per step)."""
    return int(np.random.SeedSequence([seed, step]).generate_state(2, np.uint64)[0] >> np.uint64(1))


@contextlib.contextmanager
def seeded_torch(seed: int, device: torch.device) -> Iterator[None]:
    """Torch's global generators (the CPU's and, on CUDA, `device`'s) seeded with `seed` inside,
    restored after: code that draws from them (torchjd's PCGrad, GradDrop) becomes a function of
    the seed without disturbing anyone else's stream."""
    cuda = []
    if device.type == "cuda":
        cuda = [torch.cuda.current_device() if device.index is None else device.index]
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield

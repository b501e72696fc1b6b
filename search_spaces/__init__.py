"""Search spaces by name: what a study tries.

Each space is a small module with a define-by-run function `define(trial) -> dict` in Optuna's
style (it only suggests; it computes nothing), the tasks it trains, and its baseline: the original
project's hand-picked configuration (`names.baseline`), which every study enqueues as its first
trial. `all` is a composite: it runs its parts one after another under one study directory so the
analysis can compare them.

Adding a space: a module with its `define`, one `Space` entry in `SPACES`, and its test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import names
from search_spaces import multi, single

Define = Callable[..., dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Space:
    name: str
    description: str
    tasks: tuple[str, ...] = ()
    define: Define | None = None  # define(trial, tasks) -> dict of suggested parameters
    # the configuration enqueued first; by default names.baseline for this many tasks
    baseline: dict[str, Any] = dataclasses.field(default_factory=dict)
    parts: tuple[str, ...] = ()  # composite spaces only

    def __post_init__(self) -> None:
        if self.define is not None and not self.baseline:
            object.__setattr__(self, "baseline", names.baseline(len(self.tasks)))

    @property
    def leaves(self) -> tuple[Space, ...]:
        """The runnable spaces: itself, or its parts in order."""
        return tuple(SPACES[p] for p in self.parts) if self.parts else (self,)


SPACES: dict[str, Space] = {
    s.name: s
    for s in [
        Space(
            "single-cifar10",
            "CIFAR-10 alone: learning rate, weight decay, optimizer, LR schedule",
            ("cifar10",),
            single.define,
        ),
        Space(
            "single-fashionrgb",
            "FashionRGB alone: learning rate, weight decay, optimizer, LR schedule",
            ("fashionrgb",),
            single.define,
        ),
        Space(
            "multi",
            "CIFAR-10 + FashionRGB, shared backbone: the single-task knobs plus the "
            "task-sampling scheme and its parameters",
            ("cifar10", "fashionrgb"),
            multi.define,
        ),
        Space(
            "all",
            "single-cifar10, single-fashionrgb and multi in one study, for the comparison table",
            parts=("single-cifar10", "single-fashionrgb", "multi"),
        ),
    ]
}


def unflatten(params: dict[str, Any]) -> dict[str, Any]:
    """`{"loss_weights/a": 1}` -> `{"loss_weights": {"a": 1}}`, as Ray's OptunaSearch does."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        head, sep, tail = key.partition("/")
        if sep:
            out.setdefault(head, {})[tail] = value
        else:
            out[key] = value
    return out

"""Search spaces by name: what a study tries.

Each space is a small module with a define-by-run function `define(trial) -> dict` in Optuna's
style (it only suggests; it computes nothing), the tasks it trains, and its baseline: the original
project's hand-picked configuration (`names.baseline`; a key it does not fix takes the trainable's
default, `search_spaces.baseline`), which every study enqueues as its first trial. `all` is a
composite: it runs its parts one after another under one study directory so the analysis can
compare them.

A study's tasks (`--tasks`) reshape the registered spaces rather than adding entries:
`leaf_spaces(space, tasks)` is the one place that says which spaces a study runs. `multi` trains
the given tasks, `all` becomes one `single-<name>` space per task (the same single-task search
space, `single.define`) plus `multi` over all of them, and `single-<name>` may name any of them.

Adding a space: a module with its `define`, one `Space` entry in `SPACES`, and its test.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import names
from search_spaces import multi, single
from search_spaces.baseline import complete_baseline

Define = Callable[..., dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Space:
    name: str
    description: str
    tasks: tuple[str, ...] = ()
    define: Define | None = None  # define(trial, tasks) -> dict of suggested parameters
    parts: tuple[str, ...] = ()  # composite spaces only

    @functools.cached_property
    def baseline(self) -> dict[str, Any]:
        """The configuration enqueued first: `names.baseline` for this many tasks, plus the
        trainable's default for each other key the space searches (search_spaces.baseline)."""
        if self.define is None:
            return {}
        tasks = tuple(names.task_name(t) for t in self.tasks)
        return complete_baseline(self.define, tasks, names.baseline(len(self.tasks)))

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
            "CIFAR-10 + FashionRGB (or the --tasks), shared backbone: the single-task knobs "
            "plus the task-sampling scheme and its parameters",
            ("cifar10", "fashionrgb"),
            multi.define,
        ),
        Space(
            "all",
            "single-cifar10, single-fashionrgb and multi in one study, for the comparison "
            "table; with --tasks, single-<name> for each task and multi over all of them",
            parts=("single-cifar10", "single-fashionrgb", "multi"),
        ),
    ]
}


def unflatten(params: dict[str, Any]) -> dict[str, Any]:
    """`{"loss_weights/a": 1}` -> `{"loss_weights": {"a": 1}}`: a flat trial's config, as
    `study.search.StudySearch` gives it to Ray."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        head, sep, tail = key.partition("/")
        if sep:
            out.setdefault(head, {})[tail] = value
        else:
            out[key] = value
    return out


SINGLE_DESCRIPTION = "alone: learning rate, weight decay, optimizer, LR schedule"


def single_task_space(spec: str) -> Space:
    """`single-<name>` for any task spec: the single-task search space over that one task."""
    name = names.task_name(spec)
    return Space(names.single_space(name), f"{spec} {SINGLE_DESCRIPTION}", (spec,), single.define)


def leaf_spaces(space: str, tasks: Sequence[str] | None = None) -> tuple[Space, ...]:
    """The runnable spaces of a study of `space` over `tasks` (its `--tasks`; None: the
    registry's own). `all` with tasks: `single-<name>` per task, then `multi` over them all;
    `multi` trains the tasks; `single-<name>` is the task of that name (else the registry's).
    KeyError for a space that neither the registry nor the tasks define."""
    tasks = tuple(tasks) if tasks else ()
    by_name = {names.single_space(names.task_name(t)): t for t in tasks}
    if space == names.ALL_SPACE and tasks:
        return (
            *(single_task_space(t) for t in tasks),
            _with_tasks(SPACES[names.MULTI_SPACE], tasks),
        )
    if space in by_name:
        return (single_task_space(by_name[space]),)
    leaves = SPACES[space].leaves
    return tuple(_with_tasks(s, tasks) if s.name == names.MULTI_SPACE else s for s in leaves)


def _with_tasks(space: Space, tasks: tuple[str, ...]) -> Space:
    """`space` over `tasks` instead of its own, when tasks are given."""
    return dataclasses.replace(space, tasks=tasks) if tasks else space

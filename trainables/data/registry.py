"""One job: the registry of task kinds (`register`, `LOADERS`, `parse_task`) and the contract
every loader keeps (`Splits`: 3 x `IMAGE_SIZE` x `IMAGE_SIZE` uint8 images, every class present).

A loader returns the dataset's training split and its held-out **test** split; validation is
carved from the training split later (`trainables.data.splits`). The format modules register
themselves on import, in the order `trainables.data` imports them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from errors import UserError
from names import split_task_spec

IMAGE_SIZE = 32  # pixels; every task is resized to 3 x 32 x 32 at load time

Splits = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]
# (arg, data_root) -> (train_x, train_y, test_x, test_y, classes): the dataset's training split
# and its held-out test split (validation is carved from the training split later, see split_task)
Load = Callable[[str, Path], Splits]
Sources = Callable[[str, Path], list[Path]]  # (arg, data_root) -> the files and folders it reads


@dataclasses.dataclass(frozen=True)
class Loader:
    """A registered task kind: how to decode it and what it reads.

    `sources` lists the files and folders `load` reads; the decoded cache is keyed by exactly
    those (paths, sizes, modification times), so editing one re-decodes. A loader without
    `sources` is decoded afresh every time, never cached. `arg` names the argument a kind takes
    (`imagefolder:<path>`); such a kind reads from its argument, not from the data root.
    """

    load: Load
    sources: Sources | None = None
    arg: str | None = None


LOADERS: dict[str, Loader] = {}


def register(
    kind: str, sources: Sources | None = None, arg: str | None = None
) -> Callable[[Load], Load]:
    """Decorator: register `load` as the loader of task kind `kind` (see `Loader`)."""

    def wrap(load: Load) -> Load:
        LOADERS[kind] = Loader(load, sources, arg)
        return load

    return wrap


def loader_of(kind: str) -> Loader:
    """The loader registered for `kind` (a kind `parse_task` accepted), looked up when asked."""
    return LOADERS[kind]


def parse_task(spec: str) -> tuple[str, str]:
    """`cifar10` -> ("cifar10", ""); `imagefolder:/data/x` -> ("imagefolder", "/data/x"); a
    trailing `=<name>` (`names.split_task_spec`) names the task and is not part of either."""
    kind, _, arg = split_task_spec(spec)[0].partition(":")
    if kind not in LOADERS:
        known = ", ".join(LOADERS)
        forms = ", ".join(f"{k}:<{v.arg}>" for k, v in LOADERS.items() if v.arg)
        raise UserError(f"unknown task {spec!r}; expected one of {known} ({forms})")
    wanted = LOADERS[kind].arg
    if wanted and not arg:
        raise UserError(f"task {kind!r} needs a {wanted}: {kind}:<{wanted}>")
    if not wanted and arg:
        raise UserError(f"task {kind!r} takes no argument, got {spec!r}")
    return kind, arg


def check_classes(where: Path, classes: Sequence[str], labels: np.ndarray) -> None:
    """UserError naming `where` unless every class has at least one label in `labels`."""
    counts = np.bincount(labels, minlength=len(classes))
    empty = [c for c, n in zip(classes, counts) if n == 0]
    if empty:
        raise UserError(f"{where}: class(es) {empty} have no images; every class needs some")

"""One job: carve and subset a decoded task's splits, the same images in every space and trial:
validation out of the training split (`carve_validation`), then class-balanced limits on train,
validation and test (`balanced_subset`), all drawn from `names.SPLIT_SEED`; and `prepare_tasks`,
the runner's up-front step that loads (`trainables.data.cache`) and splits every task.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from errors import UserError
from names import SPLIT_SEED, VAL_CAP, VAL_FRACTION, task_name
from trainables.data.cache import LoadedTask, load_task
from trainables.data.tasks import TaskSplits


def balanced_subset(
    labels: torch.Tensor,
    limit: int | None,
    num_classes: int,
    *,
    keep: int = 0,
    seed: int = SPLIT_SEED,
) -> torch.Tensor:
    """Indices (sorted) of a deterministic, class-balanced subset of at most `limit` items that
    leaves at least `keep` items of every class out: one per class in turn, in the order of a
    permutation drawn from `seed`, skipping classes that have nothing more to give."""
    n = len(labels)
    if keep == 0 and (limit is None or limit >= n):
        return torch.arange(n)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    by_class = [order[labels[order] == c] for c in range(num_classes)]
    room = [max(len(idx) - keep, 0) for idx in by_class]
    quota = [0] * num_classes
    left = n if limit is None else limit
    while left > 0:  # hand out one per class in turn, skipping exhausted classes
        progressed = False
        for c in range(num_classes):
            if left and quota[c] < room[c]:
                quota[c] += 1
                left -= 1
                progressed = True
        if not progressed:
            break
    return torch.cat([idx[:q] for idx, q in zip(by_class, quota)]).sort().values


def default_val_size(n_train: int, num_classes: int) -> int:
    """Validation images carved from a training split of `n_train`: VAL_FRACTION of it, at most
    VAL_CAP, at least one per class."""
    return max(num_classes, min(VAL_CAP, round(VAL_FRACTION * n_train)))


def carve_validation(
    task: LoadedTask, val_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, validation indices) into the loader's training split: disjoint, sorted,
    validation class-balanced from `SPLIT_SEED`, every class kept in train. UserError (naming
    the task and the numbers) for a size that cannot be carved."""
    n, k = len(task.train_y), task.num_classes
    size = default_val_size(n, k) if val_size is None else val_size
    what = f"task {task.name}: a validation set of {size} images"
    if size > n:
        raise UserError(f"{what} is bigger than its training set of {n} images")
    if size < k:
        raise UserError(f"{what} cannot hold one image of each of its {k} classes")
    counts = torch.bincount(task.train_y, minlength=k).tolist()
    small = min(range(k), key=counts.__getitem__)
    if counts[small] < 2:
        raise UserError(
            f"task {task.name}: class {task.classes[small]!r} has {counts[small]} training "
            "image(s); carving a validation set needs 2 in every class (to validate and to train)"
        )
    if size > n - k:
        raise UserError(
            f"{what} leaves a class without training images (training set {n} images of {k} "
            f"classes: at most {n - k})"
        )
    val = balanced_subset(task.train_y, size, k, keep=1)
    is_val = torch.zeros(n, dtype=torch.bool)
    is_val[val] = True
    return (~is_val).nonzero()[:, 0], val


def split_task(
    task: LoadedTask,
    spec: str = "",
    *,
    val_size: int | None = None,
    limit_train: int | None = None,
    limit_val: int | None = None,
    limit_test: int | None = None,
) -> TaskSplits:
    """Carve validation out of train (`carve_validation`), then subset train, validation and
    test to at most `limit_train`, `limit_val` and `limit_test` images (class-balanced)."""
    k = task.num_classes
    train, val = carve_validation(task, val_size)
    train = train[balanced_subset(task.train_y[train], limit_train, k)]
    val = val[balanced_subset(task.train_y[val], limit_val, k)]
    test = balanced_subset(task.heldout_y, limit_test, k)
    return TaskSplits(
        name=task.name,
        classes=task.classes,
        train_x=task.train_x[train],
        train_y=task.train_y[train],
        val_x=task.train_x[val],
        val_y=task.train_y[val],
        test_x=task.heldout_x[test],
        test_y=task.heldout_y[test],
        synthetic=task.synthetic,
        spec=spec,
        split_seed=SPLIT_SEED,
        fingerprint=task.fingerprint,
    )


def prepare_tasks(
    specs: Sequence[str],
    data: str,
    data_root: str | Path,
    *,
    limit_train: int | None = None,
    limit_val: int | None = None,
    limit_test: int | None = None,
    val_size: int | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
) -> dict[str, TaskSplits]:
    """Load, validate, split and subset every task, keyed by task name (the runner's up-front
    step). The same arguments give the same splits, whichever space or trial asks. UserError
    when two different specs share a name (the study's settings refuse that before)."""
    tasks: dict[str, TaskSplits] = {}
    for spec in dict.fromkeys(specs):
        name = task_name(spec)
        if name in tasks:
            raise UserError(
                f"tasks {tasks[name].spec!r} and {spec!r} would both be named {name!r}; give "
                f"one its own name with =<name>"
            )
        task = load_task(spec, data, data_root, cache_dir=cache_dir, seed=seed)
        tasks[task.name] = split_task(
            task,
            spec,
            val_size=val_size,
            limit_train=limit_train,
            limit_val=limit_val,
            limit_test=limit_test,
        )
    return tasks

"""One job: what the runner and a trial hold of a task: `TaskSplits`, its three disjoint splits
(train, validation carved from the loader's training split, test held out), and `TaskData`,
one view of them that a trial trains and scores on.

A search trial sees only `TaskSplits.search()` (train, scored on validation), a confirmation
run `TaskSplits.confirm()` (train + validation, scored on test), so test images never reach a
search decision.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from names import SPLIT_SEED, TEST, VALIDATION


@dataclasses.dataclass(frozen=True)
class TaskData:
    """What a trial sees of one task: images to train on and images to score on (uint8 images,
    int64 labels). `eval_split` names the scored split: `names.VALIDATION` or `names.TEST`."""

    name: str
    classes: tuple[str, ...]
    train_x: torch.Tensor  # N x 3 x 32 x 32 uint8
    train_y: torch.Tensor  # N int64
    eval_x: torch.Tensor
    eval_y: torch.Tensor
    eval_split: str
    synthetic: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to(self, device: torch.device | str) -> TaskData:
        move = {f: getattr(self, f).to(device, non_blocking=True) for f in _TENSOR_FIELDS}
        return dataclasses.replace(self, **move)

    def channel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training images, in [0, 1] units. Summed in chunks:
        a float copy of all of CIFAR-10 would be 600 MB, more than a 0.25 GPU share may hold."""
        total = torch.zeros(3, dtype=torch.float64, device=self.train_x.device)
        squares = torch.zeros_like(total)
        for chunk in self.train_x.split(4096):
            x = chunk.double().div_(255)
            total += x.sum(dim=(0, 2, 3))
            squares += x.square().sum(dim=(0, 2, 3))
        n = self.train_x[:, 0].numel()
        mean = total / n
        var = (squares - n * mean.square()) / max(n - 1, 1)  # unbiased, as torch.std
        return mean.float(), var.clamp_min(0).sqrt().float().clamp_min(1e-3)


_TENSOR_FIELDS = ("train_x", "train_y", "eval_x", "eval_y")


@dataclasses.dataclass(frozen=True)
class TaskSplits:
    """One task's three disjoint splits: `train` and `val` (validation, carved from the loader's
    training split) and `test` (the loader's held-out split), each already subset. `spec` is the
    task spec it came from, `split_seed` the seed that carved validation and drew the subsets."""

    name: str
    classes: tuple[str, ...]
    train_x: torch.Tensor  # N x 3 x 32 x 32 uint8
    train_y: torch.Tensor  # N int64
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    synthetic: bool = False
    spec: str = ""
    split_seed: int = SPLIT_SEED
    fingerprint: str = ""  # the source's identity (`source_fingerprint`)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def search(self) -> TaskData:
        """A search trial's view: train, scored on validation; no test image in it."""
        return self._view(self.train_x, self.train_y, self.val_x, self.val_y, VALIDATION)

    def confirm(self) -> TaskData:
        """A confirmation run's view: train + validation (concatenated), scored on test."""
        train_x = torch.cat([self.train_x, self.val_x])
        train_y = torch.cat([self.train_y, self.val_y])
        return self._view(train_x, train_y, self.test_x, self.test_y, TEST)

    def _view(
        self,
        train_x: torch.Tensor,
        train_y: torch.Tensor,
        x: torch.Tensor,
        y: torch.Tensor,
        split: str,
    ) -> TaskData:
        return TaskData(self.name, self.classes, train_x, train_y, x, y, split, self.synthetic)

    def describe(self) -> dict[str, Any]:
        """Sizes and provenance, as the study writes them per task into tasks.json."""
        return {
            "spec": self.spec,
            "classes": list(self.classes),
            "train_size": len(self.train_y),
            "val_size": len(self.val_y),
            "test_size": len(self.test_y),
            "split_seed": self.split_seed,
            "synthetic": self.synthetic,
            "fingerprint": self.fingerprint,
        }

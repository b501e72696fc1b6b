"""Shared pieces of the benchmarks: synthetic task data, the baseline PIL pipeline, timing.

The baseline pipeline is what the original project (and most torchvision tutorials) does: a
`Dataset` that keeps HWC uint8 arrays and builds a PIL image per item (exactly like
`torchvision.datasets.CIFAR10`), then `RandomCrop(32, padding=4)`, `RandomHorizontalFlip()`,
`ToTensor()`, `Normalize(mean, std)`, batched by a `DataLoader`.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from trainables.data import TaskData, prepare_tasks


def synthetic_task(limit_train: int, limit_val: int, name: str = "cifar10") -> TaskData:
    """A search trial's view of one synthetic stand-in task (no files read or written):
    `limit_val` validation images carved from its training split, at most `limit_train` left."""
    tasks = prepare_tasks([name], "synthetic", ".", limit_train=limit_train, val_size=limit_val)
    return tasks[name].search()


class BaselineDataset(torch.utils.data.Dataset):
    """HWC uint8 images held in memory; one PIL image per item, then the baseline's transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform: Callable) -> None:
        self.images = images.permute(0, 2, 3, 1).contiguous().numpy()  # N x H x W x 3
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def baseline_transform(mean: torch.Tensor, std: torch.Tensor, train: bool = True) -> Callable:
    from torchvision import transforms

    steps: list[Callable] = []
    if train:
        steps += [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip()]
    steps += [transforms.ToTensor(), transforms.Normalize(mean.tolist(), std.tolist())]
    return transforms.Compose(steps)


def baseline_loader(
    task: TaskData, batch_size: int, num_workers: int, pin_memory: bool = False
) -> torch.utils.data.DataLoader:
    """The baseline training loader (shuffled, augmented); workers persist across epochs so
    that repeated epochs measure steady state, which favours the baseline pipeline."""
    mean, std = task.channel_stats()
    dataset = BaselineDataset(task.train_x, task.train_y, baseline_transform(mean, std))
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
        drop_last=False,
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds one call of `fn` takes, with the device synchronized on both ends."""
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def rotated(names: list[str], r: int) -> list[str]:
    """`names` started at position r: round r of an interleaved benchmark runs in this order."""
    k = r % len(names)
    return names[k:] + names[:k]


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def spread(values: list[float]) -> float:
    """(max - min) / median: how noisy the repeats were."""
    m = median(values)
    return float((max(values) - min(values)) / m) if m else float("nan")


def loadavg() -> float:
    """The 1-minute load average: above ~0.5 before a run, other work shares the CPUs."""
    return round(os.getloadavg()[0], 2)


def emit(record: dict[str, Any]) -> None:
    """One JSON line on stdout, flushed at once.

    Floats keep 6 significant digits, not a fixed number of decimals: a step of 12 ms
    rounded to 0.1 ms would be 0.8 % off, and ratios of such values would not agree with
    the ratios printed beside them.
    """

    def clean(v: Any) -> Any:
        if isinstance(v, float | np.floating):
            return float(f"{float(v):.6g}")
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    print(json.dumps(clean(record)), flush=True)


def log(message: str) -> None:
    """Progress on stderr, so stdout stays pure JSON lines."""
    print(message, file=sys.stderr, flush=True)

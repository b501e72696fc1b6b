"""One job: synthetic stand-ins for the known tasks (`--data synthetic`): generated images with
the real tasks' class names and proportions, no files, no download, no cache.

`make_synthetic` has the signature of a loader; `synthetic_fingerprint` is a stand-in's identity
(what generates it), as `trainables.data.fingerprint.source_fingerprint` is a real task's.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np
import torch

from trainables.data.cifar10 import CIFAR10_CLASSES
from trainables.data.fashionrgb import FASHIONRGB_CLASSES
from trainables.data.registry import IMAGE_SIZE, Splits

KNOWN_CLASSES = {"cifar10": CIFAR10_CLASSES, "fashionrgb": FASHIONRGB_CLASSES}
# synthetic stand-ins: (train, test) images per task, ratios like the real sets (50k:10k, 10k:5k)
SYNTHETIC_SIZES = {"cifar10": (5000, 1000), "fashionrgb": (2500, 1000)}


def make_synthetic(arg: str, data_root: Path, *, seed: int = 0) -> Splits:
    """Learnable, not trivial: each image blends its class's smooth colour pattern with a random
    other class's (own weight 0.4..1, so some images are ambiguous), shifted, rescaled and noised.
    `arg` is the real task it stands in for; same class names, counts in SYNTHETIC_SIZES."""
    classes = KNOWN_CLASSES[arg]
    n_train, n_test = SYNTHETIC_SIZES[arg]
    g = torch.Generator().manual_seed(zlib.crc32(f"{arg}:{seed}".encode()))
    k = len(classes)
    low = torch.rand(k, 3, 4, 4, generator=g)  # coarse per-class colour layout
    canvas = IMAGE_SIZE + 8  # pixels; each image is a random 32 x 32 window of its pattern
    protos = torch.nn.functional.interpolate(low, size=canvas, mode="bicubic")
    protos = (protos - 0.5) * 2.5  # in about [-1.25, 1.25]; each class keeps its mean colour

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = torch.arange(n) % k  # balanced classes
        y = y[torch.randperm(n, generator=g)]
        other = (y + torch.randint(1, k, (n,), generator=g)) % k  # always a different class
        own = 0.4 + 0.6 * torch.rand(n, 1, 1, 1, generator=g)
        dy, dx = torch.randint(0, canvas - IMAGE_SIZE + 1, (2, n, 1), generator=g)
        # the same arithmetic as blending whole patterns and then cropping, on the windows only
        # and in place: the same images for about half the CPU time (every synthetic study
        # makes them before Ray starts)
        x = _windows(protos, y, dy, dx).mul_(own)
        x.add_(_windows(protos, other, dy, dx).mul_(1 - own))
        x.mul_(0.6 + 0.8 * torch.rand(n, 1, 1, 1, generator=g))  # contrast jitter
        x.add_(torch.randn(x.shape, generator=g).mul_(0.3))  # pixel noise
        x = x.mul_(0.5).add_(0.5).clamp_(0, 1).mul_(255).round_().to(torch.uint8)
        return x.numpy(), y.numpy().astype(np.int64)

    train_x, train_y = sample(n_train)
    test_x, test_y = sample(n_test)
    return train_x, train_y, test_x, test_y, classes


def _windows(
    patterns: torch.Tensor, which: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor
) -> torch.Tensor:
    """Image i: the IMAGE_SIZE x IMAGE_SIZE window at (dy[i], dx[i]) of pattern which[i], the
    same pixels as a crop of `patterns[which]`, without a copy of every whole pattern."""
    rows = dy + torch.arange(IMAGE_SIZE)  # N x H
    cols = dx + torch.arange(IMAGE_SIZE)  # N x W
    out = patterns.permute(0, 2, 3, 1)[which[:, None, None], rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2)  # N x 3 x H x W, channels_last strides


def synthetic_fingerprint(kind: str, seed: int) -> str:
    """The identity of a synthetic stand-in: what generates it (kind, seed, sizes)."""
    what = f"synthetic-1:{kind}:{seed}:{SYNTHETIC_SIZES[kind]}:{IMAGE_SIZE}"
    return "synthetic-" + hashlib.sha256(what.encode()).hexdigest()[:16]

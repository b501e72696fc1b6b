"""One job: batch augmentation and normalization on the training device, in the style of
airbench: pure functions over whole uint8 batches (random crop with 4-pixel zero padding and
horizontal flip; per-channel standardization to float32).
"""

from __future__ import annotations

import torch


def augment(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop with 4-pixel zero padding and random horizontal flip, per image, on the whole
    uint8 batch (B x 3 x 32 x 32 -> same): one gather of whole 32-pixel rows from a strided view
    of every possible window of the padded batch and of its mirror."""
    b, c, h, w = images.shape
    pad = 4  # pixels
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad)).contiguous()
    dev = images.device
    dy = torch.randint(0, 2 * pad + 1, (b, 1), device=dev, generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b, 1), device=dev, generator=generator)
    flip = torch.rand(b, 1, device=dev, generator=generator) < 0.5
    # a window at dx of the mirror is the mirror of the window at 2*pad - dx: same distribution
    both = torch.cat([padded, padded.flip(3)])  # 2B x C x H+2p x W+2p
    sb, sc, sh, sw = both.stride()
    n = 2 * pad + 1
    windows = both.as_strided((2 * b, n, n, c, h, w), (sb, sh, sw, sc, sh, sw))
    source = torch.arange(b, device=dev) + b * flip[:, 0].long()
    return windows[source, dy[:, 0], dx[:, 0]]


def normalize(
    images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, channels_last: bool = True
) -> torch.Tensor:
    """uint8 -> float32 standardized with per-channel mean/std (in [0, 1] units), as one
    multiply-add against full-size scale/shift planes (a 3-long inner broadcast is slow)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    _, c, h, w = images.shape
    scale = (1 / (255 * std)).view(1, c, 1, 1).expand(1, c, h, w).contiguous(memory_format=fmt)
    shift = (-mean / std).view(1, c, 1, 1).expand(1, c, h, w).contiguous(memory_format=fmt)
    x = images.contiguous(memory_format=fmt).float()
    return torch.addcmul(shift, x, scale)

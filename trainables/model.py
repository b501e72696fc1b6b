"""timm EfficientNetB0 backbone shared by one linear head per task; a trained model to use.

`create_model(..., num_classes=0)` gives the pooled 1280-d features; heads live in an
`nn.ModuleDict` keyed by task name. A single-task model is the same thing with one head.
No pretrained weights: none can be downloaded here, and the original project trained from scratch.

The stem (`STEMS` in trainables.config): `imagenet` is timm's, a stride-2 first convolution, so a
32 x 32 image ends as a 1 x 1 feature map before pooling; `cifar` is the original project's CIFAR
variant, stride 1 there, ending at 2 x 2 (4x the compute of the whole network).

`Classifier` wraps a network with the normalization of the data it trained on: uint8 images in,
logits out, under the same precision rule as training. `engine.evaluate` scores through it, and
`trainables.checkpoint.load_model` rebuilds one from a checkpoint folder alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import timm
import torch
from torch import nn

from trainables.config import TrialConfig
from trainables.data.augment import normalize


class MultiTaskNet(nn.Module):
    def __init__(
        self,
        num_classes: Mapping[str, int],
        backbone: str = "efficientnet_b0",
        stem: str = "imagenet",
    ) -> None:
        super().__init__()
        self.backbone = timm.create_model(backbone, pretrained=False, num_classes=0)
        if stem == "cifar":  # stride 1 in the stem convolution: 32 x 32 ends at 2 x 2, not 1 x 1
            self.backbone.conv_stem.stride = (1, 1)
        elif stem != "imagenet":
            raise ValueError(f"unknown stem {stem!r}")
        self.heads = nn.ModuleDict(
            {task: nn.Linear(self.backbone.num_features, n) for task, n in num_classes.items()}
        )

    def forward(self, x: torch.Tensor, task: str) -> torch.Tensor:
        return self.heads[task](self.backbone(x))


def build_model(
    num_classes: Mapping[str, int],
    device: torch.device | str = "cpu",
    channels_last: bool = True,
    stem: str = "imagenet",
) -> MultiTaskNet:
    model = MultiTaskNet(num_classes, stem=stem).to(device)
    if channels_last:  # ~2.8x faster than contiguous for this net on CPU, also faster on GPU
        model = model.to(memory_format=torch.channels_last)
    return model


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast for precision `bf16`, and for `auto` on CUDA; else none (fp32)."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class Classifier(nn.Module):
    """A network with its tasks' normalization: `model(images, task)` takes uint8 images
    (N x 3 x 32 x 32, on any device) and returns float32 logits (N x classes of the task).

    `stats` is {task: (mean, std)} per channel in [0, 1] units, of the images the network trained
    on; `config` the trial's (its precision and memory format apply). Call `.eval()` first.
    """

    def __init__(
        self, net: MultiTaskNet, stats: Mapping[str, Sequence[torch.Tensor]], config: TrialConfig
    ) -> None:
        super().__init__()
        self.net, self.config = net, config
        self.stats = {task: (mean, std) for task, (mean, std) in stats.items()}

    def forward(self, images: torch.Tensor, task: str) -> torch.Tensor:
        device = next(self.net.parameters()).device
        mean, std = (s.to(device) for s in self.stats[task])
        x = normalize(images.to(device), mean, std, self.config.channels_last)
        with autocast(self.config.precision, device):
            return self.net(x, task).float()

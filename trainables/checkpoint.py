"""Atomic checkpoint save, safe load, and a trained model rebuilt from a checkpoint alone.

A checkpoint is one folder holding `state.pt`, written to a temporary name and renamed into
place, so a kill mid-write never leaves a half file that looks complete. Loading uses
`torch.load(..., weights_only=True)`: tensors and plain containers only, never pickled code.
A trial's payload holds its config, weights and normalization stats, which is all `load_model`
needs to give back a model that classifies uint8 images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from trainables.atomic import atomic_save

if TYPE_CHECKING:
    from trainables.model import Classifier

STATE_FILE = "state.pt"
META_FILE = "meta.json"  # {"epoch": n}, written after state.pt: ranks checkpoints cheaply


class CorruptCheckpoint(Exception):
    """A checkpoint file exists but cannot be read; the message names its path."""


def save_checkpoint(folder: str | Path, state: dict[str, Any]) -> Path:
    path = atomic_save(state, Path(folder) / STATE_FILE)
    (Path(folder) / META_FILE).write_text(json.dumps({"epoch": int(state.get("epoch", 0))}))
    return path


def checkpoint_epoch(folder: str | Path) -> int:
    """The epoch a checkpoint folder holds, from its small meta file; -1 when unknown."""
    try:
        return int(json.loads((Path(folder) / META_FILE).read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1


def load_checkpoint(folder: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(folder) / STATE_FILE
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CorruptCheckpoint(f"checkpoint {path} is missing") from None
    except Exception as exc:
        raise CorruptCheckpoint(
            f"checkpoint {path} is unreadable: {type(exc).__name__}: {exc}"
        ) from None


def load_model(folder: str | Path, device: str | torch.device = "cpu") -> Classifier:
    """The trained model of a trial's checkpoint folder, in eval mode on `device`: call it as
    `model(images, task)` with uint8 images (N x 3 x 32 x 32) for float32 logits. Its `config`
    is the trial's TrialConfig, its `stats` the {task: (mean, std)} it normalizes with.
    Raises CorruptCheckpoint for a missing or unreadable checkpoint, or one without stats."""
    # imported here, not at the top: the model pulls in timm, which the readers of checkpoints
    # that never build a model (`checkpoint_epoch` in analysis and study) do not need
    from trainables.config import TrialConfig
    from trainables.model import Classifier, build_model

    payload = load_checkpoint(folder, map_location=device)
    if "stats" not in payload:
        raise CorruptCheckpoint(
            f"checkpoint {Path(folder) / STATE_FILE} holds no normalization stats (written by "
            "an older version); its model cannot be used without its training data"
        )
    config = TrialConfig.from_dict(payload["config"])
    weights = payload["model"]
    classes = {task: weights[f"heads.{task}.weight"].shape[0] for task in config.task_names}
    net = build_model(classes, device, config.channels_last, config.stem)
    net.load_state_dict(weights)
    return Classifier(net, payload["stats"], config).eval()

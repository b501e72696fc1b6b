"""The Ray Tune adapter: the only module of `trainables` that touches Ray.

Like Ray's `mnist_pytorch.py`: build the trial, continue from `tune.get_checkpoint()` if there is
one, then per epoch call the engine and `tune.report` its metrics with a checkpoint. Everything a
trial needs to continue is in that checkpoint; a resumed trial starts at the next epoch.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ray import tune

from trainables.checkpoint import load_checkpoint, save_checkpoint
from trainables.config import TrialConfig
from trainables.data import TaskData
from trainables.engine import run_epoch, setup

CONFIG_FILE = "trial_config.json"  # the resolved config, saved beside Ray's params.json


def claim_resources(config: TrialConfig) -> torch.device:
    """Threads equal to the CPU share; on CUDA, memory capped to the GPU share."""
    torch.set_num_threads(max(1, math.floor(config.cpus)))
    if config.gpus > 0 and torch.cuda.is_available():
        device = torch.device("cuda")
        if config.gpus < 1:
            torch.cuda.set_per_process_memory_fraction(config.gpus, device)
        return device
    return torch.device("cpu")


def train_trial(config: dict[str, Any], tasks: Mapping[str, TaskData]) -> None:
    """Ray Tune function trainable; `tasks` comes through `tune.with_parameters`."""
    cfg = TrialConfig.from_dict(config)
    logging.getLogger("ray.train").setLevel(logging.WARNING)  # no "checkpoint created" per epoch
    device = claim_resources(cfg)
    data = {name: tasks[name].to(device) for name in cfg.task_names}
    state = setup(cfg, data, device)
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as folder:
            state.load_state_dict(load_checkpoint(folder, map_location=device))
    trial_dir = Path(tune.get_context().get_trial_dir())
    (trial_dir / CONFIG_FILE).write_text(json.dumps(cfg.to_dict(), indent=2))
    while state.epoch < cfg.max_epochs:
        metrics = run_epoch(state, data)
        with tempfile.TemporaryDirectory() as folder:
            save_checkpoint(folder, state.state_dict())
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        if metrics["diverged"]:  # reported once with the worst score; nothing left to learn
            return

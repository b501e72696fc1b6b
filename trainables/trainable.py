"""The Ray Tune adapter: the only module of `trainables` that touches Ray.

Like Ray's `mnist_pytorch.py`: build the trial, continue from `tune.get_checkpoint()` if there is
one, then per epoch call the engine and `tune.report` its metrics with a checkpoint. Everything a
trial needs to continue is in that checkpoint; a resumed trial starts at the next epoch.

What a trial is scored on comes with its data (`TaskData.eval_split`): a search trial is handed
validation and evaluates it every epoch; a confirmation run (its Ray config is
`{names.RUN_KEY: {..., "config": {...}}}`) is handed test and evaluates it at its last epoch only.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from names import CHECKPOINT_GLOB, NODE_KEY, RUN_KEY, TRIAL_CONFIG_FILE
from trainables.checkpoint import (
    CorruptCheckpoint,
    checkpoint_epoch,
    load_checkpoint,
    save_checkpoint,
)
from trainables.config import TrialConfig
from trainables.data import TaskData
from trainables.engine import TrialState, setup, train_to_end
from trainables.resources import claim_resources


def restore_newest(
    state: TrialState, folder: Path, device: torch.device
) -> tuple[Path, dict[str, Any]]:
    """Continue from the newest complete checkpoint of this trial that exists on disk.

    Ray hands over the checkpoint of its last experiment snapshot (`folder`); a driver killed
    between snapshots leaves newer ones beside it, and a kill mid-copy can leave the newest
    unreadable. Candidates are ranked by the epoch they hold, newest first; the first that loads
    wins, and any skipped are reported. Returns it and its payload (which holds the metrics
    reported with it). Raises CorruptCheckpoint if none loads.
    """
    siblings = [p for p in folder.parent.glob(CHECKPOINT_GLOB) if p.is_dir() and p != folder]
    candidates = sorted(
        [folder, *siblings], key=lambda p: (checkpoint_epoch(p), p.name), reverse=True
    )
    problems = []
    for candidate in candidates:
        try:
            payload = load_checkpoint(candidate, map_location=device)
            state.load_state_dict(payload)
        except CorruptCheckpoint as exc:
            problems.append(str(exc))
            continue
        if problems:
            print(f"{'; '.join(problems)}; resumed from the previous checkpoint {candidate}")
        elif candidate != folder:
            print(f"resumed from {candidate.name} (epoch {state.epoch}), newer than Ray's snapshot")
        return candidate, payload
    raise CorruptCheckpoint("; ".join(problems))


FAULT_ENV = "MTL_STUDY_FAULT"  # test-only fault injection, see inject_fault


def inject_fault(state: TrialState, trial_id: str) -> None:
    """Test-only: `MTL_STUDY_FAULT=<raise|nan>@<epoch>[:<config key>=<value>]` makes matching
    trials raise (once per trial) or turn their weights to NaN before training that epoch;
    `<key>!=<value>` matches the other trials, and several faults are joined with `;`."""
    for spec in filter(None, os.environ.get(FAULT_ENV, "").split(";")):
        what, _, rest = spec.partition("@")
        epoch, _, match = rest.partition(":")
        if state.epoch + 1 != int(epoch) or not _fault_matches(state.config.to_dict(), match):
            continue
        marker = Path(tempfile.gettempdir()) / f"mtl-study-fault-{trial_id}"  # survives retries
        if what == "raise" and not marker.exists():
            marker.write_text(spec)
            raise RuntimeError(f"injected fault ({FAULT_ENV}={spec})")
        if what == "nan":
            with torch.no_grad():
                next(state.model.parameters()).fill_(float("nan"))


def _fault_matches(config: Mapping[str, Any], match: str) -> bool:
    """`<key>=<value>`, `<key>!=<value>` or nothing (every trial)."""
    if not match:
        return True
    key, _, value = match.partition("=")
    if key.endswith("!"):
        return str(config.get(key[:-1])) != value
    return str(config.get(key)) == value


def trial_config(config: Mapping[str, Any]) -> TrialConfig:
    """The TrialConfig of a Ray config: a search trial's flat keys, or a confirmation run's
    `config[RUN_KEY]["config"]`."""
    return TrialConfig.from_dict(config[RUN_KEY]["config"] if RUN_KEY in config else config)


def train_trial(config: dict[str, Any], tasks: Mapping[str, TaskData]) -> None:
    """Ray Tune function trainable; `tasks` comes through `tune.with_parameters`."""
    cfg = trial_config(config)
    logging.getLogger("ray.train").setLevel(logging.WARNING)  # no "checkpoint created" per epoch
    device = claim_resources(cfg)
    data = {name: tasks[name].to(device) for name in cfg.task_names}
    state = setup(cfg, data, device)
    trial_dir = Path(tune.get_context().get_trial_dir())
    (trial_dir / TRIAL_CONFIG_FILE).write_text(json.dumps(cfg.to_dict(), indent=2))
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as folder:
            used, payload = restore_newest(state, Path(folder), device)
            if used != Path(folder) and "metrics" in payload:
                # newer than Ray knows: its report was lost with the driver; make it again
                _report({**payload["metrics"], "restored": True}, state)
                if payload["metrics"]["diverged"]:
                    return
    trial_id = tune.get_context().get_trial_id()
    train_to_end(state, data, lambda m: _report(m, state), lambda s: inject_fault(s, trial_id))


def _report(metrics: dict[str, Any], state: TrialState) -> None:
    """One epoch's metrics with a checkpoint that also holds them (see restore_newest), and the
    wall-clock time of the report (Ray's `timestamp` has whole seconds only) and the node it ran
    on (on a cluster, which machine trained it)."""
    node = ray.get_runtime_context().get_node_id()
    metrics = {"restored": False, **metrics, "wall_time": time.time(), NODE_KEY: node}  # each row
    with tempfile.TemporaryDirectory() as folder:
        save_checkpoint(folder, {**state.state_dict(), "metrics": metrics})
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

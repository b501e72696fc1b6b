"""The Ray Tune adapter: the only module of `trainables` that touches Ray.

Like Ray's `mnist_pytorch.py`: build the trial, continue from `tune.get_checkpoint()` if there is
one, then per epoch call the engine and `tune.report` its metrics with a checkpoint. Everything a
trial needs to continue is in that checkpoint; a resumed trial starts at the next epoch. One
whose checkpoints are all unreadable (a full disk, a copy cut short) starts again from epoch 0
rather than erroring, and says so in its rows (`names.RESTARTED`, `names.UNREADABLE`).

What a trial is scored on comes with its data (`TaskData.eval_split`): a search trial is handed
validation and evaluates it every epoch; a confirmation run (its Ray config is
`{names.RUN_KEY: {..., "config": {...}}}`) is handed test and evaluates it at its last epoch only.

The tests' fault injection is `trainables.faults`, called once before each epoch; it does nothing
unless its test-only environment variable is set.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import posixpath
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from names import (
    CHECKPOINT_GLOB,
    NODE_KEY,
    RESTARTED,
    RESTORED,
    RUN_KEY,
    TRIAL_CONFIG_FILE,
    UNREADABLE,
)
from trainables import faults
from trainables.checkpoint import (
    META_FILE,
    STATE_FILE,
    CorruptCheckpoint,
    load_checkpoint,
    save_checkpoint,
)
from trainables.config import TrialConfig
from trainables.data.tasks import TaskData
from trainables.engine import TrialState, setup, train_to_end
from trainables.resources import claim_resources


class NoReadableCheckpoint(CorruptCheckpoint):
    """No checkpoint of a trial loads; `files` names each one tried, newest first, relative to
    the trial folder (`checkpoint_000002/state.pt`)."""

    def __init__(self, problems: list[str], files: list[str]) -> None:
        super().__init__("no readable checkpoint: " + "; ".join(problems))
        self.files = files


def _stored_epoch(fs: Any, path: str) -> int:
    """The epoch a stored checkpoint folder holds, from its small meta file; -1 when unknown."""
    try:
        with fs.open_input_stream(f"{path}/{META_FILE}") as f:
            return int(json.loads(f.readall())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1


def checkpoint_candidates(checkpoint: tune.Checkpoint) -> list[tune.Checkpoint]:
    """Ray's checkpoint and every other checkpoint folder of its trial, in the same storage (a
    local folder or object storage), ranked by the epoch they hold, newest first."""
    from pyarrow.fs import FileSelector, FileType

    fs, path = checkpoint.filesystem, checkpoint.path.rstrip("/")
    found = {posixpath.basename(path): path}
    for info in fs.get_file_info(FileSelector(posixpath.dirname(path))):
        if info.type == FileType.Directory and fnmatch.fnmatch(info.base_name, CHECKPOINT_GLOB):
            found.setdefault(info.base_name, info.path)
    ranked = sorted(found.items(), key=lambda kv: (_stored_epoch(fs, kv[1]), kv[0]), reverse=True)
    return [tune.Checkpoint(p, filesystem=fs) for _, p in ranked]


def _load(candidate: tune.Checkpoint, device: torch.device) -> dict[str, Any]:
    """A stored checkpoint's payload; CorruptCheckpoint (naming its stored path) when it is
    missing or unreadable. Other errors of the storage (a store that does not answer) are
    raised as they are: a failure to retry, never a reason to start over."""
    try:
        with candidate.as_directory() as folder:
            try:
                return load_checkpoint(folder, map_location=device)
            except CorruptCheckpoint as exc:
                raise CorruptCheckpoint(str(exc).replace(str(folder), candidate.path)) from None
    except FileNotFoundError:
        raise CorruptCheckpoint(f"checkpoint {candidate.path} is missing") from None


def restore_newest(
    state: TrialState, checkpoint: tune.Checkpoint, device: torch.device
) -> tuple[tune.Checkpoint, dict[str, Any]]:
    """Continue from the newest readable checkpoint of this trial in its storage.

    Ray hands over the checkpoint of its last experiment snapshot; a driver killed between
    snapshots leaves newer ones beside it, and a kill mid-copy or a full disk can leave the
    newest unreadable. Candidates are ranked by the epoch they hold, newest first; the first
    that loads wins, and any skipped are reported. Returns it and its payload (which holds the
    metrics reported with it). Raises NoReadableCheckpoint, with `state` untouched, when none
    loads. A payload that loads but does not fit `state` raises as it is: a bug, not damage.
    """
    problems, files = [], []
    for candidate in checkpoint_candidates(checkpoint):
        try:
            payload = _load(candidate, device)
        except CorruptCheckpoint as exc:
            problems.append(str(exc))
            files.append(f"{posixpath.basename(candidate.path)}/{STATE_FILE}")
            continue
        state.load_state_dict(payload)
        if problems:
            print(f"{'; '.join(problems)}; resumed from the previous checkpoint {candidate.path}")
        elif candidate.path.rstrip("/") != checkpoint.path.rstrip("/"):
            print(f"resumed from {candidate.path} (epoch {state.epoch}), newer than Ray's snapshot")
        return candidate, payload
    raise NoReadableCheckpoint(problems, files)


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
    flags, checkpoint = {RESTARTED: False}, tune.get_checkpoint()
    if checkpoint:
        try:
            used, payload = restore_newest(state, checkpoint, device)
        except NoReadableCheckpoint as exc:  # damage, not a bug: start over rather than error
            print(f"{exc}; restarting from epoch 0", flush=True)
            flags = {RESTARTED: True, UNREADABLE: ", ".join(exc.files)}
        else:
            metrics = payload.get("metrics") or {}
            flags = {RESTARTED: bool(metrics.get(RESTARTED, False))}  # once restarted, always
            if used.path.rstrip("/") != checkpoint.path.rstrip("/") and metrics:
                # newer than Ray knows: its report was lost with the driver; make it again
                _report({**metrics, RESTORED: True}, state)
                if metrics["diverged"]:
                    return
    trial_id = tune.get_context().get_trial_id()
    # the tests' fault injection (trainables.faults): a no-op unless its variable is set
    train_to_end(state, data, lambda m: _report(m, state, flags), faults.before_epoch(trial_id))


def _report(
    metrics: dict[str, Any], state: TrialState, flags: Mapping[str, Any] | None = None
) -> None:
    """One epoch's metrics with a checkpoint that also holds them (see restore_newest), whether
    the trial restarted (`flags`), the wall-clock time of the report (Ray's `timestamp` has
    whole seconds only) and the node it ran on (on a cluster, which machine trained it)."""
    node = ray.get_runtime_context().get_node_id()
    # the same keys in every row, in one order: Ray's progress.csv keeps its first header
    metrics = {RESTORED: False, RESTARTED: False, UNREADABLE: "", **metrics, **(flags or {})}
    metrics.update(wall_time=time.time(), **{NODE_KEY: node})  # in each row
    with tempfile.TemporaryDirectory() as folder:
        save_checkpoint(folder, {**state.state_dict(), "metrics": metrics})
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

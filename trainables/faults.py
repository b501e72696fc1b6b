"""Fault injection for the tests: the one hook through which tests make real trials fail.

It exists for `tests/test_faults.py`, which runs real Ray studies and needs trials that crash or
diverge at a chosen epoch, so Ray's retries from checkpoints and the study's handling of errored
and diverged trials run for real. The trainable calls `before_epoch(trial_id)` once and hands
the result to the engine; with the variable unset (always, outside the tests) it does nothing.

It reads one environment variable, `MTL_STUDY_FAULT=<raise|nan>@<epoch>[:<config key>=<value>]`:
before training that epoch (1-based), the matching trials raise (once per trial: a marker file
`mtl-study-fault-<trial id>` in the temporary folder survives Ray's retry) or turn their weights
to NaN. `<key>!=<value>` matches the other trials; several faults are joined with `;`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from trainables.engine import TrialState

FAULT_ENV = "MTL_STUDY_FAULT"


def before_epoch(trial_id: str) -> Callable[[TrialState], None]:
    """The engine's `before_epoch` callback for trial `trial_id`: injects the faults
    `MTL_STUDY_FAULT` names for it (see the module's docstring)."""
    return lambda state: inject_fault(state, trial_id)


def inject_fault(state: TrialState, trial_id: str) -> None:
    """Raise or turn the weights to NaN when a fault of `MTL_STUDY_FAULT` matches this trial
    before the epoch it is about to train."""
    for spec in filter(None, os.environ.get(FAULT_ENV, "").split(";")):
        what, _, rest = spec.partition("@")
        epoch, _, match = rest.partition(":")
        if state.epoch + 1 != int(epoch) or not fault_matches(state.config.to_dict(), match):
            continue
        marker = Path(tempfile.gettempdir()) / f"mtl-study-fault-{trial_id}"  # survives retries
        if what == "raise" and not marker.exists():
            marker.write_text(spec)
            raise RuntimeError(f"injected fault ({FAULT_ENV}={spec})")
        if what == "nan":
            with torch.no_grad():
                next(state.model.parameters()).fill_(float("nan"))


def fault_matches(config: Mapping[str, Any], match: str) -> bool:
    """`<key>=<value>`, `<key>!=<value>` or nothing (every trial)."""
    if not match:
        return True
    key, _, value = match.partition("=")
    if key.endswith("!"):
        return str(config.get(key[:-1])) != value
    return str(config.get(key)) == value

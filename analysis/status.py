"""Why each trial stopped, and whether its study is running now.

The rules that turn a trial's files into one status word (`STOP_REASONS`): Ray's error file,
the epochs it reported against its budget, its last `diverged` flag, the study's lock (its
holder's process or heartbeat) and the
epochs at which the study's ASHA scheduler may stop a trial (`names.asha_rungs`, the same rule
the runner gives Ray). Kept apart from loading so the rules can be read and tested on their own.
"""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from names import LOCK_FILE, asha_rungs

STOP_REASONS = {
    "finished": "ran all max_epochs epochs",
    "early-stopped": "stopped by ASHA at a rung (fewer epochs, not errored)",
    "diverged": "the last reported epoch has diverged=true",
    "errored": "it raised past its retries (error.txt) before max_epochs; a trial retried from its"
    " checkpoint that then ran to the end is finished",
    "running": "fewer epochs while the study is running now",
    "incomplete": "fewer epochs and not at an ASHA rung: interrupted (resume the study)",
    "no-results": "no epoch reported and not errored",
}


def stop_reason(
    *,
    errored: bool,
    epochs: int,
    max_epochs: float | None,
    diverged: bool,
    running: bool = False,
    scheduler: str | None = "asha",
) -> str:
    """Why a trial stopped; see `STOP_REASONS`."""
    if epochs <= 0:
        return "errored" if errored else "running" if running else "no-results"
    if diverged:
        return "diverged"
    if max_epochs is None or (isinstance(max_epochs, float) and math.isnan(max_epochs)):
        return "errored" if errored else "finished"  # unknown budget: nothing says it stopped
    if epochs >= max_epochs:
        return "finished"  # also after failures it was retried through (error.txt)
    if errored:
        return "errored"
    if running:
        return "running"
    if scheduler == "asha" and epochs in asha_rungs(int(max_epochs)):
        return "early-stopped"
    return "incomplete"


def stop_reasons(trials: pd.DataFrame, settings: Mapping[str, Any], running: bool) -> list[str]:
    """`stop_reason` of every row of a trials frame (columns errored, epochs, max_epochs,
    diverged) under the study's scheduler."""
    scheduler = settings.get("scheduler", "asha")
    return [
        stop_reason(
            errored=e, epochs=n, max_epochs=m, diverged=d, running=running, scheduler=scheduler
        )
        for e, n, m, d in zip(
            trials["errored"], trials["epochs"], trials["max_epochs"], trials["diverged"]
        )
    ]


def study_is_running(path: Path) -> bool:
    """True when a `study.run` driver holds the study's lock now: its lock file (studyfiles.lock)
    names a live process of this host, or, for another host, a heartbeat that is not stale.

    Reads the lock without taking it, so it never disturbs a driver."""
    from studyfiles.lock import STALE_AFTER_S, holder_gone

    try:
        holder = json.loads((path / LOCK_FILE).read_text())
        age = time.time() - float(holder["heartbeat"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if holder.get("host") == socket.gethostname():
        return not holder_gone(holder)
    return age < STALE_AFTER_S

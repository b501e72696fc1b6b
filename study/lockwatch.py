"""Stop a running experiment as soon as this driver's study lock is taken over.

The lock's heartbeat thread (studyfiles.lock) marks it `lost` when another driver has taken it over
(this one looked stale: cut off from the store, or paused for longer than the staleness). From
then on the study is the other driver's: this one must stop at once and write nothing more.
`LockWatch`, a Tune callback, checks the lock at the start of every step of Tune's loop (a few
times a second) and before every save of the experiment state (Ray asks each callback for its
state before it uploads anything; LockWatch comes first, before study.remote.OptunaUpload), and
raises `LockLost`. Tune then stops the trials and re-raises without saving its experiment state
(`tune.run` saves it only when its loop ends normally); the runner lets the exception through,
and `study.run` prints its one line and exits with `LOCK_LOST_STATUS`: no summary, no
confirmation plan, no upload of the Optuna file.

The callback is pickled with the Tuner (`tuner.pkl`) and a resumed experiment gets that copy
back, so the lock it watches is the class's `lock`, bound by the runner of this process (`bind`)
before it starts or restores an experiment; `check` does the same test between experiments.
Kept apart from studyfiles.lock because it subclasses a Ray class at import time.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ray.tune import Callback

from studyfiles.lock import LockLost, StudyLock


def bind(lock: StudyLock | None) -> None:
    """The lock that every LockWatch of this process watches (None: none)."""
    LockWatch.lock = lock


def check() -> None:
    """Raise LockLost when the bound lock was taken over."""
    lock = LockWatch.lock
    if lock is not None and lock.lost:
        raise LockLost(lock.lost_message())


class LockWatch(Callback):
    """Raises LockLost in Tune's loop once the bound lock is lost (see the module)."""

    lock: ClassVar[StudyLock | None] = None

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        check()

    def get_state(self) -> dict | None:
        check()  # before the experiment state (and the Optuna file) is saved and uploaded
        return None

"""Ctrl-C during a study: the first stops the running experiment the way Tune saves it, the second
exits at once.

Kept apart from study.progress (which subclasses a Ray class) so that the driver owns SIGINT
from its first moments, before Ray is imported (study.preload imports it in the background).
"""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@dataclasses.dataclass
class _Interrupts:
    presses: int = 0
    fitting: bool = False


_INTERRUPTS = _Interrupts()


def catch_interrupts() -> None:
    """Own SIGINT for this run (Tune's handler is off, `TUNE_DISABLE_SIGINT_HANDLER`): the first
    Ctrl-C asks a running experiment to stop and save (Tune's own stop, its SIGUSR1 handler), or
    raises KeyboardInterrupt outside one; a second exits at once with status 130."""
    _INTERRUPTS.presses = 0
    signal.signal(signal.SIGINT, _on_interrupt)


def interrupted() -> bool:
    return _INTERRUPTS.presses > 0


@contextmanager
def fitting() -> Iterator[None]:
    """Around `Tuner.fit`: a Ctrl-C in it goes to the stop handler Tune installs for the run."""
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)  # no stale handler of an earlier run
    _INTERRUPTS.fitting = True
    try:
        yield
    finally:
        _INTERRUPTS.fitting = False


def _on_interrupt(signum: int, frame: Any) -> None:
    _INTERRUPTS.presses += 1
    if _INTERRUPTS.presses > 1:
        os.write(2, b"\ninterrupted twice: exiting now, without saving the running epochs\n")
        os._exit(130)
    os.write(1, b"\nstopping: saving the trials' state (Ctrl-C again to exit at once)\n")
    tune_stop = signal.getsignal(signal.SIGUSR1)
    if _INTERRUPTS.fitting and callable(tune_stop):
        tune_stop(signal.SIGUSR1, frame)
        return
    raise KeyboardInterrupt

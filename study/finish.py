"""End the driver process at once when the study has finished, skipping Python's finalization.

When `python -m study.run` returns, the interpreter's atexit handlers run (Ray's shutdown among
them), and then Python finalizes its modules: a full garbage collection over everything torch,
Ray, Optuna and pandas imported. Measured with gdb on the development machine, that last step
(`finalize_modules`, after every atexit handler had run) was most of the driver's ~8 s exit,
and more on a busy machine. By then every file of the study is written and closed; nothing is
left for finalization to do, so `exit_now` runs the atexit handlers, flushes the standard streams
and logging, and ends the process with `os._exit`.

Only for the command line: tests and other callers of `study.run.main` keep their interpreter.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

from study.internals import run_exit_handlers


def exit_now(code: int) -> NoReturn:
    """Run the atexit handlers (Ray's shutdown), flush, and end the process with `code`."""
    try:
        run_exit_handlers()  # what a normal exit runs first, in the same order
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)

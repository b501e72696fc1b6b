"""Import what a study needs later in a background thread, while the driver prepares data and
starts Ray.

A driver's start-up is sequential: imports, data preparation, Ray's start, then the first
experiment, whose Tuner needs the trainable's module (timm, which imports torchvision and
torch._dynamo: ~4 s on a 2-core machine) and Optuna's database layer (alembic, sqlalchemy:
~1 s). Until those end no trial process starts, so every slot of the machine waits. Ray Tune
itself (~2 s) is needed only once the data is ready, and the summary at the end waits the same
way for its analysis modules (~1 s). Imported in a daemon thread started once the driver has
imported torch (for the data), they overlap the data preparation and Ray's start (whose
processes the driver mostly waits for); an `import` of the same module in the main thread waits
for the thread's to finish (Python's per-module import locks), so nothing is used half-imported.
Imports only: nothing is run or written, and a module that fails here is imported again where
it is used, which then raises as it always did.
"""

from __future__ import annotations

import importlib
import threading

from study.internals import OPTUNA_RDB_MODELS

MODULES = (
    "study.progress",  # Ray Tune (the reporter subclasses its class), before the driver starts Ray
    "study.lockwatch",
    "trainables.trainable",  # the trainable: timm -> torchvision -> torch._dynamo
    "alembic.command",  # optuna.storages.RDBStorage imports these lazily
    "alembic.config",
    "alembic.migration",
    "alembic.script",
    "sqlalchemy.orm",
    "sqlalchemy.dialects.sqlite",
    OPTUNA_RDB_MODELS,
    "analysis.results",  # the summary at the end (study.run.summary)
    "analysis.table",
    "analysis.verdict",
    "analysis.verdict_render",
)


def _import_all(modules: tuple[str, ...]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # imported again where it is used, which raises then
            continue


def start(modules: tuple[str, ...] = MODULES) -> threading.Thread:
    """Import `modules` in a daemon thread (it never delays the interpreter's exit)."""
    thread = threading.Thread(target=_import_all, args=(modules,), name="preload", daemon=True)
    thread.start()
    return thread

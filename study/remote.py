"""The Tune callback that keeps a remote study's Optuna SQLite file beside the study.

A study in object storage without `--optuna-storage` keeps Optuna's SQLite file in its local
cache (SQLite needs a local file). Ray calls every callback's `get_state` when it saves the
experiment state, just before uploading that state to the study's storage; `OptunaUpload`
uploads the SQLite file there at that moment, so the file in the store is never older than the
experiment state beside it, and a `--resume` from an empty cache downloads both. Kept apart
from `study.location` because it subclasses a Ray class at import time.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ray.tune import Callback

from study.location import upload_optuna_db
from study.settings import StudySettings


class OptunaUpload(Callback):
    """Uploads the study's Optuna SQLite file at every experiment checkpoint.

    The instance is pickled with the Tuner (its run config) and restored from there on a
    resume, maybe on another machine: what to upload is therefore the class's `settings`,
    set by the runner of this process before it starts or restores an experiment."""

    settings: ClassVar[StudySettings | None] = None

    def get_state(self) -> dict[str, Any] | None:
        if self.settings is not None:
            upload_optuna_db(self.settings)
        return None  # nothing to save: the state is the uploaded file

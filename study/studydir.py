"""The study directory: created once with the study's settings and tasks, checked against its
recorded tasks on a resume, and locked while a driver runs it; and the data its tasks load.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from errors import UserError
from names import (
    SETTINGS_FILE,
    TASKS_FILE,
    task_name,
)
from study import location
from study.settings import StudySettings, study_spaces
from studyfiles.lock import StudyLock
from trainables.data import TaskSplits, prepare_tasks

StudyData = dict[str, dict[str, TaskSplits]]  # space -> task name -> its three splits


def create_study_dir(settings: StudySettings, data: StudyData) -> Path:
    """Make the study folder; refuse (never overwrite) when the name is taken."""
    folder = settings.study_dir
    if location.is_remote(settings):  # in object storage; `folder` is its local cache
        tasks = json.dumps(describe_tasks(data), indent=2)
        texts = {SETTINGS_FILE: settings.to_json(), TASKS_FILE: tasks}
        location.create_remote(settings, texts)
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir()  # atomic: of two studies started at once under one name, one wins
    except FileExistsError:
        raise UserError(
            f"study {settings.name!r} already exists in {folder.parent}; resume it with: "
            f"python -m study.run --resume {folder}  (or pick another --name)"
        ) from None
    (folder / SETTINGS_FILE).write_text(settings.to_json())
    (folder / TASKS_FILE).write_text(json.dumps(describe_tasks(data), indent=2))
    return folder


def describe_tasks(data: StudyData) -> dict[str, dict[str, Any]]:
    """tasks.json: every task of the study by name, with its spec and fingerprint (its source),
    classes and split sizes. Names are unique (`settings.check_task_names`), so no entry hides
    another."""
    return {t.name: t.describe() for space in data.values() for t in space.values()}


def check_recorded_tasks(settings: StudySettings, data: StudyData) -> None:
    """Before a resume: each task is still the source the study recorded (its spec and, when
    tasks.json has one, the fingerprint of its files); otherwise the study would mix results
    of two datasets under one name."""
    try:
        recorded = json.loads((settings.study_dir / TASKS_FILE).read_text())
    except (OSError, ValueError):
        return  # check_resumable has refused studies without a readable tasks.json
    for name, now in describe_tasks(data).items():
        was = recorded.get(name) if isinstance(recorded, dict) else None
        if not isinstance(was, dict):
            raise UserError(
                f"{location.shown_path(settings)}: task {name!r} is not in its {TASKS_FILE}"
            )
        for key in ("spec", "fingerprint"):
            if was.get(key) and was[key] != now[key]:
                raise UserError(
                    f"{location.shown_path(settings)}: task {name!r} was {key} {was[key]!r} "
                    f"when the study started, now {now[key]!r}; the study would mix two datasets "
                    "under one name (restore the data, or start a new study)"
                )


@contextmanager
def locked(settings: StudySettings) -> Iterator[StudyLock]:
    """Hold the study's lock (in its storage, with a heartbeat: see studyfiles.lock) for the whole
    run; a second driver, on this machine or another, is refused, not interleaved. A holder
    that has missed its heartbeats is waited for (one line) until it is stale. Every Tune
    experiment of the run watches the lock (study.lockwatch) and stops if it is taken over."""
    from study import lockwatch

    lock = StudyLock(location.location(settings))
    lock.acquire(say=lambda line: print(line, flush=True))
    lockwatch.bind(lock)
    try:
        yield lock
    finally:
        lockwatch.bind(None)
        lock.release()


def prepare_data(settings: StudySettings) -> StudyData:
    """Every task each space needs, split three ways, keyed by space then task name; raises
    UserError early. Each task is split once, so every space sees the same images."""
    leaves = study_spaces(settings)
    specs = list(dict.fromkeys(t for s in leaves for t in s.tasks))
    loaded = prepare_tasks(
        specs,
        settings.data,
        settings.data_root,
        limit_train=settings.limit_train,
        limit_val=settings.limit_val,
        limit_test=settings.limit_test,
        val_size=settings.val_size,
        cache_dir=settings.cache_dir,
        seed=settings.seed,
    )
    return {s.name: {task_name(t): loaded[task_name(t)] for t in s.tasks} for s in leaves}

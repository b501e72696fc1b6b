"""Read a study's `optuna.db` and link its Optuna trials to the Ray trial folders.

The database holds one Optuna study per space. `study.search.StudySearch` records on each Optuna
trial the Ray trial it became (user attribute `ray_trial_id`, the suffix of its `trial_<id>`
folder), and Optuna marks the trial the study enqueued, the baseline, with `fixed_params` in its
system attributes. Both are read here and nothing else is guessed: a Ray trial id in the database
without a trial folder, or a folder without an Optuna trial (a study from before the id was
recorded), simply has no link.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from names import OPTUNA_DB, RAY_TRIAL_ID

ENQUEUED = "fixed_params"  # Optuna's system attribute of an enqueued trial
COLUMNS = ["space", "number", "state", "value", "is_baseline", RAY_TRIAL_ID]
PARAM_COLUMN = "params_"  # prefix of a frame column holding an Optuna parameter


def load_optuna(path: Path) -> tuple[pd.DataFrame, dict[str, Any], list[str]]:
    """Optuna trials of `optuna.db` (one study per space) as a frame, in-memory copies of the
    studies (for importances), and notes; a missing or unreadable database is a note.

    Frame: space, number, state, value, is_baseline (the enqueued trial), ray_trial_id,
    datetime_start, datetime_complete, params_<name>."""
    db = path / OPTUNA_DB
    empty = pd.DataFrame(columns=COLUMNS)
    if not db.is_file():  # never let sqlite create one
        return empty, {}, [f"no {OPTUNA_DB}: optimization history from results, no importances"]
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" lines
    try:
        records, studies = _read_db(optuna, db)
    except Exception as exc:  # any database problem is a note, not a crash
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return empty, {}, [f"{OPTUNA_DB} unreadable ({first})"]
    finally:
        optuna.logging.set_verbosity(verbosity)
    frame = pd.DataFrame.from_records(records) if records else empty
    return frame, studies, []


def _read_db(optuna: Any, db: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every trial of every study in the database as a record, and in-memory study copies."""
    records, studies = [], {}
    storage = optuna.storages.RDBStorage(f"sqlite:///{db.resolve()}")
    for name in optuna.get_all_study_names(storage):
        loaded = optuna.load_study(study_name=name, storage=storage)
        trials = loaded.get_trials(deepcopy=False)
        copy = optuna.create_study(directions=loaded.directions)  # in memory
        copy.add_trials(trials)
        studies[name] = copy
        records += [_record(name, t) for t in trials]
    storage.remove_session()
    storage.engine.dispose()  # release the file: the study may be resumed meanwhile
    return records, studies


def _record(space: str, trial: Any) -> dict[str, Any]:
    ray_id = trial.user_attrs.get(RAY_TRIAL_ID)
    rec = {
        "space": space,
        "number": trial.number,
        "state": trial.state.name,
        "value": trial.value if trial.values and len(trial.values) == 1 else np.nan,
        "is_baseline": ENQUEUED in trial.system_attrs,
        RAY_TRIAL_ID: None if ray_id is None else str(ray_id),
        "datetime_start": trial.datetime_start,
        "datetime_complete": trial.datetime_complete,
    }
    rec.update({f"{PARAM_COLUMN}{k}": v for k, v in trial.params.items()})
    return rec


def link_trials(
    trials: pd.DataFrame, optuna_trials: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Copies of both frames, linked through `ray_trial_id`: `trials` gains `optuna_number`
    (nullable int), `optuna_trials` gains `trial_id` (missing where no folder is linked).

    Within a space, a Ray trial id claimed by several Optuna trials links to the first."""
    trials = trials.copy()
    optuna_trials = optuna_trials.copy()
    numbers: dict[tuple[str, str], int] = {}
    if not optuna_trials.empty:
        claimed = optuna_trials.dropna(subset=[RAY_TRIAL_ID]).sort_values(
            ["space", "number"], kind="stable"
        )
        for space, ray_id, number in zip(
            claimed["space"], claimed[RAY_TRIAL_ID], claimed["number"]
        ):
            numbers.setdefault((space, str(ray_id)), int(number))
    keys = list(zip(trials["space"], trials["trial_id"].astype(str)))
    trials["optuna_number"] = pd.array([numbers.get(k, pd.NA) for k in keys], dtype="Int64")
    folders = set(keys)
    optuna_trials["trial_id"] = [
        str(r) if pd.notna(r) and (s, str(r)) in folders and numbers.get((s, str(r))) == n else None
        for s, r, n in zip(
            optuna_trials["space"], optuna_trials[RAY_TRIAL_ID], optuna_trials["number"]
        )
    ]
    return trials, optuna_trials

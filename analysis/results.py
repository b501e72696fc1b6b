"""Load a study directory into pandas DataFrames: one row per trial, one row per trial-epoch.

A study directory (written by `python -m study.run`) holds `study.json`, `tasks.json`,
`optuna.db` and one Ray Tune experiment folder per space (`single-cifar10/`, `single-fashionrgb/`,
`multi/`), each with `trial_<id>/params.json` and `trial_<id>/result.json` (one JSON object per
line per epoch). Only these files are read, relative to the folder given, so a copied or moved
study loads the same; absolute paths stored inside it are never used.

`load_study(path)` returns a `Study`: the settings, the tasks, a `trials` frame, an `epochs`
frame, the Optuna trials of `optuna.db` (when there is one) and the confusion matrices of every
reported epoch. Input that is not a study raises `AnalysisError` with one line that says why.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SETTINGS_FILE = "study.json"
TASKS_FILE = "tasks.json"
OPTUNA_DB = "optuna.db"
LOCK_FILE = ".lock"
PARAMS_FILE = "params.json"
RESULT_FILE = "result.json"
ERROR_FILES = ("error.txt", "error.pkl")
KNOWN_SPACES = ("single-cifar10", "single-fashionrgb", "multi")

# the seed's hand-picked configuration (search_spaces.single/multi.SEED_POINT), matched by value
SEED_SINGLE: dict[str, Any] = {
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 0.0,
    "lr_schedule": "step",
}
SEED_MULTI: dict[str, Any] = {**SEED_SINGLE, "scheme": "coin", "coin_p": 0.5}

PER_TASK_METRICS = ("acc", "loss", "train_loss", "train_acc", "steps", "step_share")
EPOCH_FIELDS = (
    "epoch",
    "score",
    "lr",
    "diverged",
    "done",
    "timestamp",
    "time_this_iter_s",
    "time_total_s",
)
STOP_REASONS = {
    "finished": "ran all max_epochs epochs",
    "early-stopped": "stopped by ASHA at a rung (fewer epochs, not errored)",
    "diverged": "the last reported epoch has diverged=true",
    "errored": "Ray marked the trial errored (error.txt)",
    "running": "fewer epochs while the study is running now",
    "incomplete": "fewer epochs and not at an ASHA rung: interrupted (resume the study)",
    "no-results": "no epoch reported and not errored",
}
SINGLE_SCHEME = "single-task"  # the scheme shown for trials of a single-task space


class AnalysisError(ValueError):
    """Input that cannot be analysed; the message is one line that says why."""


@dataclasses.dataclass
class Study:
    """A loaded study directory.

    `trials`: one row per trial (space, trial_id, order, is_seed, config columns, epochs,
    stop_reason, best_score, best_epoch, last_score, and per task `acc_at_best/<task>` (at the
    best-score epoch), `best_acc/<task>` (that task's own maximum) and `last_acc/<task>`).
    `epochs`: one row per trial-epoch (space, trial_id, epoch, score, lr, diverged, per-task
    `acc/`, `loss/`, `train_loss/`, `train_acc/`, `steps/`, `step_share/` and time columns).
    `optuna_trials`: one row per Optuna trial (space, number, state, value, trial_id, params_*).
    """

    path: Path
    settings: dict[str, Any]
    tasks: dict[str, dict[str, Any]]
    space_tasks: dict[str, tuple[str, ...]]
    trials: pd.DataFrame
    epochs: pd.DataFrame
    optuna_trials: pd.DataFrame
    notes: list[str]
    running: bool
    confusions: dict[tuple[str, str, int], dict[str, list[list[int]]]]
    optuna_studies: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def spaces(self) -> list[str]:
        """Spaces with an experiment folder, known ones first in the study's order."""
        return list(self.space_tasks)

    @property
    def synthetic(self) -> bool:
        """True when the study trained on synthetic stand-in data (numbers mean nothing)."""
        if self.settings.get("data") == "synthetic":
            return True
        return any(bool(t.get("synthetic")) for t in self.tasks.values())

    @property
    def task_names(self) -> list[str]:
        """Every task of the study, in first-seen order (multi space's order first)."""
        names: list[str] = []
        for space in sorted(self.space_tasks, key=lambda s: s != "multi"):
            names += [t for t in self.space_tasks[space] if t not in names]
        names += [t for t in self.tasks if t not in names]
        return names

    def class_names(self, task: str, size: int | None = None) -> list[str]:
        """Class names from tasks.json; `0..size-1` where tasks.json lacks them."""
        classes = list(self.tasks.get(task, {}).get("classes") or [])
        if size is not None and len(classes) != size:
            return [str(i) for i in range(size)]
        return classes

    def confusion(self, space: str, trial_id: str, epoch: int, task: str) -> np.ndarray | None:
        """Counts (rows = true class, columns = predicted) of one reported epoch, or None."""
        matrix = self.confusions.get((space, str(trial_id), int(epoch)), {}).get(task)
        return None if matrix is None else np.asarray(matrix, dtype=np.int64)

    def space_trials(self, space: str) -> pd.DataFrame:
        return self.trials[self.trials["space"] == space]


# ---------------------------------------------------------------------------------------------
# pure helpers


def task_name(spec: str) -> str:
    """Metric name of a task spec (as `trainables.data.task_name`, without importing it)."""
    kind, _, arg = str(spec).partition(":")
    if kind != "imagefolder" or not arg:
        return kind
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", Path(arg).name).strip("_").lower()
    return stem or "imagefolder"


def read_result_rows(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The JSON objects of a `result.json`, one per line, and how many lines were skipped.

    A truncated or garbled line (a study killed mid-write, or still writing) is skipped, not
    fatal; a missing file reads as no rows.
    """
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return [], 0
    rows: list[dict[str, Any]] = []
    skipped = 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
        else:
            skipped += 1
    return rows, skipped


def flatten_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Trial config -> flat scalar columns (`loss_weights` -> `loss_weights/<task>`)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key == "loss_weights":
            for task, weight in (value or {}).items() if isinstance(value, Mapping) else ():
                out[f"loss_weights/{task}"] = weight
        elif key == "tasks":
            tasks = [value] if isinstance(value, str) else list(value or [])
            out["tasks"] = ",".join(task_name(t) for t in tasks)
        elif isinstance(value, (dict, list, tuple)):
            out[key] = json.dumps(value)
        else:
            out[key] = value
    return out


def asha_rungs(
    max_epochs: int,
    grace_period: int | None = None,
    reduction_factor: int = 3,
) -> list[int]:
    """Epochs at which the study's ASHA scheduler may stop a trial (as `study.runner` sets it)."""
    grace = grace_period if grace_period is not None else max(1, max_epochs // 4)
    if max_epochs <= grace:
        return [grace]
    count = int(np.log(max_epochs / grace) / np.log(reduction_factor) + 1)
    return [grace * reduction_factor**k for k in range(count)]


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
    if errored:
        return "errored"
    if epochs <= 0:
        return "running" if running else "no-results"
    if diverged:
        return "diverged"
    if max_epochs is None or (isinstance(max_epochs, float) and math.isnan(max_epochs)):
        return "finished"  # unknown budget: nothing says it stopped early
    if epochs >= max_epochs:
        return "finished"
    if running:
        return "running"
    if scheduler == "asha" and epochs in asha_rungs(int(max_epochs)):
        return "early-stopped"
    return "incomplete"


def seed_mask(frame: pd.DataFrame, point: Mapping[str, Any]) -> pd.Series:
    """Rows whose config equals `point` (floats compared with a relative tolerance)."""
    mask = pd.Series(True, index=frame.index)
    for key, want in point.items():
        if key not in frame:
            return pd.Series(False, index=frame.index)
        column = frame[key]
        if isinstance(want, (int, float)) and not isinstance(want, bool):
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
            mask &= np.isclose(values, float(want), rtol=1e-9, atol=1e-12)
        else:
            mask &= column.astype(object) == want
    return mask


def study_is_running(path: Path) -> bool:
    """True when a `study.run` process holds the study's lock now (Linux: /proc/locks).

    Reads the kernel's lock table instead of trying the lock, so it never disturbs a driver.
    """
    lock = path / LOCK_FILE
    try:
        info = lock.stat()
        table = Path("/proc/locks").read_text()
    except OSError:
        return False
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    return any(
        "FLOCK" in line and line.split()[-3] == device
        for line in table.splitlines()
        if len(line.split()) >= 4
    )


# ---------------------------------------------------------------------------------------------
# loading


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AnalysisError(f"{path} is unreadable ({what}): {exc}") from None


def _experiment_dirs(path: Path) -> list[Path]:
    found = [path / s for s in KNOWN_SPACES if (path / s).is_dir()]
    for sub in sorted(path.iterdir()):
        if sub in found or not sub.is_dir() or sub.name.startswith((".", "_")):
            continue
        if any(child.is_dir() and child.name.startswith("trial_") for child in sub.iterdir()):
            found.append(sub)  # e.g. a space added later
    return found


def _trial_dirs(space_dir: Path) -> list[Path]:
    return sorted(
        p
        for p in space_dir.iterdir()
        if p.is_dir() and (p.name.startswith("trial_") or (p / PARAMS_FILE).is_file())
    )


def _epoch_record(space: str, trial_id: str, row: Mapping[str, Any]) -> dict[str, Any] | None:
    epoch = row.get("epoch", row.get("training_iteration"))
    if not isinstance(epoch, (int, float)) or isinstance(epoch, bool):
        return None
    rec = {
        k: v
        for k, v in row.items()
        if k in EPOCH_FIELDS or ("/" in k and not k.startswith("confusion/"))
    }
    rec["space"], rec["trial_id"], rec["epoch"] = space, trial_id, int(epoch)
    return rec


def _load_space(
    path: Path, space_dir: Path, notes: list[str]
) -> tuple[list[dict], list[dict], dict]:
    """(trial records, epoch records, confusions) of one experiment folder."""
    space = space_dir.name
    trials, epochs, confusions = [], [], {}
    skipped_total = 0
    for trial_dir in _trial_dirs(space_dir):
        trial_id = trial_dir.name.removeprefix("trial_")
        rows, skipped = read_result_rows(trial_dir / RESULT_FILE)
        skipped_total += skipped
        try:
            params = json.loads((trial_dir / PARAMS_FILE).read_text())
        except (OSError, ValueError):
            params = next((r["config"] for r in rows if isinstance(r.get("config"), dict)), {})
            notes.append(f"{space}/{trial_dir.name}: no readable params.json")
        record = flatten_params(params if isinstance(params, dict) else {})
        record.update(space=space, trial_id=trial_id)
        record["errored"] = any((trial_dir / f).exists() for f in ERROR_FILES)
        try:
            record["created"] = (trial_dir / PARAMS_FILE).stat().st_mtime
        except OSError:
            record["created"] = trial_dir.stat().st_mtime
        trials.append(record)
        for row in rows:
            rec = _epoch_record(space, trial_id, row)
            if rec is None:
                continue
            epochs.append(rec)
            matrices = {
                k[len("confusion/") :]: v for k, v in row.items() if k.startswith("confusion/")
            }
            if matrices:
                confusions[(space, trial_id, rec["epoch"])] = matrices
    if skipped_total:
        notes.append(f"{space}: skipped {skipped_total} unreadable result line(s) (truncated?)")
    return trials, epochs, confusions


def _epochs_frame(records: list[dict]) -> pd.DataFrame:
    base = ["space", "trial_id", "epoch", "score", "lr", "diverged", "done"]
    if not records:
        return pd.DataFrame(columns=base)
    frame = pd.DataFrame.from_records(records)
    for col in base:
        if col not in frame:
            frame[col] = np.nan
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce").astype(float)
    for col in ("diverged", "done"):
        frame[col] = frame[col].astype("boolean").fillna(False).astype(bool)
    # a resumed trial may repeat an epoch: the later report wins
    frame = frame.drop_duplicates(["space", "trial_id", "epoch"], keep="last")
    frame = frame.sort_values(["space", "trial_id", "epoch"], kind="stable")
    first = base + sorted(c for c in frame.columns if c not in base and "/" in c)
    rest = [c for c in frame.columns if c not in first]
    return frame[first + rest].reset_index(drop=True)


def _per_trial_stats(epochs: pd.DataFrame, tasks: Sequence[str]) -> pd.DataFrame:
    """Per trial: epochs, best/last score, best epoch, per-task accuracies (vectorized)."""
    keys = ["space", "trial_id"]
    if epochs.empty:
        return pd.DataFrame(columns=keys + ["epochs"])
    acc = [f"acc/{t}" for t in tasks if f"acc/{t}" in epochs]
    grouped = epochs.groupby(keys, sort=False)
    stats = grouped.agg(
        epochs=("epoch", "size"),
        last_epoch=("epoch", "max"),
        best_score=("score", "max"),
        last_score=("score", "last"),
        diverged=("diverged", "last"),
        done=("done", "last"),
    )
    ranked = epochs.assign(_s=epochs["score"].fillna(-np.inf))
    best_rows = epochs.loc[ranked.groupby(keys, sort=False)["_s"].idxmax()]
    at_best = best_rows.set_index(keys)[["epoch", *acc]]
    at_best.columns = ["best_epoch"] + [f"acc_at_best/{c[4:]}" for c in acc]
    parts = [stats, at_best]
    if acc:
        best = grouped[acc].max()
        best.columns = [f"best_acc/{c[4:]}" for c in acc]
        last = grouped[acc].last()
        last.columns = [f"last_acc/{c[4:]}" for c in acc]
        parts += [best, last]
    if "time_total_s" in epochs:
        parts.append(grouped["time_total_s"].max().rename("time_total_s").to_frame())
    if "timestamp" in epochs and "time_this_iter_s" in epochs:
        start = pd.to_numeric(epochs["timestamp"], errors="coerce") - pd.to_numeric(
            epochs["time_this_iter_s"], errors="coerce"
        )
        parts.append(
            start.groupby([epochs["space"], epochs["trial_id"]]).min().rename("start").to_frame()
        )
    out = pd.concat(parts, axis=1).reset_index()
    out["best_epoch"] = out["best_epoch"].astype("Int64")
    return out


def _load_tasks(path: Path, notes: list[str]) -> dict[str, dict[str, Any]]:
    file = path / TASKS_FILE
    if not file.is_file():
        notes.append(f"no {TASKS_FILE}: class names shown as numbers")
        return {}
    try:
        tasks = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        notes.append(f"{TASKS_FILE} unreadable ({exc}): class names shown as numbers")
        return {}
    return tasks if isinstance(tasks, dict) else {}


def load_optuna(path: Path) -> tuple[pd.DataFrame, dict[str, Any], list[str]]:
    """Optuna trials of `optuna.db` (one study per space) as a frame, in-memory copies of the
    studies (for importances), and notes; a missing or unreadable database is a note."""
    db = path / OPTUNA_DB
    empty = pd.DataFrame(columns=["space", "number", "state", "value", "seed"])
    if not db.is_file():  # never let sqlite create one
        return empty, {}, [f"no {OPTUNA_DB}: optimization history from results, no importances"]
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" lines
    records, studies = [], {}
    try:
        storage = optuna.storages.RDBStorage(f"sqlite:///{db.resolve()}")
        for name in optuna.get_all_study_names(storage):
            loaded = optuna.load_study(study_name=name, storage=storage)
            trials = loaded.get_trials(deepcopy=False)
            copy = optuna.create_study(directions=loaded.directions)  # in memory
            copy.add_trials(trials)
            studies[name] = copy
            for t in trials:
                rec = {
                    "space": name,
                    "number": t.number,
                    "state": t.state.name,
                    "value": t.value if t.values and len(t.values) == 1 else np.nan,
                    "seed": "fixed_params" in t.system_attrs,
                    "datetime_start": t.datetime_start,
                    "datetime_complete": t.datetime_complete,
                }
                rec.update({f"params_{k}": v for k, v in t.params.items()})
                records.append(rec)
        storage.remove_session()
        storage.engine.dispose()  # release the file: the study may be resumed meanwhile
    except Exception as exc:  # any database problem is a note, not a crash
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return empty, {}, [f"{OPTUNA_DB} unreadable ({first})"]
    finally:
        optuna.logging.set_verbosity(verbosity)
    frame = pd.DataFrame.from_records(records) if records else empty
    return frame, studies, []


def _canon(value: Any) -> str:
    """A parameter value as a comparable key (0 == 0.0; floats by their exact repr)."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return repr(float(value))
    return str(value)


def _match_optuna(trials: pd.DataFrame, optuna_trials: pd.DataFrame) -> pd.DataFrame:
    """Attach `optuna_number` to Ray trials whose config equals an Optuna trial's params
    (Ray's OptunaSearch records no Ray trial id in Optuna, so the config is the link)."""
    trials = trials.copy()
    trials["optuna_number"] = pd.Series(pd.NA, index=trials.index, dtype="Int64")
    if optuna_trials.empty or trials.empty:
        return trials
    param_cols = [c for c in optuna_trials if c.startswith("params_")]
    ray = trials.sort_values("created", kind="stable")
    ray_records = list(zip(ray.index, ray["space"], ray.to_dict("records"), strict=True))
    indexes: dict[tuple[str, tuple[str, ...]], dict[tuple[str, ...], list[int]]] = {}
    numbers: dict[int, int] = {}
    ordered = optuna_trials.sort_values(["space", "number"], kind="stable")
    for rec in ordered.to_dict("records"):
        params = {c[7:]: rec[c] for c in param_cols if not _isna(rec[c])}
        if not params:
            continue
        keys = tuple(sorted(params))
        index = indexes.get((rec["space"], keys))
        if index is None:  # Ray trials of this space keyed by these parameters
            index = indexes[(rec["space"], keys)] = {}
            for i, space, row in ray_records:
                if space == rec["space"]:
                    index.setdefault(tuple(_canon(row.get(k)) for k in keys), []).append(i)
        candidates = index.get(tuple(_canon(params[k]) for k in keys), [])
        while candidates and candidates[0] in numbers:
            candidates.pop(0)
        if candidates:
            numbers[candidates.pop(0)] = int(rec["number"])
    if numbers:
        trials.loc[list(numbers), "optuna_number"] = list(numbers.values())
    return trials


def _isna(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def load_study(path: str | os.PathLike[str]) -> Study:
    """Read a study directory; raises `AnalysisError` (one line) when it cannot be analysed."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise AnalysisError(f"{path}: no such study directory")
    if not (path / SETTINGS_FILE).is_file():
        raise AnalysisError(f"{path} is not a study: no {SETTINGS_FILE} in it")
    settings = _read_json(path / SETTINGS_FILE, "study settings")
    if not isinstance(settings, dict):
        raise AnalysisError(f"{path / SETTINGS_FILE} is not a JSON object")
    experiments = _experiment_dirs(path)
    if not experiments:
        raise AnalysisError(
            f"{path} is not a study: no experiment folders ({', '.join(KNOWN_SPACES)})"
        )
    notes: list[str] = []
    tasks = _load_tasks(path, notes)
    trial_recs, epoch_recs, confusions = [], [], {}
    for folder in experiments:
        t, e, c = _load_space(path, folder, notes)
        trial_recs += t
        epoch_recs += e
        confusions.update(c)
    if not trial_recs:
        raise AnalysisError(f"empty study {path}: no trial folders in its experiments yet")
    epochs = _epochs_frame(epoch_recs)
    trials = pd.DataFrame.from_records(trial_recs)
    if epochs.empty and not trials["errored"].all():
        raise AnalysisError(f"empty study {path}: no trial has reported an epoch yet")

    space_tasks = _space_tasks(experiments, trials, epochs, tasks)
    all_tasks = list(dict.fromkeys(t for ts in space_tasks.values() for t in ts))
    trials = trials.merge(_per_trial_stats(epochs, all_tasks), on=["space", "trial_id"], how="left")
    for col in ("best_score", "best_epoch", "last_score", "last_epoch", "diverged", "done"):
        if col not in trials:
            trials[col] = np.nan
    trials["epochs"] = trials["epochs"].fillna(0).astype(int)
    for col in ("diverged", "done"):
        trials[col] = trials[col].astype("boolean").fillna(False).astype(bool)
    running = study_is_running(path)
    max_epochs_default = settings.get("max_epochs")
    if "max_epochs" not in trials:
        trials["max_epochs"] = max_epochs_default
    trials["max_epochs"] = pd.to_numeric(trials["max_epochs"], errors="coerce").fillna(
        max_epochs_default if max_epochs_default is not None else np.nan
    )
    scheduler = settings.get("scheduler", "asha")
    trials["stop_reason"] = [
        stop_reason(
            errored=e, epochs=n, max_epochs=m, diverged=d, running=running, scheduler=scheduler
        )
        for e, n, m, d in zip(
            trials["errored"],
            trials["epochs"],
            trials["max_epochs"],
            trials["diverged"],
            strict=True,
        )
    ]
    trials["n_tasks"] = trials["space"].map(lambda s: len(space_tasks.get(s, ())))
    if "scheme" not in trials:
        trials["scheme"] = np.nan
    trials["scheme"] = (
        trials["scheme"].astype(object).where(trials["n_tasks"] > 1, SINGLE_SCHEME).fillna("joint")
    )  # TrialConfig's default scheme

    optuna_trials, studies, optuna_notes = load_optuna(path)
    notes += optuna_notes
    trials = _match_optuna(trials, optuna_trials)
    if not optuna_trials.empty:
        by_number = trials.dropna(subset=["optuna_number"]).set_index(["space", "optuna_number"])
        optuna_trials["trial_id"] = [
            by_number["trial_id"].get((s, n), None)
            for s, n in zip(optuna_trials["space"], optuna_trials["number"], strict=True)
        ]
    if "start" not in trials:
        trials["start"] = np.nan
    trials["_start"] = trials["start"].fillna(trials["created"])
    trials = trials.sort_values(
        ["space", "optuna_number", "_start", "trial_id"], na_position="last", kind="stable"
    ).drop(columns="_start")
    trials["order"] = trials.groupby("space").cumcount()
    trials["is_seed"] = _seed_flags(trials, space_tasks)
    order = {s: i for i, s in enumerate(space_tasks)}
    trials = trials.sort_values(
        ["space", "order"], key=lambda c: c.map(order) if c.name == "space" else c, kind="stable"
    ).reset_index(drop=True)
    trials = trials[_trial_columns(trials)]
    return Study(
        path=path,
        settings=settings,
        tasks=tasks,
        space_tasks=space_tasks,
        trials=trials,
        epochs=epochs,
        optuna_trials=optuna_trials,
        notes=notes,
        running=running,
        confusions=confusions,
        optuna_studies=studies,
    )


def _space_tasks(
    experiments: list[Path], trials: pd.DataFrame, epochs: pd.DataFrame, tasks: Mapping[str, Any]
) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for folder in experiments:
        space = folder.name
        listed = trials.loc[trials["space"] == space, "tasks"] if "tasks" in trials else []
        names = next((str(v).split(",") for v in listed if isinstance(v, str) and v), None)
        if names is None:
            rows = epochs[epochs["space"] == space]
            names = [c[4:] for c in rows.columns if c.startswith("acc/") and rows[c].notna().any()]
        if not names and space.startswith("single-"):
            names = [space.removeprefix("single-")]
        if not names:
            names = list(tasks)
        out[space] = tuple(names)
    return out


def _seed_flags(trials: pd.DataFrame, space_tasks: Mapping[str, Sequence[str]]) -> pd.Series:
    """The seed's configuration: the first trial of each space whose config matches it."""
    flags = pd.Series(False, index=trials.index)
    for space, names in space_tasks.items():
        rows = trials[trials["space"] == space]
        matches = rows[seed_mask(rows, SEED_MULTI if len(names) > 1 else SEED_SINGLE)]
        if len(matches):
            flags[matches.index[0]] = True  # rows are in trial order
    return flags


def _trial_columns(trials: pd.DataFrame) -> list[str]:
    lead = [
        "space",
        "trial_id",
        "order",
        "optuna_number",
        "is_seed",
        "stop_reason",
        "epochs",
        "max_epochs",
        "best_score",
        "best_epoch",
        "last_score",
    ]
    config = [
        "tasks",
        "optimizer",
        "lr",
        "weight_decay",
        "lr_schedule",
        "scheme",
        "coin_p",
        "temperature",
    ]
    metric = sorted(c for c in trials if c.split("/")[0] in ("acc_at_best", "best_acc", "last_acc"))
    head = [c for c in lead + config if c in trials] + metric
    return head + [c for c in trials.columns if c not in head]

"""Load a study directory into pandas DataFrames: one row per trial, one row per trial-epoch.

A study directory (written by `python -m study.run`) holds the settings, `tasks.json`,
`optuna.db` and one Ray Tune experiment folder per space (`single-<task>/`, `multi/`), each with
`trial_<id>/params.json` and `trial_<id>/result.json` (one JSON object per line per epoch); the
file names are `names.py`'s. Only these files are read, relative to the folder given, so a
copied or moved study loads the same; absolute paths stored inside it are never used.

`load_study(path)` returns a `Study`: the settings, the tasks, a `trials` frame, an `epochs`
frame, the Optuna trials of `optuna.db` (when there is one, see `optuna_link`), the
confusion matrices of every reported epoch, and the confirmation runs (`confirm-<space>/`,
read by `confirmation`; a study written before them loads with none). Why a trial stopped is
`status`'s rule, which trial is a space's baseline `baseline`'s. Input that is not a study
raises `AnalysisError` with one line that says why.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.baseline import baseline_flags
from analysis.confirmation import load_confirmation
from analysis.files import flatten_params, metric_task
from analysis.optuna_link import PARAM_COLUMN, link_trials, load_optuna
from analysis.status import stop_reasons, study_is_running
from errors import AnalysisError
from names import (
    ACC,
    BUDGET_KEY,
    CONFIRM_PREFIX,
    CONFUSION,
    ERROR_FILES,
    EVAL_SPLIT,
    LEGACY_BUDGET,
    MULTI_SPACE,
    PARAMS_FILE,
    RESTARTED,
    RESULT_FILE,
    SCORE,
    SETTINGS_FILE,
    SINGLE_PREFIX,
    SPLIT_SEED_KEY,
    TASKS_FILE,
    TRIAL_PREFIX,
    is_single_space,
    task_metric,
    task_name,
)
from studyfiles.ray_files import read_result_rows

EPOCH_FIELDS = (
    "epoch",
    SCORE,
    EVAL_SPLIT,
    "lr",
    "diverged",
    "done",
    "timestamp",
    "time_this_iter_s",
    "time_total_s",
    RESTARTED,
)
CONFUSION_PREFIX = task_metric(CONFUSION, "")  # prefix of the reported confusion matrices
SINGLE_SCHEME = "single-task"  # the scheme shown for trials of a single-task space
DEFAULT_SCHEME = "joint"  # TrialConfig's default scheme, for multi-task configs without one


@dataclasses.dataclass
class Study:
    """A loaded study directory.

    `trials`: one row per trial (space, trial_id, order, optuna_number, is_baseline, config
    columns, epochs, stop_reason, best_score, best_epoch, last_score, and per task
    `acc_at_best/<task>` (at the best-score epoch), `best_acc/<task>` (that task's own maximum)
    and `last_acc/<task>`).
    `epochs`: one row per trial-epoch (space, trial_id, epoch, score, lr, diverged, per-task
    `acc/`, `loss/`, `train_loss/`, `train_acc/`, `steps/`, `step_share/` and time columns).
    `optuna_trials`: one row per Optuna trial (space, number, state, value, is_baseline,
    ray_trial_id, trial_id (the linked folder's; missing where none), params_*).
    `runs`: one row per confirmation run (`confirm-<space>/`; see `confirmation.Confirmation`):
    space, label, seed, source_trial, trial_id, status, per task `test_acc/`, `steps/`,
    `images/`, and `test_score`; empty for a study without confirmation runs.
    `plan`: the confirmation stage's planned runs (`confirmation.json`), {} when none.
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
    runs: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    run_confusions: dict[tuple[str, str], dict[str, list[list[int]]]] = dataclasses.field(
        default_factory=dict
    )
    plan: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    # space -> task name -> the task specs its trials' configs name (one, unless damaged)
    space_specs: dict[str, dict[str, tuple[str, ...]]] = dataclasses.field(default_factory=dict)
    # how commands printed for the study name it: its URI and flags when `path` is a local cache
    shown: str = ""
    # the keys of the trials' configs (params.json, flattened), in the order they were first seen
    config_keys: tuple[str, ...] = ()

    @property
    def shown_name(self) -> str:
        return self.shown or str(self.path)

    @property
    def spaces(self) -> list[str]:
        """Spaces with an experiment folder: single-task ones (in the tasks' order), the
        multi-task one, then any other."""
        return list(self.space_tasks)

    def searched_keys(self, space: str) -> list[str]:
        """The keys the search of `space` chose: see `searched_keys`."""
        return searched_keys(self.optuna_trials, self.trials, self.config_keys, space)

    def log_keys(self, space: str) -> set[str]:
        """The searched keys of `space` that its search drew on a log scale (their Optuna
        distributions say so); none without an Optuna record."""
        found = self.optuna_studies.get(space)
        trials = found.get_trials(deepcopy=False) if found is not None else []
        return {k for t in trials for k, d in t.distributions.items() if getattr(d, "log", False)}

    @property
    def synthetic(self) -> bool:
        """True when the study trained on synthetic stand-in data (numbers mean nothing)."""
        if self.settings.get("data") == "synthetic":
            return True
        return any(bool(t.get("synthetic")) for t in self.tasks.values())

    @property
    def split_recorded(self) -> bool:
        """False for a study written before the three-way split: its search was scored on the
        dataset's held-out split, the same data it reports (optimistic, and not a test)."""
        return bool(self.tasks) and all(SPLIT_SEED_KEY in t for t in self.tasks.values())

    @property
    def task_names(self) -> list[str]:
        """Every task of the study, in first-seen order (multi space's order first)."""
        found: list[str] = []
        for space in sorted(self.space_tasks, key=lambda s: s != MULTI_SPACE):
            found += [t for t in self.space_tasks[space] if t not in found]
        found += [t for t in self.tasks if t not in found]
        return found

    def source(self, task: str) -> str | None:
        """A task's recorded source: `<spec> (files <fingerprint>)` from tasks.json, the spec
        alone for a study written before fingerprints, None when tasks.json lacks it."""
        entry = self.tasks.get(task) or {}
        spec, fingerprint = entry.get("spec"), entry.get("fingerprint")
        if not spec:
            return None
        return f"{spec} (files {fingerprint})" if fingerprint else str(spec)

    def source_problem(self, task: str, spaces: Sequence[str]) -> str | None:
        """Why `task`'s results in `spaces` must not be compared, or None when they may be.

        They may when every space trained the same source under that name: one spec in all
        their configs, and the spec tasks.json records for the task (whose fingerprint then
        identifies the files; a resume refuses data that changed). A study written before
        task identity was recorded has configs but no fingerprints: specs alone decide."""
        seen = {s: self.space_specs.get(s, {}).get(task, ()) for s in spaces}
        for space, specs in seen.items():
            if len(specs) > 1:
                return f"{space} trained {len(specs)} datasets named {task}: {', '.join(specs)}"
        found = {s: specs[0] for s, specs in seen.items() if specs}
        if len(set(found.values())) > 1:
            what = "; ".join(f"{s} trained {spec!r}" for s, spec in found.items())
            return f"two datasets are named {task}: {what}"
        recorded = (self.tasks.get(task) or {}).get("spec")
        for space, spec in found.items():
            if recorded and spec != recorded:
                return f"{space} trained {spec!r}, but {TASKS_FILE} records {recorded!r} for {task}"
        return None

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

    def test_confusion(self, space: str, trial_id: str, task: str) -> np.ndarray | None:
        """A confirmation run's test counts (rows = true class, columns = predicted), or None."""
        matrix = self.run_confusions.get((space, str(trial_id)), {}).get(task)
        return None if matrix is None else np.asarray(matrix, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# reading the files


def _read_settings(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise AnalysisError(f"{path}: no such study directory")
    file = path / SETTINGS_FILE
    if not file.is_file():
        raise AnalysisError(f"{path} is not a study: no {SETTINGS_FILE} in it")
    try:
        settings = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise AnalysisError(f"{file} is unreadable (study settings): {exc}") from None
    if not isinstance(settings, dict):
        raise AnalysisError(f"{file} is not a JSON object")
    return settings


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


def _space_rank(space: str, task_order: Sequence[str]) -> tuple[int, int, str]:
    """Single-task spaces in the tasks' order, then the multi-task space, then the rest."""
    if is_single_space(space):
        task = space.removeprefix(SINGLE_PREFIX)
        return 0, task_order.index(task) if task in task_order else len(task_order), space
    return (1 if space == MULTI_SPACE else 2), 0, space


def _experiment_dirs(path: Path, task_order: Sequence[str]) -> list[Path]:
    """Folders of spaces (by name) and any other folder holding trial folders, except the
    confirmation experiments (`confirm-<space>`, see `confirmation`)."""
    found = []
    for sub in path.iterdir():
        if not sub.is_dir() or sub.name.startswith((".", "_", CONFIRM_PREFIX)):
            continue
        if (is_single_space(sub.name) or sub.name == MULTI_SPACE) or any(
            child.is_dir() and child.name.startswith(TRIAL_PREFIX) for child in sub.iterdir()
        ):
            found.append(sub)
    return sorted(found, key=lambda p: _space_rank(p.name, task_order))


def _trial_dirs(space_dir: Path) -> list[Path]:
    return sorted(
        p
        for p in space_dir.iterdir()
        if p.is_dir() and (p.name.startswith(TRIAL_PREFIX) or (p / PARAMS_FILE).is_file())
    )


def _epoch_record(space: str, trial_id: str, row: Mapping[str, Any]) -> dict[str, Any] | None:
    epoch = row.get("epoch", row.get("training_iteration"))
    if not isinstance(epoch, (int, float)) or isinstance(epoch, bool):
        return None
    rec = {
        k: v
        for k, v in row.items()
        if k in EPOCH_FIELDS or ("/" in k and not k.startswith(CONFUSION_PREFIX))
    }
    rec["space"], rec["trial_id"], rec["epoch"] = space, trial_id, int(epoch)
    return rec


def _trial_record(trial_dir: Path, rows: list[dict], notes: list[str], raw: _Raw) -> dict[str, Any]:
    """A trial's flattened config (params.json, else the config of its results) and files;
    the task specs it names are added to `raw.specs` (space -> task name -> specs), its config
    keys to `raw.config_keys`."""
    space = trial_dir.parent.name
    try:
        params = json.loads((trial_dir / PARAMS_FILE).read_text())
    except (OSError, ValueError):
        params = next((r["config"] for r in rows if isinstance(r.get("config"), dict)), {})
        notes.append(f"{space}/{trial_dir.name}: no readable {PARAMS_FILE}")
    params = params if isinstance(params, dict) else {}
    specs = raw.specs.setdefault(space, {})
    tasks = params.get("tasks")
    for spec in [tasks] if isinstance(tasks, str) else tasks or []:
        specs.setdefault(task_name(spec), set()).add(str(spec))
    record = flatten_params(params)
    raw.config_keys.update(dict.fromkeys(record))
    record.update(space=space, trial_id=trial_dir.name.removeprefix(TRIAL_PREFIX))
    record["errored"] = any((trial_dir / f).exists() for f in ERROR_FILES)
    try:
        record["created"] = (trial_dir / PARAMS_FILE).stat().st_mtime
    except OSError:
        record["created"] = trial_dir.stat().st_mtime
    return record


def searched_keys(
    optuna_trials: pd.DataFrame, trials: pd.DataFrame, config_keys: Sequence[str], space: str
) -> list[str]:
    """The keys the search of `space` chose, from the study's own record: the parameters of
    its Optuna trials (their distributions' names, in the order the space suggests them; a
    per-task one as `<name>/<task>`). Without an Optuna record of the space (a study whose
    database is a server, or none), the config keys whose values differ between its trials."""
    if "space" in optuna_trials and (optuna_trials["space"] == space).any():
        part = optuna_trials[optuna_trials["space"] == space]
        params = [c for c in part if c.startswith(PARAM_COLUMN) and part[c].notna().any()]
        return [c.removeprefix(PARAM_COLUMN) for c in params]
    part = trials[trials["space"] == space] if "space" in trials else trials
    return [k for k in config_keys if k in part and part[k].astype(str).nunique() > 1]


@dataclasses.dataclass
class _Raw:
    """Records of every trial folder, before they become frames."""

    trials: list[dict] = dataclasses.field(default_factory=list)
    epochs: list[dict] = dataclasses.field(default_factory=list)
    confusions: dict = dataclasses.field(default_factory=dict)
    specs: dict[str, dict[str, set[str]]] = dataclasses.field(default_factory=dict)
    config_keys: dict[str, None] = dataclasses.field(default_factory=dict)  # in order seen


def _load_space(space_dir: Path, raw: _Raw, notes: list[str]) -> None:
    """Add the trials, epochs and confusions of one experiment folder to `raw`."""
    skipped_total = 0
    for trial_dir in _trial_dirs(space_dir):
        rows, skipped = read_result_rows(trial_dir / RESULT_FILE)
        skipped_total += skipped
        record = _trial_record(trial_dir, rows, notes, raw)
        raw.trials.append(record)
        for row in rows:
            rec = _epoch_record(record["space"], record["trial_id"], row)
            if rec is None:
                continue
            raw.epochs.append(rec)
            matrices = {
                k[len(CONFUSION_PREFIX) :]: v
                for k, v in row.items()
                if k.startswith(CONFUSION_PREFIX)
            }
            if matrices:
                raw.confusions[(record["space"], record["trial_id"], rec["epoch"])] = matrices
    if skipped_total:
        notes.append(
            f"{space_dir.name}: skipped {skipped_total} unreadable result line(s) (truncated?)"
        )


# ---------------------------------------------------------------------------------------------
# frames


def _epochs_frame(records: list[dict]) -> pd.DataFrame:
    base = ["space", "trial_id", "epoch", SCORE, "lr", "diverged", "done"]
    if not records:
        return pd.DataFrame(columns=base)
    frame = pd.DataFrame.from_records(records)
    for col in base:
        if col not in frame:
            frame[col] = np.nan
    frame[SCORE] = pd.to_numeric(frame[SCORE], errors="coerce").astype(float)
    for col in ("diverged", "done"):
        frame[col] = frame[col].astype("boolean").fillna(False).astype(bool)
    # a resumed trial may repeat an epoch: the later report wins
    frame = frame.drop_duplicates(["space", "trial_id", "epoch"], keep="last")
    frame = frame.sort_values(["space", "trial_id", "epoch"], kind="stable")
    first = base + sorted(c for c in frame.columns if c not in base and "/" in c)
    rest = [c for c in frame.columns if c not in first]
    return frame[first + rest].reset_index(drop=True)


def _per_task(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Rename `acc/<task>` columns to `<prefix>/<task>`."""
    return frame.rename(columns=lambda c: f"{prefix}/{metric_task(c, 'acc')}")


def _per_trial_stats(epochs: pd.DataFrame, tasks: Sequence[str]) -> pd.DataFrame:
    """Per trial: epochs, best/last score, best epoch, per-task accuracies (vectorized)."""
    keys = ["space", "trial_id"]
    if epochs.empty:
        return pd.DataFrame(columns=keys + ["epochs"])
    acc = [task_metric(ACC, t) for t in tasks if task_metric(ACC, t) in epochs]
    grouped = epochs.groupby(keys, sort=False)
    stats = grouped.agg(
        epochs=("epoch", "size"),
        last_epoch=("epoch", "max"),
        best_score=(SCORE, "max"),
        last_score=(SCORE, "last"),
        diverged=("diverged", "last"),
        done=("done", "last"),
    )
    # the best epoch: the highest score, the latest one on ties, as the checkpoint Ray keeps
    ranked = epochs.assign(_s=epochs[SCORE].fillna(-np.inf)).iloc[::-1]
    best_rows = epochs.loc[ranked.groupby(keys, sort=False)["_s"].idxmax()].set_index(keys)
    parts = [
        stats,
        best_rows[["epoch"]].rename(columns={"epoch": "best_epoch"}),
        _per_task(best_rows[acc], "acc_at_best"),
    ]
    if acc:
        parts += [
            _per_task(grouped[acc].max(), "best_acc"),
            _per_task(grouped[acc].last(), "last_acc"),
        ]
    if RESTARTED in epochs:  # it found no readable checkpoint and started over from epoch 0
        flag = epochs[RESTARTED].astype("boolean").fillna(False).astype(bool)
        parts.append(flag.groupby([epochs["space"], epochs["trial_id"]]).any().to_frame())
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


def _space_tasks(
    experiments: list[Path], trials: pd.DataFrame, epochs: pd.DataFrame, tasks: Mapping[str, Any]
) -> dict[str, tuple[str, ...]]:
    """Each space's tasks: from its configs, else its reported accuracies, else its name."""
    out: dict[str, tuple[str, ...]] = {}
    for folder in experiments:
        space = folder.name
        listed = trials.loc[trials["space"] == space, "tasks"] if "tasks" in trials else []
        found = next((str(v).split(",") for v in listed if isinstance(v, str) and v), None)
        if found is None:
            rows = epochs[epochs["space"] == space]
            found = [
                metric_task(c, ACC)
                for c in rows.columns
                if metric_task(c, ACC) is not None and rows[c].notna().any()
            ]
        if not found and is_single_space(space):
            found = [space.removeprefix(SINGLE_PREFIX)]
        out[space] = tuple(found or tasks)
    return out


def _with_stats(
    trials: pd.DataFrame,
    epochs: pd.DataFrame,
    space_tasks: Mapping[str, Sequence[str]],
    settings: Mapping[str, Any],
) -> pd.DataFrame:
    """Trials with their per-trial stats, budget, task count and scheme label."""
    all_tasks = list(dict.fromkeys(t for ts in space_tasks.values() for t in ts))
    trials = trials.merge(_per_trial_stats(epochs, all_tasks), on=["space", "trial_id"], how="left")
    for col in ("best_score", "best_epoch", "last_score", "last_epoch", "diverged", "done"):
        if col not in trials:
            trials[col] = np.nan
    trials["epochs"] = trials["epochs"].fillna(0).astype(int)
    trials[RESTARTED] = trials.get(RESTARTED, pd.Series(False, index=trials.index))
    for col in ("diverged", "done", RESTARTED):
        trials[col] = trials[col].astype("boolean").fillna(False).astype(bool)
    default = settings.get("max_epochs")
    if "max_epochs" not in trials:
        trials["max_epochs"] = default
    trials["max_epochs"] = pd.to_numeric(trials["max_epochs"], errors="coerce").fillna(
        default if default is not None else np.nan
    )
    budget = settings.get(BUDGET_KEY, LEGACY_BUDGET)  # none recorded: written before budgets
    trials[BUDGET_KEY] = trials.get(BUDGET_KEY, pd.Series(np.nan, index=trials.index))
    trials[BUDGET_KEY] = trials[BUDGET_KEY].astype(object).fillna(budget)
    trials["n_tasks"] = trials["space"].map(lambda s: len(space_tasks.get(s, ())))
    if "scheme" not in trials:
        trials["scheme"] = np.nan
    trials["scheme"] = (
        trials["scheme"]
        .astype(object)
        .where(trials["n_tasks"] > 1, SINGLE_SCHEME)
        .fillna(DEFAULT_SCHEME)
    )
    return trials


def _in_trial_order(trials: pd.DataFrame, spaces: Sequence[str]) -> pd.DataFrame:
    """Sorted by space, then Optuna's trial number, start time and id; `order` numbers them."""
    if "start" not in trials:
        trials["start"] = np.nan
    trials["_start"] = trials["start"].fillna(trials["created"])
    trials = trials.sort_values(
        ["space", "optuna_number", "_start", "trial_id"], na_position="last", kind="stable"
    ).drop(columns="_start")
    trials["order"] = trials.groupby("space").cumcount()
    rank = {s: i for i, s in enumerate(spaces)}
    return trials.sort_values(
        ["space", "order"], key=lambda c: c.map(rank) if c.name == "space" else c, kind="stable"
    ).reset_index(drop=True)


def _trial_columns(trials: pd.DataFrame, searched: Sequence[str]) -> list[str]:
    lead = [
        "space",
        "trial_id",
        "order",
        "optuna_number",
        "is_baseline",
        "stop_reason",
        "epochs",
        "max_epochs",
        BUDGET_KEY,
        "best_score",
        "best_epoch",
        "last_score",
    ]
    config = ["tasks", *searched]
    metric = sorted(c for c in trials if c.split("/")[0] in ("acc_at_best", "best_acc", "last_acc"))
    head = [c for c in lead + config if c in trials] + metric
    return head + [c for c in trials.columns if c not in head]


# ---------------------------------------------------------------------------------------------
# the study


def _read_experiments(path: Path, tasks: Mapping[str, Any], notes: list[str]) -> tuple:
    """(experiment folders, raw records) of a study; raises when there is nothing to analyse."""
    experiments = _experiment_dirs(path, list(tasks))
    if not experiments:
        raise AnalysisError(
            f"{path} is not a study: no experiment folders "
            f"({SINGLE_PREFIX}<task>, {MULTI_SPACE} or any with {TRIAL_PREFIX}<id> folders)"
        )
    raw = _Raw()
    for folder in experiments:
        _load_space(folder, raw, notes)
    if not raw.trials:
        raise AnalysisError(f"empty study {path}: no trial folders in its experiments yet")
    return experiments, raw


def load_study(path: str | os.PathLike[str], shown: str = "") -> Study:
    """Read a study directory; raises `AnalysisError` (one line) when it cannot be analysed.
    `shown`: how printed commands name it (a remote study's URI and flags; default its path)."""
    path = Path(path).expanduser()
    settings = _read_settings(path)
    notes: list[str] = []
    tasks = _load_tasks(path, notes)
    experiments, raw = _read_experiments(path, tasks, notes)
    epochs = _epochs_frame(raw.epochs)
    trials = pd.DataFrame.from_records(raw.trials)
    if epochs.empty and not trials["errored"].all():
        raise AnalysisError(f"empty study {path}: no trial has reported an epoch yet")
    space_tasks = _space_tasks(experiments, trials, epochs, tasks)
    trials = _with_stats(trials, epochs, space_tasks, settings)
    running = study_is_running(path)
    trials["stop_reason"] = stop_reasons(trials, settings, running)
    optuna_trials, studies, optuna_notes = load_optuna(path)
    notes += optuna_notes
    trials, optuna_trials = link_trials(trials, optuna_trials)
    trials = _in_trial_order(trials, list(space_tasks))
    trials["is_baseline"] = baseline_flags(trials, optuna_trials, space_tasks)
    confirmation = load_confirmation(path, settings, running, list(space_tasks))
    config_keys = tuple(raw.config_keys)
    searched = {
        k: None for s in space_tasks for k in searched_keys(optuna_trials, trials, config_keys, s)
    }
    return Study(
        path=path,
        settings=settings,
        tasks=tasks,
        space_tasks=space_tasks,
        trials=trials[_trial_columns(trials, list(searched))],
        epochs=epochs,
        optuna_trials=optuna_trials,
        notes=notes + confirmation.notes,
        running=running,
        confusions=raw.confusions,
        optuna_studies=studies,
        runs=confirmation.runs,
        run_confusions=confirmation.confusions,
        plan=confirmation.plan,
        space_specs={
            space: {task: tuple(sorted(found)) for task, found in by_task.items()}
            for space, by_task in raw.specs.items()
        },
        shown=shown,
        config_keys=config_keys,
    )

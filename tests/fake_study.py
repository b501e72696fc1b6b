"""Hand-made study directories in the real on-disk format, with numbers the tests know.

`make_fake_study` writes the settings, tasks.json and trial folders (params.json and one
result.json line per epoch, Ray's keys included) of a small `all` study; `write_trial` and
`write_settings` are its pieces for tests that need other shapes; `write_optuna_db` adds an
optuna.db whose trials carry `ray_trial_id` as `study.search` records it. File names and the
baseline configuration come from `names.py`, as the runner's do. `raw_results` re-reads any
study's trial files without `analysis/`, for tests to re-derive the numbers it shows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from helpers import ROOT

from names import (
    BASELINE_MULTI,
    BASELINE_SINGLE,
    ERROR_FILES,
    MULTI_SPACE,
    OPTUNA_DB,
    PARAMS_FILE,
    RESULT_FILE,
    SETTINGS_FILE,
    TASKS_FILE,
    TRIAL_PREFIX,
    single_space,
    task_metric,
)

C, FR = "cifar10", "fashionrgb"
CLASSES = {C: 10, FR: 5}
VAL_PER_CLASS = {C: 100, FR: 100}
OTHER = {"optimizer": "sgd", "lr": 0.01, "weight_decay": 1e-4, "lr_schedule": "cosine"}
ALL_SPACES = (single_space(C), single_space(FR), MULTI_SPACE)


def confusion_for(task: str, acc: float) -> list[list[int]]:
    """Counts with VAL_PER_CLASS images per class and round(acc * total) on the diagonal (a
    task outside CLASSES: 2 classes of 100)."""
    k, per = CLASSES.get(task, 2), VAL_PER_CLASS.get(task, 100)
    hits = round(acc * k * per)
    m = np.zeros((k, k), dtype=int)
    for i in range(k):
        h = hits // k + (1 if i < hits % k else 0)
        m[i, i] = h
        m[i, (i + 1) % k] = per - h
    return m.tolist()


def _epoch_row(e: int, acc: Mapping[str, float], lr: float, diverged: bool) -> dict[str, Any]:
    """The metrics a trial reports for one epoch."""
    row: dict[str, Any] = {
        "epoch": e,
        "score": 0.0 if diverged else float(np.mean(list(acc.values()))),
        "lr": lr,
        "diverged": diverged,
    }
    for t, a in acc.items():
        values = {"acc": a, "loss": 1 - a, "train_loss": 1 - a, "train_acc": a, "steps": 5}
        values.update(step_share=1 / len(acc), confusion=confusion_for(t, a))
        row.update({task_metric(metric, t): v for metric, v in values.items()})
    return row


def write_trial(
    space_dir: Path,
    trial_id: str,
    params: dict,
    accs: list[dict[str, float]],
    *,
    start: float = 0.0,
    diverged_at: int | None = None,
    errored: bool = False,
    max_epochs: int = 3,
) -> Path:
    """A trial folder: params.json and one result.json line per epoch (`accs[e-1]`)."""
    folder = space_dir / f"{TRIAL_PREFIX}{trial_id}"
    folder.mkdir(parents=True)
    tasks = list(accs[0]) if accs else params["tasks"]
    full = {
        **params,
        "tasks": tasks,
        "max_epochs": max_epochs,
        "data": "synthetic",
        "data_root": "/nowhere",
        "batch_size": 32,
        "seed": 0,
    }
    (folder / PARAMS_FILE).write_text(json.dumps(full))
    lines = []
    for e, acc in enumerate(accs, start=1):
        row = _epoch_row(e, acc, full["lr"], diverged_at is not None and e >= diverged_at)
        row.update(
            {
                "timestamp": int(start + 10 * e),
                "time_this_iter_s": 10.0,
                "time_total_s": 10.0 * e,
                "done": e == max_epochs,
                "training_iteration": e,
                "trial_id": trial_id,
                "config": full,
            }
        )
        lines.append(json.dumps(row))
    (folder / RESULT_FILE).write_text("".join(line + "\n" for line in lines))
    if errored:
        (folder / ERROR_FILES[0]).write_text("Traceback ...\nRuntimeError: boom\n")
    return folder


def write_settings(
    study: Path,
    space: str = "all",
    scheduler: str = "asha",
    max_epochs: int = 3,
    data: str = "synthetic",
) -> None:
    """study.json and tasks.json of a study over CLASSES."""
    study.mkdir(parents=True, exist_ok=True)
    settings = {
        "name": study.name,
        "space": space,
        "storage": "/somewhere/else",
        "num_samples": 6,
        "max_epochs": max_epochs,
        "scheduler": scheduler,
        "seed": 0,
        "data": data,
    }
    (study / SETTINGS_FILE).write_text(json.dumps(settings))
    tasks = {
        t: {
            "classes": [f"{t}-c{i}" for i in range(k)],
            "train_size": 500,
            "val_size": k * VAL_PER_CLASS[t],
            "synthetic": data == "synthetic",
        }
        for t, k in CLASSES.items()
    }
    (study / TASKS_FILE).write_text(json.dumps(tasks))


def _write_multi(d: Path) -> None:
    trial = write_trial
    trial(d, "mE", {**BASELINE_MULTI}, [{C: 0.5, FR: 0.8}, {C: 0.6, FR: 0.85}, {C: 0.55, FR: 0.88}])
    trial(
        d,
        "mF",
        {**OTHER, "scheme": "uniform"},  # per-task maxima at other epochs
        [{C: 0.7, FR: 0.85}, {C: 0.806, FR: 0.92}, {C: 0.85, FR: 0.80}],
        start=10,
    )
    trial(
        d,
        "mG",
        {**OTHER, "lr": 0.02, "scheme": "round_robin"},
        [{C: 0.82, FR: 0.70}, {C: 0.83, FR: 0.71}, {C: 0.84, FR: 0.69}],
        start=20,
    )
    trial(
        d,
        "mH",
        {**OTHER, "lr": 0.03, "scheme": "joint", "loss_weights": {C: 1.0, FR: 2.0}},
        [{C: 0.5, FR: 0.5}],
        start=30,
    )
    coin = {**OTHER, "lr": 0.04, "scheme": "coin", "coin_p": 0.3}
    trial(d, "mI", coin, [{C: 0.6, FR: 0.6}, {C: 0.62, FR: 0.6}], start=40)  # interrupted
    errored = {**OTHER, "lr": 0.05, "scheme": "uniform", "tasks": [C, FR]}
    trial(d, "mJ", errored, [], start=50, errored=True)
    diverging = {**OTHER, "lr": 0.09, "scheme": "uniform"}
    trial(d, "mK", diverging, [{C: 0.3, FR: 0.3}, {C: 0.1, FR: 0.2}], start=60, diverged_at=2)


def make_fake_study(root: Path, spaces: Sequence[str] = ALL_SPACES) -> Path:
    """Known numbers: best single cifar10 0.887, fashionrgb 0.95; best multi trial (by score)
    'mF' at epoch 2: cifar10 0.806, fashionrgb 0.92 -> "80.6% (↓ 8.1)", "92.0% (↓ 3.0)".
    The baseline trials (by their config) are zzbase, fbase and mE; mH is early-stopped, mI
    interrupted, mJ errored, mK diverged."""
    study = root / "fake"
    write_settings(study)
    if single_space(C) in spaces:
        d = study / single_space(C)
        write_trial(d, "zzbase", {**BASELINE_SINGLE}, [{C: 0.5}, {C: 0.7}, {C: 0.65}], start=0)
        write_trial(d, "aaother", {**OTHER}, [{C: 0.6}, {C: 0.887}, {C: 0.88}], start=50)
    if single_space(FR) in spaces:
        d = study / single_space(FR)
        write_trial(d, "fbase", {**BASELINE_SINGLE}, [{FR: 0.8}, {FR: 0.9}, {FR: 0.85}], start=0)
        write_trial(d, "fother", {**OTHER}, [{FR: 0.85}, {FR: 0.93}, {FR: 0.95}], start=50)
    if MULTI_SPACE in spaces:
        _write_multi(study / MULTI_SPACE)
    return study


def make_all_errored_study(root: Path) -> Path:
    """single-cifar10 and multi, two trials each, all errored before an epoch."""
    study = root / "errored"
    write_settings(study)
    for space, tasks in ((single_space(C), [C]), (MULTI_SPACE, [C, FR])):
        for i in range(2):
            params = {**OTHER, "tasks": tasks, "scheme": "uniform"}
            write_trial(study / space, f"{space[:1]}{i}", params, [], errored=True)
    return study


def make_bench_study(root: Path, trials: int, epochs: int) -> Path:
    """The benchmark's generated study (`benchmarks/report_bench.py`, not an installed
    package): random configs in the real format, with an optuna.db that links every trial."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "report_bench", ROOT / "benchmarks" / "report_bench.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_study(root, trials=trials, epochs=epochs)


def write_optuna_db(
    study: Path, space: str, trials: Sequence[Mapping[str, Any]], enqueued: int | None = 0
) -> None:
    """One Optuna study named `space` in the study's optuna.db: trial i has the params and
    value of `trials[i]` and, where given, its `ray_trial_id` user attribute, as
    `study.search.StudySearch` records it; trial `enqueued` carries Optuna's `fixed_params`."""
    import optuna
    from optuna.distributions import CategoricalDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{study / OPTUNA_DB}"
    made = optuna.create_study(study_name=space, storage=storage, direction="maximize")
    choices: dict[str, list] = {}
    for spec in trials:
        for key, value in spec.get("params", {}).items():
            choices[key] = list(dict.fromkeys([*choices.get(key, []), value]))
    for i, spec in enumerate(trials):
        params = dict(spec.get("params", {}))
        user = {"ray_trial_id": spec["ray_trial_id"]} if spec.get("ray_trial_id") else {}
        system = {"fixed_params": params} if i == enqueued else {}
        made.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions={k: CategoricalDistribution(choices[k]) for k in params},
                value=spec.get("value", 0.5),
                user_attrs=user,
                system_attrs=system,
            )
        )


# ---------------------------------------------------------------------------------------------
# reading any study's raw files back, independently of analysis/


def raw_results(study_dir: Path) -> dict[tuple[str, str], dict]:
    """Independent re-read of every trial: params and result rows by (space, trial_id)."""
    out = {}
    for params in study_dir.glob(f"*/{TRIAL_PREFIX}*/{PARAMS_FILE}"):
        trial = params.parent
        rows = [
            json.loads(line)
            for line in (trial / RESULT_FILE).read_text().splitlines()
            if line.strip()
        ]
        out[(trial.parent.name, trial.name.removeprefix(TRIAL_PREFIX))] = {
            "params": json.loads(params.read_text()),
            "rows": rows,
            "errored": (trial / ERROR_FILES[0]).exists(),
        }
    return out


def best_row(rows: list[dict]) -> dict:
    return max(rows, key=lambda r: r["score"])  # first of equal maxima: the earliest epoch

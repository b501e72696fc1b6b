"""Hand-made study directories in the real on-disk format, with numbers the tests know.

`make_fake_study` writes the settings, tasks.json and trial folders (params.json and one
result.json line per epoch, Ray's keys included) of a small `all` study; `write_trial` and
`write_settings` are its pieces for tests that need other shapes; `write_optuna_db` adds an
optuna.db whose trials carry `ray_trial_id` as `study.search` records it. File names and the
baseline configuration come from `names.py`, as the runner's do. `raw_results` re-reads any
study's trial files without `analysis/`, for tests to re-derive the numbers it shows.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from helpers import ROOT
from scipy import stats

from names import (
    BASELINE_MULTI,
    BASELINE_SINGLE,
    CONFIRM_PLAN_FILE,
    CONFIRM_PREFIX,
    ERROR_FILES,
    EVAL_SPLIT,
    MULTI_SPACE,
    OPTUNA_DB,
    PARAMS_FILE,
    RESULT_FILE,
    RUN_KEY,
    SETTINGS_FILE,
    SINGLE_PREFIX,
    SPLIT_SEED,
    SPLIT_SEED_KEY,
    TASKS_FILE,
    TEST,
    TEST_SCORE,
    TRIAL_PREFIX,
    VALIDATION,
    baseline,
    confirm_experiment,
    eval_metric,
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
    eval_split: str | None = None,
) -> Path:
    """A trial folder: params.json and one result.json line per epoch (`accs[e-1]`); rows carry
    `eval_split` when given (studies from before the splits have none)."""
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
        if eval_split:
            row[EVAL_SPLIT] = eval_split
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
            "test_size": k * VAL_PER_CLASS[t],
            SPLIT_SEED_KEY: SPLIT_SEED,
            "synthetic": data == "synthetic",
        }
        for t, k in CLASSES.items()
    }
    (study / TASKS_FILE).write_text(json.dumps(tasks))


def _write_multi(d: Path, trial: Callable[..., Path] = write_trial) -> None:
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


def make_fake_study(
    root: Path, spaces: Sequence[str] = ALL_SPACES, eval_split: str | None = None
) -> Path:
    """Known numbers: best single cifar10 0.887, fashionrgb 0.95; best multi trial (by score)
    'mF' at epoch 2: cifar10 0.806, fashionrgb 0.92 -> "80.6% (↓ 8.1)", "92.0% (↓ 3.0)".
    The baseline trials (by their config) are zzbase, fbase and mE; mH is early-stopped, mI
    interrupted, mJ errored, mK diverged. Without `eval_split` the rows have none, as a study
    written before the validation/test splits (and without confirmation runs)."""
    study = root / "fake"
    write_settings(study)
    trial = functools.partial(write_trial, eval_split=eval_split)
    if single_space(C) in spaces:
        d = study / single_space(C)
        trial(d, "zzbase", {**BASELINE_SINGLE}, [{C: 0.5}, {C: 0.7}, {C: 0.65}], start=0)
        trial(d, "aaother", {**OTHER}, [{C: 0.6}, {C: 0.887}, {C: 0.88}], start=50)
    if single_space(FR) in spaces:
        d = study / single_space(FR)
        trial(d, "fbase", {**BASELINE_SINGLE}, [{FR: 0.8}, {FR: 0.9}, {FR: 0.85}], start=0)
        trial(d, "fother", {**OTHER}, [{FR: 0.85}, {FR: 0.93}, {FR: 0.95}], start=50)
    if MULTI_SPACE in spaces:
        _write_multi(study / MULTI_SPACE, trial)
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
# confirmation runs: confirm-<space>/trial_<id>/ and confirmation.json, as the study writes them

BATCH = 32  # every fake trial's batch_size (write_trial)
TEST_PER_CLASS = VAL_PER_CLASS  # confusion_for's images per class, for test as for validation
# test accuracy of each (space, label), per task, one value per seed (seeds 1, 2, 3, ...)
CONFIRM_ACC: dict[tuple[str, str], dict[str, list[float]]] = {
    (single_space(C), "baseline"): {C: [0.70, 0.72, 0.74]},
    (single_space(C), "tuned-1"): {C: [0.85, 0.87, 0.86]},
    (single_space(C), "tuned-2"): {C: [0.84, 0.83, 0.85]},
    (single_space(FR), "baseline"): {FR: [0.88, 0.90, 0.89]},
    (single_space(FR), "tuned-1"): {FR: [0.93, 0.94, 0.95]},
    (single_space(FR), "tuned-2"): {FR: [0.92, 0.90, 0.91]},
    (MULTI_SPACE, "baseline"): {C: [0.66, 0.70, 0.68], FR: [0.85, 0.86, 0.87]},
    (MULTI_SPACE, "tuned-1"): {C: [0.80, 0.82, 0.81], FR: [0.92, 0.91, 0.93]},
    (MULTI_SPACE, "tuned-2"): {C: [0.78, 0.79, 0.77], FR: [0.90, 0.90, 0.92]},
}
# the search trials the tuned runs retrain: each space's best by score, then the next
TUNED_SOURCES = {
    single_space(C): ["aaother", "zzbase"],
    single_space(FR): ["fother", "fbase"],
    MULTI_SPACE: ["mF", "mG"],
}


def run_steps(space: str, task: str, seed: int, epoch: int) -> int:
    """Optimizer steps a task took part in during one epoch of a fake run: 16 alone, about
    half as many (varying by seed and epoch) beside another task."""
    if space != MULTI_SPACE:
        return 16
    return 6 + (seed * (list(CLASSES).index(task) + 2) + epoch) % 4


def write_run(
    confirm_dir: Path,
    trial_id: str,
    run: Mapping[str, Any],
    accs: Mapping[str, float] | None,
    *,
    epochs: int | None = None,
    errored: bool = False,
    diverged: bool = False,
) -> Path:
    """A confirmation trial folder: params.json `{"run": run}` and one result.json row per
    epoch (`epochs`, default all of max_epochs); the last of max_epochs also has the test
    metrics of `accs` (none when `accs` is None)."""
    folder = confirm_dir / f"{TRIAL_PREFIX}{trial_id}"
    folder.mkdir(parents=True)
    (folder / PARAMS_FILE).write_text(json.dumps({RUN_KEY: run}))
    config = run["config"]
    max_epochs = config["max_epochs"]
    epochs = max_epochs if epochs is None else epochs
    lines = []
    for e in range(1, epochs + 1):
        row: dict[str, Any] = {"epoch": e, EVAL_SPLIT: TEST, "lr": config["lr"]}
        row["diverged"] = diverged and e == epochs
        for t in config["tasks"]:
            row[task_metric("steps", t)] = run_steps(run["space"], t, run["seed"], e)
            row[task_metric("train_loss", t)] = 1.0 / e
        if e == max_epochs and accs is not None:
            for t, a in accs.items():
                row[eval_metric("acc", t, TEST)] = a
                row[eval_metric("loss", t, TEST)] = 1 - a
                row[eval_metric("confusion", t, TEST)] = confusion_for(t, a)
            row[TEST_SCORE] = float(np.mean(list(accs.values())))
        row.update(training_iteration=e, trial_id=trial_id, done=e == max_epochs)
        lines.append(json.dumps(row))
    (folder / RESULT_FILE).write_text("".join(line + "\n" for line in lines))
    if errored:
        (folder / ERROR_FILES[0]).write_text("Traceback ...\nRuntimeError: boom\n")
    return folder


def planned_runs(study: Path, space: str, seeds: int, top_k: int) -> list[dict[str, Any]]:
    """The runs the confirmation stage plans for a space: the baseline configuration and the
    top-K search trials' configurations (from their params.json), seeds 1..`seeds`."""
    source = {"baseline": None} | {
        f"tuned-{k}": TUNED_SOURCES[space][k - 1] for k in range(1, top_k + 1)
    }
    runs = []
    for label, trial in source.items():
        if trial is None:
            tasks = [space.removeprefix(SINGLE_PREFIX)] if space != MULTI_SPACE else list(CLASSES)
            base = {**baseline(len(tasks)), "tasks": tasks, "max_epochs": 3, "batch_size": BATCH}
        else:
            base = json.loads((study / space / f"{TRIAL_PREFIX}{trial}" / PARAMS_FILE).read_text())
        for seed in range(1, seeds + 1):
            config = {**base, "seed": seed}
            runs.append(
                dict(label=label, space=space, source_trial=trial, seed=seed, config=config)
            )
    return runs


def run_trial_id(run: Mapping[str, Any]) -> str:
    """The fake trial id of a planned run: `<label>_s<seed>`."""
    return f"{run['label']}_s{run['seed']}"


def add_confirmation(
    study: Path,
    seeds: int = 3,
    top_k: int = 1,
    spaces: Sequence[str] = ALL_SPACES,
    skip: Sequence[tuple[str, str]] = (),
) -> dict[str, list[dict[str, Any]]]:
    """Confirmation runs of `spaces` with the test accuracies of CONFIRM_ACC, confirmation.json
    and the settings `confirm_seeds`/`confirm_top`; the runs named in `skip` ((space, trial id))
    are planned but not written. Returns the plan."""
    plan = {space: planned_runs(study, space, seeds, top_k) for space in spaces}
    (study / CONFIRM_PLAN_FILE).write_text(json.dumps(plan))
    settings = json.loads((study / SETTINGS_FILE).read_text())
    settings.update(confirm_seeds=seeds, confirm_top=top_k)
    (study / SETTINGS_FILE).write_text(json.dumps(settings))
    for space, runs in plan.items():
        for run in runs:
            if (space, run_trial_id(run)) in skip:
                continue
            accs = {t: v[run["seed"] - 1] for t, v in CONFIRM_ACC[(space, run["label"])].items()}
            write_run(study / confirm_experiment(space), run_trial_id(run), run, accs)
    return plan


def make_confirmed_study(root: Path, seeds: int = 3, top_k: int = 1, **kw: Any) -> Path:
    """`make_fake_study` with `eval_split` in its rows and the confirmation runs of
    `add_confirmation` (known test accuracies CONFIRM_ACC)."""
    study = make_fake_study(root, eval_split=VALIDATION)
    add_confirmation(study, seeds, top_k, **kw)
    return study


# ---------------------------------------------------------------------------------------------
# reading any study's raw files back, independently of analysis/


def raw_results(study_dir: Path) -> dict[tuple[str, str], dict]:
    """Independent re-read of every search trial: params and result rows by (space, trial_id)."""
    out = {}
    for params in study_dir.glob(f"*/{TRIAL_PREFIX}*/{PARAMS_FILE}"):
        trial = params.parent
        if trial.parent.name.startswith(CONFIRM_PREFIX):
            continue
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
    return max(reversed(rows), key=lambda r: r["score"])  # equal maxima: the latest epoch


def raw_runs(study_dir: Path) -> dict[tuple[str, str], dict]:
    """Independent re-read of every confirmation run (`confirm-<space>/trial_<id>/`): its
    planned run (params.json's "run") and result rows, by (space, trial_id)."""
    out = {}
    for params in study_dir.glob(f"{CONFIRM_PREFIX}*/{TRIAL_PREFIX}*/{PARAMS_FILE}"):
        trial = params.parent
        rows = [json.loads(x) for x in (trial / RESULT_FILE).read_text().splitlines() if x.strip()]
        run = json.loads(params.read_text())[RUN_KEY]
        out[(run["space"], trial.name.removeprefix(TRIAL_PREFIX))] = {
            "run": run,
            "rows": rows,
            "errored": (trial / ERROR_FILES[0]).exists(),
        }
    return out


def t_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % t-interval; NaN bounds where there is none (n < 2 or no spread)."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0:
        return x.mean(), math.nan, math.nan
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return x.mean(), x.mean() - half, x.mean() + half


def holm_ref(p: list[float]) -> list[float]:
    """Holm's adjusted p-values, written out: sorted, times (m - i), running maximum, cap 1.
    An undefined p (NaN: no spread to test) is no test: it stays NaN and m counts only the
    others."""
    order = sorted((i for i in range(len(p)) if not math.isnan(p[i])), key=lambda i: p[i])
    out, running = [math.nan] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p[i]))
        out[i] = running
    return out


# ---------------------------------------------------------------------------------------------
# a study of three tasks (the multi-task space trains all three)

THIRD = "svhn"  # a third task name; not in CLASSES, so confusion_for gives it 2 classes
THREE_TASKS = (C, FR, THIRD)
# multi-task trials of `make_three_task_study`: id -> (params, per-epoch accuracies)
THREE_TASK_MULTI: dict[str, tuple[dict, list[dict[str, float]]]] = {
    "t3base": ({**BASELINE_MULTI}, [{C: 0.5, FR: 0.7, THIRD: 0.6}, {C: 0.6, FR: 0.8, THIRD: 0.7}]),
    "t3a": ({**OTHER, "scheme": "uniform"}, [{C: 0.7, FR: 0.6, THIRD: 0.9}]),
    "t3b": ({**OTHER, "scheme": "round_robin"}, [{C: 0.8, FR: 0.5, THIRD: 0.5}] * 2),
    "t3c": ({**OTHER, "scheme": "joint"}, [{C: 0.4, FR: 0.4, THIRD: 0.4}] * 2),  # dominated
}


def make_three_task_study(root: Path) -> Path:
    """A study of three tasks: a single-task space per task (a baseline trial and one other)
    and a `multi` space over all three (`THREE_TASK_MULTI`; t3c is dominated by t3base)."""
    study = root / "three"
    write_settings(study, max_epochs=2)
    tasks = json.loads((study / TASKS_FILE).read_text())
    tasks[THIRD] = {**tasks[FR], "classes": ["a", "b"], "val_size": 200, "test_size": 200}
    (study / TASKS_FILE).write_text(json.dumps(tasks))
    for i, task in enumerate(THREE_TASKS):
        d = study / single_space(task)
        write_trial(d, f"{task}base", {**BASELINE_SINGLE}, [{task: 0.5}, {task: 0.6}], max_epochs=2)
        other = [{task: 0.55}, {task: 0.7 + i / 20}]
        write_trial(d, f"{task}other", {**OTHER}, other, start=20, max_epochs=2)
    for n, (trial_id, (params, accs)) in enumerate(THREE_TASK_MULTI.items()):
        write_trial(study / MULTI_SPACE, trial_id, params, accs, start=10 * n, max_epochs=2)
    return study

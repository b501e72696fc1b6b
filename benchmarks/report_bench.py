"""How long `analysis.report.build_report` takes on a large study (target: under 10 s).

    python -m benchmarks.report_bench                    # 100 trials x 50 epochs
    python -m benchmarks.report_bench --trials 300 --epochs 30 --no-optuna --keep

Writes a fake study folder in the real on-disk format into a temporary directory (study.json,
tasks.json, <space>/trial_<id>/params.json + result.json with confusion matrices and Ray's own
keys, and a small optuna.db unless --no-optuna, whose trials carry `ray_trial_id` as
`study.search` records it), then times building the report, figure files included: `seconds` is
`build_report` in this process, `cli_seconds` the whole `python -m analysis.report` in a fresh
interpreter (imports included). Prints one JSON line. The schemes are the registry's
(`trainables.sampling.SCHEMES`, numpy only) and each space's first trial is the baseline
(`names.baseline`), enqueued as the runner does; each space's baseline and best trial are then
retrained as confirmation runs (`confirm-<space>/`, confirmation.json) with 3 seeds. Imports
neither torch nor Ray.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from names import (
    CONFIRM_PLAN_FILE,
    ERROR_FILES,
    EVAL_SPLIT,
    MULTI_SPACE,
    OPTUNA_DB,
    PARAMS_FILE,
    RESULT_FILE,
    RUN_KEY,
    SCORE,
    SETTINGS_FILE,
    TASKS_FILE,
    TEST,
    TEST_SCORE,
    TRIAL_PREFIX,
    TUNED_BEST,
    asha_grace_period,
    baseline,
    confirm_experiment,
    eval_metric,
    single_space,
    task_metric,
)
from trainables.optim import LR_SCHEDULES, OPTIMIZERS
from trainables.sampling import SCHEMES as SCHEME_REGISTRY

SCHEMES = list(SCHEME_REGISTRY)
TASKS = {"cifar10": 10, "fashionrgb": 5}
VAL_PER_CLASS = 100


def _confusion(rng: np.random.Generator, k: int, acc: float) -> list[list[int]]:
    """Counts with VAL_PER_CLASS images per class and about `acc` of them on the diagonal."""
    m = np.zeros((k, k), dtype=int)
    for i in range(k):
        hit = int(rng.binomial(VAL_PER_CLASS, acc))
        m[i] = rng.multinomial(VAL_PER_CLASS - hit, np.full(k, 1 / k))
        m[i, i] += hit
    return m.tolist()


def _params(
    rng: np.random.Generator, tasks: list[str], is_baseline: bool, max_epochs: int
) -> dict[str, Any]:
    if is_baseline:
        p: dict[str, Any] = baseline(len(tasks))
    else:
        p = {
            "optimizer": str(rng.choice(list(OPTIMIZERS))),
            "lr": float(10 ** rng.uniform(-4, -1)),
            "weight_decay": float(rng.choice([0.0, 1e-5, 1e-4, 5e-4])),
            "lr_schedule": str(rng.choice(list(LR_SCHEDULES))),
        }
        if len(tasks) > 1:
            p["scheme"] = str(rng.choice(SCHEMES))
            if p["scheme"] == "coin":
                p["coin_p"] = float(rng.uniform(0.2, 0.9))
            elif p["scheme"] == "temperature":
                p["temperature"] = float(10 ** rng.uniform(0, 1))
            elif p["scheme"] == "joint":
                p["loss_weights"] = {t: float(rng.uniform(0.5, 2)) for t in tasks}
    p.update(
        tasks=tasks,
        data="synthetic",
        data_root="/elsewhere/dataset",
        limit_train=None,
        limit_val=None,
        max_epochs=max_epochs,
        batch_size=128,
        seed=0,
        cpus=1.0,
        gpus=0.0,
    )
    return p


def _metrics(
    rng: np.random.Generator, tasks: list[str], e: int, final: dict[str, float], tau: float
) -> dict[str, Any]:
    """One epoch's per-task metrics on a noisy saturating curve, and the score."""
    row: dict[str, Any] = {}
    accs = {}
    for t in tasks:
        acc = min(0.99, max(0.0, final[t] * (1 - np.exp(-e / tau)) + rng.normal(0, 0.01)))
        conf = _confusion(rng, TASKS[t], acc)
        accs[t] = float(np.trace(np.array(conf)) / (TASKS[t] * VAL_PER_CLASS))
        values = {
            "acc": accs[t],
            "loss": 2.3 * (1 - accs[t]),
            "train_loss": 2.2 * (1 - accs[t]),
            "train_acc": accs[t] + 0.02,
            "steps": 390 // len(tasks),
            "step_share": 1 / len(tasks),
            "confusion": conf,
        }
        row.update({task_metric(metric, t): v for metric, v in values.items()})
    row[SCORE] = float(np.mean(list(accs.values())))
    return row


def _ray_fields(trial_id: str, params: dict, e: int, t0: float, total: float, dt: float) -> dict:
    """The keys Ray adds to every reported row."""
    return {
        "lr": params["lr"],
        "diverged": False,
        "timestamp": int(t0 + total),
        "checkpoint_dir_name": f"checkpoint_{e - 1:06d}",
        "should_checkpoint": True,
        "done": e == params["max_epochs"],
        "training_iteration": e,
        "trial_id": trial_id,
        "date": "2026-01-01_00-00-00",
        "time_this_iter_s": dt,
        "time_total_s": total,
        "pid": 1234,
        "hostname": "bench",
        "node_ip": "127.0.0.1",
        "config": params,
        "time_since_restore": total,
        "iterations_since_restore": e,
    }


def write_trial(
    folder: Path,
    rng: np.random.Generator,
    trial_id: str,
    tasks: list[str],
    params: dict[str, Any],
    epochs: int,
    t0: float,
) -> float:
    """One trial folder; returns its last score."""
    folder.mkdir(parents=True)
    (folder / PARAMS_FILE).write_text(json.dumps(params, indent=2))
    final = {t: float(rng.uniform(0.5, 0.95)) for t in tasks}
    tau = float(rng.uniform(2, 10))
    lines, total, score = [], 0.0, 0.0
    for e in range(1, epochs + 1):
        row = {"epoch": e, **_metrics(rng, tasks, e, final, tau)}
        score = row[SCORE]
        dt = float(rng.uniform(20, 40))
        total += dt
        row.update(_ray_fields(trial_id, params, e, t0, total, dt))
        lines.append(json.dumps(row))
    (folder / RESULT_FILE).write_text("\n".join(lines) + "\n")
    return score


Records = dict[str, list[tuple[str, dict, float | None]]]  # space -> (trial id, params, score)


def _write_settings(study: Path, num_samples: int, epochs: int, confirm_seeds: int) -> None:
    settings = {
        "name": "bench",
        "space": "all",
        "storage": "/elsewhere",
        "num_samples": num_samples,
        "max_epochs": epochs,
        "scheduler": "asha",
        "seed": 0,
        "data": "synthetic",
        "limit_train": None,
        "limit_val": None,
        "batch_size": 128,
        "confirm_seeds": confirm_seeds,
        "confirm_top": 1,
    }
    (study / SETTINGS_FILE).write_text(json.dumps(settings, indent=2))
    tasks = {
        t: {
            "classes": [f"class{i}" for i in range(k)],
            "train_size": 5000,
            "val_size": k * VAL_PER_CLASS,
            "synthetic": True,
        }
        for t, k in TASKS.items()
    }
    (study / TASKS_FILE).write_text(json.dumps(tasks, indent=2))


def make_study(
    root: Path,
    trials: int = 100,
    epochs: int = 50,
    optuna_db: bool = True,
    seed: int = 0,
    confirm_seeds: int = 3,
) -> Path:
    """A fake `all` study: half the trials multi-task, a quarter per single-task space; a few
    early-stopped at ASHA rungs, one errored, one diverged; then its confirmation runs
    (baseline and tuned-1 of each space, `confirm_seeds` seeds each)."""
    rng = np.random.default_rng(seed)
    study = root / "bench"
    study.mkdir(parents=True)
    n_multi = trials // 2
    n_single = (trials - n_multi) // 2
    plan = {
        single_space("cifar10"): (["cifar10"], n_single),
        single_space("fashionrgb"): (["fashionrgb"], trials - n_multi - n_single),
        MULTI_SPACE: (list(TASKS), n_multi),
    }
    _write_settings(study, max(n for _, n in plan.values()), epochs, confirm_seeds)
    grace = asha_grace_period(epochs)
    records: Records = {}
    t0 = 1.8e9
    for space, (tasks, n) in plan.items():
        records[space] = []
        for i in range(n):
            trial_id = f"{rng.integers(16**8):08x}"
            params = _params(rng, tasks, is_baseline=i == 0, max_epochs=epochs)
            run = epochs if i % 4 else min(epochs, grace * (1 if i % 8 else 3))  # ASHA rungs
            folder = study / space / f"{TRIAL_PREFIX}{trial_id}"
            score = None
            if i == n - 1:  # errored before reporting
                folder.mkdir(parents=True)
                (folder / PARAMS_FILE).write_text(json.dumps(params))
                (folder / ERROR_FILES[0]).write_text("RuntimeError: out of memory\n")
            else:
                score = write_trial(folder, rng, trial_id, tasks, params, run, t0 + 100 * i)
            records[space].append((trial_id, params, score))
    if optuna_db:
        _write_optuna(study, records)
    _write_confirmation(study, rng, records, confirm_seeds, epochs)
    return study


def _write_confirmation(
    study: Path, rng: np.random.Generator, records: Records, seeds: int, epochs: int
) -> None:
    """Per space, the baseline and the best trial retrained with `seeds` seeds: one run folder
    each in confirm-<space>/ (steps every epoch, test metrics at the last) and the plan in
    confirmation.json, as the study's confirmation stage writes them."""
    plan: dict[str, list[dict[str, Any]]] = {}
    for space, rows in records.items():
        scored = [r for r in rows if r[2] is not None]
        best = max(scored, key=lambda r: r[2])
        plan[space] = [
            {
                "label": label,
                "space": space,
                "source_trial": source,
                "seed": seed,
                "config": {**params, "seed": seed, "max_epochs": epochs},
            }
            for label, (source, params) in (
                ("baseline", (None, rows[0][1])),
                (TUNED_BEST, (best[0], best[1])),
            )
            for seed in range(1, seeds + 1)
        ]
        for i, run in enumerate(plan[space]):
            folder = study / confirm_experiment(space) / f"{TRIAL_PREFIX}{i:05d}"
            _write_run(folder, rng, run, epochs)
    (study / CONFIRM_PLAN_FILE).write_text(json.dumps(plan, indent=2))


def _write_run(folder: Path, rng: np.random.Generator, run: dict[str, Any], epochs: int) -> None:
    folder.mkdir(parents=True)
    (folder / PARAMS_FILE).write_text(json.dumps({RUN_KEY: run}))
    tasks = run["config"]["tasks"]
    lines = []
    for e in range(1, epochs + 1):
        row: dict[str, Any] = {"epoch": e, EVAL_SPLIT: TEST, "training_iteration": e}
        for t in tasks:
            row[f"steps/{t}"] = 390 // len(tasks)
            row[f"train_loss/{t}"] = 2.0 / e
        if e == epochs:
            accs = {}
            for t in tasks:
                conf = _confusion(rng, TASKS[t], float(rng.uniform(0.6, 0.9)))
                accs[t] = float(np.trace(np.array(conf)) / (TASKS[t] * VAL_PER_CLASS))
                row[eval_metric("acc", t, TEST)] = accs[t]
                row[eval_metric("loss", t, TEST)] = 2.3 * (1 - accs[t])
                row[eval_metric("confusion", t, TEST)] = conf
            row[TEST_SCORE] = float(np.mean(list(accs.values())))
        lines.append(json.dumps(row))
    (folder / RESULT_FILE).write_text("\n".join(lines) + "\n")


def _write_optuna(study: Path, records: Records) -> None:
    """One Optuna study per space; each trial records its Ray trial id (as `study.search`
    does) and the first is the enqueued baseline (`fixed_params`, as Optuna marks it)."""
    import optuna
    from optuna.distributions import CategoricalDistribution as Cat
    from optuna.distributions import FloatDistribution as Flt

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{study / OPTUNA_DB}"
    dists = {
        "optimizer": Cat(list(OPTIMIZERS)),
        "lr": Flt(1e-4, 1e-1, log=True),
        "weight_decay": Cat([0.0, 1e-5, 1e-4, 5e-4]),
        "lr_schedule": Cat(list(LR_SCHEDULES)),
        "scheme": Cat(SCHEMES),
        "coin_p": Flt(0.2, 0.9),
        "temperature": Flt(1.0, 10.0, log=True),
    }
    for space, rows in records.items():
        s = optuna.create_study(study_name=space, storage=storage, direction="maximize")
        trials = []
        for i, (trial_id, params, value) in enumerate(rows):
            flat = {k: v for k, v in params.items() if k in dists}
            for t, w in (params.get("loss_weights") or {}).items():
                flat[f"loss_weights/{t}"] = w
            done = value is not None
            trial = optuna.trial.create_trial(
                params=flat,
                distributions={k: dists.get(k, Flt(0.5, 2.0, log=True)) for k in flat},
                value=value,
                state=optuna.trial.TrialState.COMPLETE if done else optuna.trial.TrialState.FAIL,
                user_attrs={"ray_trial_id": trial_id},
                system_attrs={"fixed_params": flat} if i == 0 else {},
            )
            trials.append(trial)
        s.add_trials(trials)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.report_bench", description=__doc__)
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--no-optuna", action="store_true", help="no optuna.db in the fake study")
    p.add_argument("--keep", action="store_true", help="keep the fake study and print its path")
    return p


def time_report(study: Path, root: Path) -> tuple[float, float, Path]:
    """Seconds of `build_report` in this process, then of `python -m analysis.report` as a user
    runs it (a fresh interpreter, imports included); and the report's path."""
    from analysis.report import build_report

    start = time.perf_counter()
    out = build_report(study, root / "out" / "report.html")
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    command = ["analysis.report", str(study), "--out", str(root / "cli" / "report.html")]
    subprocess.run(
        [sys.executable, "-m", *command],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[1],
    )
    return seconds, time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    root = Path(tempfile.mkdtemp(prefix="report-bench-"))
    try:
        study = make_study(root, args.trials, args.epochs, optuna_db=not args.no_optuna)
        seconds, cli_seconds, out = time_report(study, root)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    record = {
        "benchmark": "report",
        "trials": args.trials,
        "epochs": args.epochs,
        "seconds": round(seconds, 3),
        "cli_seconds": round(cli_seconds, 3),
        "optuna_db": not args.no_optuna,
        "report_mb": round(out.stat().st_size / 2**20, 2),
    }
    print(json.dumps(record))
    if args.keep:  # the folder stays for a look
        print(f"study: {study}\nreport: {out}", file=sys.stderr)
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

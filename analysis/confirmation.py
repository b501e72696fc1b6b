"""The confirmation runs of a study: what the table's test figures are made of.

After each space's search the study retrains, from scratch on train + validation, the baseline
configuration (label `baseline`) and the search's top-K configurations (`tuned-1` .. `tuned-K`)
with R seeds each, and scores every run once on test at its last epoch. Each space's runs are one
Ray experiment, `confirm-<space>/trial_<id>/` (with `--confirm-seeds auto`, one per round: round
k's added seeds in `confirm-<space>-round-<k>/`, all read here alike), whose `params.json` is
`{"run": {"label", "space", "source_trial", "seed", "config"}}` and whose `result.json` has one
row per epoch (`steps/<task>` in every row; `test_acc/<task>`, `test_confusion/<task>` and
`test_score` in the last). The plan is also in `confirmation.json` (`{space: [run, ...]}`).
Names are `names.py`'s.

`load_confirmation(path)` reads them into one row per run (see `Confirmation.runs`); a study
without them (written before the confirmation stage, or with `--confirm-seeds 0`) has none.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.files import flatten_params, metric_task
from names import (
    ACC,
    BASELINE_LABEL,
    BUDGET_KEY,
    CONFIRM_PLAN_FILE,
    CONFIRM_PREFIX,
    CONFIRM_ROUNDS_FILE,
    CONFUSION,
    ERROR_FILES,
    IMAGES,
    LEGACY_BUDGET,
    PARAMS_FILE,
    RESTARTED,
    RESULT_FILE,
    RUN_KEY,
    SINGLE_STEPS,
    STEPS,
    TEST,
    TEST_SCORE,
    TRIAL_PREFIX,
    TUNED_PREFIX,
    confirm_experiment_space,
    eval_metric,
    task_metric,
    task_name,
)
from studyfiles.ray_files import read_result_rows

RUN_STATUSES = {
    "finished": "ran all max_epochs epochs and reported its test metrics",
    "diverged": "its loss turned NaN or infinite (no test accuracy counted)",
    "errored": "Ray marked the run errored (error.txt)",
    "running": "fewer epochs while the study is running now",
    "incomplete": "fewer epochs, or no test metrics, and not running: resume the study",
}
FAILED_STATUSES = ("diverged", "errored")  # a failed seed: counted as failed in the table's cells
LEAD = ["space", "label", "seed", "source_trial", "trial_id", "experiment", "status", "epochs"]
LEAD += ["last_epoch", "max_epochs", BUDGET_KEY]
LEAD += ["batch_size", "tasks", TEST_SCORE]


def label_rank(label: str) -> tuple[int, int, str]:
    """`baseline` first, then `tuned-1`, `tuned-2`, ... by number, then anything else."""
    if label == BASELINE_LABEL:
        return 0, 0, label
    found = re.fullmatch(rf"{re.escape(TUNED_PREFIX)}(\d+)", str(label))
    return (1, int(found.group(1)), label) if found else (2, 0, str(label))


def run_status(
    *,
    errored: bool,
    last_epoch: int,
    max_epochs: float | None,
    diverged: bool,
    has_test: bool,
    running: bool,
) -> str:
    """Why a run's test accuracy counts or not; see `RUN_STATUSES`."""
    if diverged:
        return "diverged"
    done = max_epochs is None or pd.isna(max_epochs) or last_epoch >= max_epochs
    if done and has_test:
        return "finished"
    if errored:
        return "errored"
    return "running" if running else "incomplete"


@dataclasses.dataclass
class Confirmation:
    """`runs`: one row per confirmation run: space, label, seed, source_trial, trial_id,
    experiment (its folder: `confirm-<space>`, or a later round's), status (`RUN_STATUSES`),
    epochs (reported), last_epoch, max_epochs, seconds (of the reported epochs, Ray's
    `time_this_iter_s` summed; NaN where not recorded), budget (`names.LEGACY_BUDGET` for a
    config that names none), batch_size, tasks, test_score (at the last epoch), and per task
    `test_acc/<task>`, `test_loss/<task>`, `steps/<task>` (summed over the epochs reported),
    `images/<task>` (steps x batch_size) and `single_steps/<task>` (the planned steps of the
    task's single-task run; NaN before budgets); then the run's flattened config.
    `confusions`: the test confusion matrices (rows = true class) by (space, trial_id) and task.
    `plan`: the content of confirmation.json ({} when there is none)."""

    runs: pd.DataFrame
    confusions: dict[tuple[str, str], dict[str, list[list[int]]]]
    plan: dict[str, list[dict[str, Any]]]
    notes: list[str]


def confirm_dirs(path: Path) -> list[Path]:
    """The study's confirmation experiments (`confirm-<space>/`), by name."""
    return sorted(p for p in path.iterdir() if p.is_dir() and p.name.startswith(CONFIRM_PREFIX))


def _read_run(trial_dir: Path) -> dict[str, Any]:
    """The planned run of a confirmation trial folder (params.json's `run`), or {}."""
    try:
        params = json.loads((trial_dir / PARAMS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    run = params.get(RUN_KEY) if isinstance(params, dict) else None
    return run if isinstance(run, dict) else {}


def _by_epoch(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with an epoch, one per epoch (a resumed run may repeat one: the later wins)."""
    kept: dict[int, dict[str, Any]] = {}
    for row in rows:
        epoch = row.get("epoch", row.get("training_iteration"))
        if isinstance(epoch, (int, float)) and not isinstance(epoch, bool):
            kept[int(epoch)] = row
    return [kept[e] for e in sorted(kept)]


def _seconds(rows: list[dict[str, Any]]) -> float:
    """Wall seconds of a run's reported epochs (Ray's `time_this_iter_s` summed, evaluation
    included); NaN when the rows do not record it."""
    times = [r.get("time_this_iter_s") for r in rows]
    known = [float(t) for t in times if isinstance(t, (int, float)) and not isinstance(t, bool)]
    return float(sum(known)) if known and len(known) == len(rows) else np.nan


def _run_tasks(config: Mapping[str, Any], last: Mapping[str, Any]) -> list[str]:
    """The run's task names: from its config, else from its last row's test accuracies."""
    tasks = config.get("tasks")
    if tasks:
        return [task_name(t) for t in ([tasks] if isinstance(tasks, str) else tasks)]
    prefix = eval_metric(ACC, "", TEST)
    return [metric_task(k, prefix.rstrip("/")) for k in last if k.startswith(prefix)]


def _run_record(
    trial_dir: Path, rows: list[dict[str, Any]], settings: Mapping[str, Any], running: bool
) -> tuple[dict[str, Any], dict[str, list[list[int]]]]:
    """One run's row of the runs frame, and its test confusion matrices by task."""
    run = _read_run(trial_dir)
    config = run.get("config") if isinstance(run.get("config"), dict) else {}
    rows = _by_epoch(rows)
    last = rows[-1] if rows else {}
    tasks = _run_tasks(config, last)
    record = flatten_params(config)
    batch = config.get("batch_size", settings.get("batch_size"))
    max_epochs = config.get("max_epochs", settings.get("max_epochs"))
    space = run.get("space") or confirm_experiment_space(trial_dir.parent.name)[0]
    record.update(
        space=space,
        label=run.get("label"),
        seed=run.get("seed", config.get("seed")),
        source_trial=run.get("source_trial"),
        trial_id=trial_dir.name.removeprefix(TRIAL_PREFIX),
        experiment=trial_dir.parent.name,
        epochs=len(rows),
        last_epoch=int(last.get("epoch", 0)) if rows else 0,
        max_epochs=max_epochs,
        batch_size=batch,
        tasks=",".join(tasks),
        restarted=any(bool(r.get(RESTARTED)) for r in rows),  # started over: no readable checkpoint
        seconds=_seconds(rows),
    )
    record[BUDGET_KEY] = config.get(BUDGET_KEY, LEGACY_BUDGET if config else None)
    record[TEST_SCORE] = last.get(TEST_SCORE, np.nan)
    for task in tasks:
        for metric in ("acc", "loss"):
            record[eval_metric(metric, task, TEST)] = last.get(eval_metric(metric, task, TEST))
        steps = sum(float(r.get(task_metric(STEPS, task)) or 0) for r in rows)
        record[task_metric(STEPS, task)] = steps
        record[task_metric(IMAGES, task)] = steps * batch if batch else np.nan
        single = last.get(task_metric(SINGLE_STEPS, task))  # none before budgets existed
        record[task_metric(SINGLE_STEPS, task)] = np.nan if single is None else single
    has_test = bool(tasks) and all(last.get(eval_metric(ACC, t, TEST)) is not None for t in tasks)
    record["status"] = run_status(
        errored=any((trial_dir / f).exists() for f in ERROR_FILES),
        last_epoch=record["last_epoch"],
        max_epochs=max_epochs,
        diverged=bool(last.get("diverged", False)),
        has_test=has_test,
        running=running,
    )
    matrices = {t: last.get(eval_metric(CONFUSION, t, TEST)) for t in tasks}
    return record, {t: m for t, m in matrices.items() if m is not None}


def _read_plan(path: Path, notes: list[str]) -> dict[str, list[dict[str, Any]]]:
    file = path / CONFIRM_PLAN_FILE
    if not file.is_file():
        return {}
    try:
        plan = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        notes.append(f"{CONFIRM_PLAN_FILE} unreadable ({exc})")
        return {}
    return plan if isinstance(plan, dict) else {}


def _runs_frame(records: list[dict[str, Any]], spaces: Sequence[str]) -> pd.DataFrame:
    """Records as a frame: lead columns, per-task metrics, then config; sorted by space (in
    `spaces`' order, others after), label (`label_rank`) and seed."""
    if not records:
        return pd.DataFrame(columns=LEAD)
    frame = pd.DataFrame.from_records(records)
    rank = {s: i for i, s in enumerate(spaces)}
    frame["_space"] = frame["space"].map(lambda s: rank.get(s, len(rank)))
    frame["_label"] = frame["label"].map(lambda x: label_rank(str(x)))
    frame["seed"] = pd.to_numeric(frame["seed"], errors="coerce").astype("Int64")
    frame = frame.sort_values(["_space", "space", "_label", "seed", "trial_id"], kind="stable")
    metric = sorted(c for c in frame if c.split("/")[0] in ("test_acc", "test_loss"))
    metric += sorted(c for c in frame if c.split("/")[0] == STEPS)
    metric += sorted(c for c in frame if c.split("/")[0] == IMAGES)
    head = [c for c in LEAD if c in frame] + metric
    rest = [c for c in frame if c not in head and not c.startswith("_")]
    return frame[head + rest].reset_index(drop=True)


def load_confirmation(
    path: Path, settings: Mapping[str, Any], running: bool, spaces: Sequence[str] = ()
) -> Confirmation:
    """Every confirmation run of the study at `path` (see `Confirmation`)."""
    notes: list[str] = []
    records, confusions = [], {}
    for folder in confirm_dirs(path):
        skipped_total = 0
        for trial_dir in sorted(folder.glob(f"{TRIAL_PREFIX}*")):
            if not trial_dir.is_dir():
                continue
            rows, skipped = read_result_rows(trial_dir / RESULT_FILE)
            skipped_total += skipped
            record, matrices = _run_record(trial_dir, rows, settings, running)
            records.append(record)
            if matrices:
                confusions[(record["space"], record["trial_id"])] = matrices
        if skipped_total:
            notes.append(f"{folder.name}: skipped {skipped_total} unreadable result line(s)")
    plan = _read_plan(path, notes)
    notes += _plan_notes(path, plan, settings)
    return Confirmation(_runs_frame(records, spaces), confusions, plan, notes)


def _plan_notes(
    path: Path, plan: Mapping[str, list[dict[str, Any]]], settings: Mapping[str, Any]
) -> list[str]:
    """What the plan says beyond its runs: spaces confirming fewer tuned configurations than
    `--confirm-top` (only search trials that ran all their epochs are confirmed), and the
    rounds of `--confirm-seeds auto` (`CONFIRM_ROUNDS_FILE`)."""
    top = settings.get("confirm_top")
    notes = []
    for space, runs in plan.items() if isinstance(top, int) else ():
        tuned = {r.get("label") for r in runs if str(r.get("label")).startswith(TUNED_PREFIX)}
        if len(tuned) < top:
            notes.append(
                f"{space}: {len(tuned)} tuned configuration(s) confirmed, not {top} "
                "(--confirm-top): only search trials that ran all their epochs are confirmed"
            )
    try:
        record = json.loads((path / CONFIRM_ROUNDS_FILE).read_text())
        done = [r for r in record["rounds"] if r.get("decision")]
    except (OSError, ValueError, KeyError, TypeError):
        return notes
    seeds = " -> ".join(str(r["seeds"]) for r in record["rounds"])
    last = f"; stopped: {done[-1]['reason']}" if done and done[-1]["decision"] == "stop" else ""
    notes.append(
        f"seeds chosen by precision (--confirm-seeds auto, target multi - single half-width "
        f"{record.get('target_halfwidth')} points on {TEST}, at most {record.get('max_seeds')} "
        f"seeds): seeds per configuration by round {seeds}{last}"
    )
    return notes

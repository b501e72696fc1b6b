"""Reading the files of a trial folder, shared by the search trials (`results`) and the
confirmation runs (`confirmation`): Ray's `result.json` (one JSON object per line per epoch),
a trial config flattened into scalar columns, and the task of a per-task column.

Pure helpers over paths and dicts, kept apart so both loaders use one definition of each.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from names import task_metric, task_name


def metric_task(column: str, metric: str) -> str | None:
    """The task of a per-task column (`acc/cifar10`, `acc` -> `cifar10`), else None."""
    prefix = task_metric(metric, "")
    return column[len(prefix) :] if column.startswith(prefix) else None


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

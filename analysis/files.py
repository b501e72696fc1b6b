"""Helpers shared by the search trials (`results`) and the confirmation runs (`confirmation`): a
trial config flattened into scalar columns, and the task of a per-task column (Ray's
`result.json` itself is read by `studyfiles.ray_files.read_result_rows`).

Pure helpers over paths and dicts, kept apart so both loaders use one definition of each.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from names import task_metric, task_name


def metric_task(column: str, metric: str) -> str | None:
    """The task of a per-task column (`acc/cifar10`, `acc` -> `cifar10`), else None."""
    prefix = task_metric(metric, "")
    return column[len(prefix) :] if column.startswith(prefix) else None


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

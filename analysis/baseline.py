"""Which trial of each space is its baseline: the original hand-picked configuration
(`names.baseline`) that the study enqueues as every space's first trial, so each study shows
how far the search moved beyond it.

The study says so itself: Optuna marks the enqueued trial (`fixed_params`) and the trial records
its Ray trial id, which `optuna_link` turns into a link to its folder. A study without that link
(no optuna.db, or written before the id was recorded) is matched by value instead: the first
trial whose config is the baseline configuration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from names import baseline


def baseline_flags(
    trials: pd.DataFrame, optuna_trials: pd.DataFrame, space_tasks: Mapping[str, Sequence[str]]
) -> pd.Series:
    """The baseline trial of each space (rows in trial order): the Optuna trial the study
    enqueued, linked by its Ray trial id; where a space has none linked (no optuna.db, or a study
    from before the id was recorded), the first trial whose config is `names.baseline`'s."""
    flags = pd.Series(False, index=trials.index)
    enqueued = pd.DataFrame(columns=["space", "trial_id"])
    if not optuna_trials.empty:
        enqueued = optuna_trials[optuna_trials["is_baseline"] & optuna_trials["trial_id"].notna()]
    for space, tasks in space_tasks.items():
        rows = trials[trials["space"] == space]
        matches = rows[rows["trial_id"].isin(enqueued.loc[enqueued["space"] == space, "trial_id"])]
        if matches.empty:
            matches = rows[config_mask(rows, baseline(len(tasks)))]
        if len(matches):
            flags[matches.index[0]] = True
    return flags


def config_mask(frame: pd.DataFrame, point: Mapping[str, Any]) -> pd.Series:
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

"""The trials table: one display row per trial in its trial colour, and stop reasons counted.

`trial_table_data` (extract: config, status, scores as display strings), `trial_table_colors`
(row -> the trial's colour, as in every figure) and `stop_reason_counts` (trials per space and
stop reason); the report renders them as HTML tables (`analysis.html_table`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.figures._common import trial_colors, trial_key
from analysis.results import Study, metric_task


def trial_table_data(study: Study) -> pd.DataFrame:
    """One display row per trial: status and stop reason, scores, and the values of the keys
    the searches chose (`Study.searched_keys`; log-drawn ones in scientific notation)."""
    t = study.trials
    out = pd.DataFrame(
        {
            "trial": t["trial_id"],
            "space": t["space"],
            "stop reason": t["stop_reason"],
            "epochs": t["epochs"].astype(str)
            + "/"
            + t["max_epochs"].map(lambda v: "?" if pd.isna(v) else str(int(v))),
            "best score": t["best_score"].map(_pct),
            "best epoch": t["best_epoch"].map(lambda v: "" if pd.isna(v) else str(int(v))),
            "baseline": np.where(t["is_baseline"], "baseline", ""),
        }
    )
    logs = {k for space in study.spaces for k in study.log_keys(space)}
    for key in dict.fromkeys(k for space in study.spaces for k in study.searched_keys(space)):
        if key in t:  # what the searches chose, as the study's record says
            number = pd.api.types.is_float_dtype(t[key])
            out[key] = t[key].map(_sci if key in logs else _num if number else _text)
    for col in t.columns:
        if metric_task(col, "acc_at_best"):
            out[f"{metric_task(col, 'acc_at_best')} acc"] = t[col].map(_pct)
    return out.reset_index(drop=True)


def _sci(value: object) -> str:
    return "" if pd.isna(value) else f"{float(value):.2e}"


def _num(value: object) -> str:
    return "" if pd.isna(value) else f"{float(value):.3g}"


def _text(value: object) -> str:
    return "" if pd.isna(value) else str(value)


def _pct(value: float) -> str:
    return "" if pd.isna(value) else f"{value:.1%}"


def trial_table_colors(study: Study) -> dict[int, str]:
    """Row position in `trial_table_data` -> the trial's colour (`trial_colors`)."""
    colors = trial_colors(study)
    keys = [trial_key(s, t) for s, t in zip(study.trials["space"], study.trials["trial_id"])]
    return {i: colors[k] for i, k in enumerate(keys)}


def stop_reason_counts(study: Study) -> pd.DataFrame:
    """Trials per space and stop reason (spaces as rows)."""
    counts = pd.crosstab(study.trials["space"], study.trials["stop_reason"]).reindex(
        [s for s in study.spaces if s in set(study.trials["space"])]
    )
    counts.columns.name = None
    counts["total"] = counts.sum(axis=1)
    return counts

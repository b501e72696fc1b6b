"""Parallel coordinates of the multi-task space: each trial's hyperparameters and score.

`parallel_data` (extract: per scored trial, the hyperparameters its space searched, as the
study's own record says (`Study.searched_keys`), epochs trained and best validation score) and
`plot_parallel` (render: one Parcoords axis per parameter, log10 where the search drew it on a
log scale, categories for text).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.results import Study
from names import MULTI_SPACE

LOG_COLUMN = "log_keys"  # the frame's attribute: the parameters drawn as log10


def parallel_data(study: Study, space: str = MULTI_SPACE) -> pd.DataFrame:
    """Per scored trial of the space: the hyperparameters its search chose that any trial has,
    epochs trained and best validation score; empty when none. `data.attrs[LOG_COLUMN]`: those
    drawn on a log scale."""
    t = study.space_trials(space).dropna(subset=["best_score"])
    if t.empty:
        return pd.DataFrame(columns=["trial_id", "epochs", "score"])
    params = [p for p in study.searched_keys(space) if p in t and t[p].notna().any()]
    data = t[["trial_id", *params, "epochs", "is_baseline"]].assign(score=t["best_score"])
    data = data.reset_index(drop=True)
    data.attrs[LOG_COLUMN] = sorted(study.log_keys(space) & set(params))
    return data


def _dimension(values: pd.Series, name: str, log: bool) -> dict:
    """A Parcoords axis: numbers as they are (log10 when `log`), anything else as categories; a
    missing value (a parameter its scheme does not use) as "-"."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().sum() == values.notna().sum() and values.notna().any():
        if log and (numeric.dropna() > 0).all():
            return {"label": f"log10 {name}", "values": np.log10(numeric.fillna(numeric.min()))}
        return {"label": name, "values": numeric.fillna(numeric.min())}
    text = values.astype(object).where(values.notna(), "-").astype(str)
    cats = sorted(set(text))
    return {
        "label": name,
        "values": text.map(cats.index),
        "tickvals": list(range(len(cats))),
        "ticktext": cats,
    }


def plot_parallel(data: pd.DataFrame) -> go.Figure:
    params = [c for c in data.columns if c not in ("trial_id", "epochs", "is_baseline", "score")]
    logs = set(data.attrs.get(LOG_COLUMN, ()))
    dims = [_dimension(data[p], p, p in logs) for p in params]
    dims.append({"label": "epochs trained", "values": data["epochs"]})
    dims.append({"label": "best score (validation)", "values": data["score"]})
    fig = go.Figure(
        go.Parcoords(
            line={
                "color": data["score"],
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": {"text": "score"}},
            },
            dimensions=dims,
        )
    )
    fig.update_layout(
        title=f"{MULTI_SPACE}: hyperparameters and best validation score of each trial"
        f" ({len(data)} trials; drag along an axis to filter)",
        height=480,
        margin={"l": 70, "r": 40},
    )
    return fig

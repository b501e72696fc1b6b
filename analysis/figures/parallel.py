"""Parallel coordinates of the multi-task space: each trial's hyperparameters and score.

`parallel_data` (extract: per scored trial, the hyperparameters any trial has, epochs trained
and best validation score) and `plot_parallel` (render: one Parcoords axis per parameter, log10
for the learning rate and weight decay, categories for text).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.results import Study
from names import MULTI_SPACE

PARALLEL_PARAMS = ("optimizer", "lr", "weight_decay", "lr_schedule", "scheme", "coin_p")
PARALLEL_PARAMS += ("temperature",)
LOG_PARAMS = ("lr", "weight_decay")  # drawn as log10


def parallel_data(study: Study, space: str = MULTI_SPACE) -> pd.DataFrame:
    """Per scored trial of the space: its hyperparameters (`PARALLEL_PARAMS` and per-task loss
    weights that any trial has), epochs trained and best validation score; empty when none."""
    t = study.space_trials(space).dropna(subset=["best_score"])
    if t.empty:
        return pd.DataFrame(columns=["trial_id", "epochs", "score"])
    params = [p for p in PARALLEL_PARAMS if p in t and t[p].notna().any()]
    params += sorted(c for c in t if c.startswith("loss_weights/") and t[c].notna().any())
    data = t[["trial_id", *params, "epochs", "is_baseline"]].assign(score=t["best_score"])
    return data.reset_index(drop=True)


def _dimension(values: pd.Series, name: str) -> dict:
    """A Parcoords axis: numbers as they are (log10 for `LOG_PARAMS`), anything else as
    categories; a missing value (a parameter its scheme does not use) as "-"."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().sum() == values.notna().sum() and values.notna().any():
        if name in LOG_PARAMS and (numeric > 0).all():
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
    dims = [_dimension(data[p], p) for p in params]
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

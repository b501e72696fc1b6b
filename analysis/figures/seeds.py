"""Test accuracy per seed: the comparison table's numbers with every seed shown.

`seed_accuracy_data` (extract: per task and table row, each finished seed's test accuracy beside
the row's mean and 95 % interval, from `analysis.table`) and `plot_seed_accuracy` (render: one
panel per task, the seeds as points beside their mean with its interval).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis import arms
from analysis import table as table_mod
from analysis.figures._common import PALETTE
from analysis.results import Study
from names import MULTI_ARM, SINGLE_ARM

SEED_ACCURACY_COLUMNS = ["task", "row", "label", "fashion", "seed", "trial_id", "acc", "n"]
SEED_ACCURACY_COLUMNS += ["mean", "ci_low", "ci_high"]


def seed_accuracy_data(study: Study) -> pd.DataFrame:
    """Per task and table row (baseline/tuned x single/multi-task): one row per finished seed
    with its test accuracy at its last epoch, beside the row's mean and 95 % interval over
    seeds (NaN where there is none), from the table's own numbers (`table.seed_frame`,
    `table.summary_frame`). Empty without confirmation runs."""
    tasks = table_mod.table_tasks(study)
    seeds = arms.seed_frame(study, tasks)
    shown = seeds[seeds["counted"] & seeds["label"].isin(arms.SHOWN)]
    if shown.empty:
        return pd.DataFrame(columns=SEED_ACCURACY_COLUMNS)
    summary = arms.summary_frame(study, seeds, tasks)
    keys = ["task", "label", "fashion"]
    stats = summary[keys + ["n", "mean", "ci_low", "ci_high"]]
    data = shown.merge(stats, on=keys, how="left")
    order = {"row": seed_accuracy_rows(), "task": tasks}
    rank = {col: {v: i for i, v in enumerate(vals)} for col, vals in order.items()}
    data = data.sort_values(
        ["task", "row", "seed"], key=lambda c: c.map(rank[c.name]) if c.name in rank else c
    )
    return data[SEED_ACCURACY_COLUMNS].reset_index(drop=True)


def seed_accuracy_rows() -> list[str]:
    """The rows in the table's order: baseline, then tuned; single-, then multi-task."""
    return [arms.row_name(lb, f) for lb in arms.SHOWN for f in arms.FASHIONS]


def plot_seed_accuracy(data: pd.DataFrame) -> go.Figure:
    tasks = list(dict.fromkeys(data["task"]))
    rows = seed_accuracy_rows()
    fig = make_subplots(rows=1, cols=max(1, len(tasks)), subplot_titles=tasks, shared_yaxes=True)
    colors = {SINGLE_ARM: PALETTE[0], MULTI_ARM: PALETTE[1]}
    for col, task in enumerate(tasks, start=1):
        part = data[data["task"] == task]
        for i, row in enumerate(rows):
            pts = part[part["row"] == row]
            if pts.empty:
                continue
            color = colors[pts["fashion"].iloc[0]]
            fig.add_trace(_seed_points(pts, i, color, first=col == 1 and i == 0), row=1, col=col)
            fig.add_trace(
                _mean_marker(pts.iloc[0], i, color, first=col == 1 and i == 0), row=1, col=col
            )
        ticks = [r.replace(" ", "<br>", 1).replace("-task", "") for r in rows]  # short lines
        fig.update_xaxes(
            tickvals=list(range(len(rows))), ticktext=ticks, tickangle=0, row=1, col=col
        )
    fig.update_yaxes(title_text="test accuracy (last epoch)", tickformat=".1%", row=1, col=1)
    fig.update_layout(
        title="Test accuracy per seed: each point a seed; mean with its 95% interval over seeds",
        height=480,
    )
    return fig


def _seed_points(pts: pd.DataFrame, x: int, color: str, first: bool) -> go.Scatter:
    return go.Scatter(
        x=np.full(len(pts), x - 0.12),
        y=pts["acc"],
        mode="markers",
        name="one seed",
        legendgroup="seed",
        showlegend=first,
        marker={"color": color, "size": 8, "opacity": 0.7},
        customdata=pts[["seed", "trial_id"]],
        hovertemplate="seed %{customdata[0]} (run %{customdata[1]})<br>%{y:.2%}<extra></extra>",
    )


def _mean_marker(stats: pd.Series, x: int, color: str, first: bool) -> go.Scatter:
    has = not (pd.isna(stats["ci_low"]) or pd.isna(stats["ci_high"]))
    error = {"type": "data", "symmetric": False, "visible": has}
    if has:
        error.update(
            array=[stats["ci_high"] - stats["mean"]], arrayminus=[stats["mean"] - stats["ci_low"]]
        )
    note = f"n={stats['n']}" + ("" if has else ", no interval")
    return go.Scatter(
        x=[x + 0.12],
        y=[stats["mean"]],
        mode="markers",
        name="mean, 95% interval",
        legendgroup="mean",
        showlegend=first,
        marker={"color": color, "size": 12, "symbol": "diamond"},
        error_y=error,
        hovertemplate=f"mean %{{y:.2%}} ({note})<extra></extra>",
    )

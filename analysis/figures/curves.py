"""Learning curves: validation accuracy per epoch of each task's top trials.

`learning_curves_data` (extract: a Study -> one row per trial and epoch, pure) and
`plot_learning_curves` (render: one panel per task, a line per trial in its trial colour,
multi-task trials dashed beside single-task ones).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.figures._common import BASELINE_LABEL, integer_epochs, trial_colors, trial_key
from analysis.results import Study
from names import is_single_space, task_metric


def learning_curves_data(study: Study, k: int = 5) -> pd.DataFrame:
    """Validation accuracy per epoch of each task's k best trials (by that task's best
    accuracy), single- and multi-task alike: task, space, trial_id, label, rank, epoch, acc,
    multi (a multi-task space's trial), color (`trial_colors`), epochs and stop_reason."""
    cols = ["task", "space", "trial_id", "label", "rank", "epoch", "acc", "multi", "color"]
    cols += ["epochs", "max_epochs", "stop_reason"]
    colors = trial_colors(study)
    parts = []
    for task in study.task_names:
        key, acc = f"best_acc/{task}", task_metric("acc", task)
        if key not in study.trials or acc not in study.epochs:
            continue
        ranked = study.trials.dropna(subset=[key]).sort_values(
            [key, "order"], ascending=[False, True]
        )
        keep = ["space", "trial_id", "is_baseline", "epochs", "max_epochs", "stop_reason"]
        top = ranked.head(k)[keep].assign(rank=np.arange(1, min(k, len(ranked)) + 1))
        curves = study.epochs[["space", "trial_id", "epoch", acc]].merge(
            top, on=["space", "trial_id"]
        )
        curves = curves.rename(columns={acc: "acc"}).assign(task=task)
        curves["label"] = (
            curves["space"]
            + "/"
            + curves["trial_id"].astype(str)
            + np.where(curves["is_baseline"], BASELINE_LABEL, "")
        )
        parts.append(curves)
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True).dropna(subset=["acc"])
    out["multi"] = ~out["space"].map(is_single_space).astype(bool)
    out["color"] = [colors.get(trial_key(s, t)) for s, t in zip(out["space"], out["trial_id"])]
    return out.sort_values(["task", "rank", "epoch"])[cols].reset_index(drop=True)


def plot_learning_curves(data: pd.DataFrame) -> go.Figure:
    tasks = list(dict.fromkeys(data["task"]))
    fig = make_subplots(rows=1, cols=max(1, len(tasks)), subplot_titles=tasks, shared_yaxes=True)
    mixed = data["multi"].nunique() > 1  # dashes mean something only beside solid lines
    for col, task in enumerate(tasks, start=1):
        part = data[data["task"] == task]
        for (rank, label), curve in part.groupby(["rank", "label"], sort=True):
            r = curve.iloc[0]
            ran = f"{r['epochs']}/{int(r['max_epochs'])} epochs, {r['stop_reason']}"
            fig.add_trace(
                go.Scatter(
                    x=curve["epoch"],
                    y=curve["acc"],
                    mode="lines+markers",
                    name=f"#{rank} {label}",
                    legendgroup=task,
                    legendgrouptitle_text=task,
                    line={"dash": "dash" if mixed and r["multi"] else "solid", "color": r["color"]},
                    marker={"color": r["color"]},
                    hovertemplate=f"{label} ({ran})<br>epoch %{{x}}<br>acc %{{y:.2%}}"
                    f"<extra>{task}</extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    integer_epochs(fig, data["epoch"].max() if len(data) else 0)
    fig.update_yaxes(title_text="validation accuracy", tickformat=".1%", row=1, col=1)
    note = " (dashed: multi-task)" if mixed else ""
    fig.update_layout(
        title=f"Learning curves of the top trials per task{note}; one colour per trial",
        height=450,
        legend={"groupclick": "toggleitem"},
    )
    return fig

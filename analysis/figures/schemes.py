"""Sampling schemes compared: per scheme and task, the accuracy of the scheme's best trial.

`scheme_data` (extract: per scheme and task, its best trial by score at its best-score epoch;
single-task rows are each task's best single-task trial) and `plot_schemes` (render: grouped
bars, hatched where the trial stopped before max_epochs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.figures._common import color_in, scheme_order, stopped_early
from analysis.results import Study


def scheme_data(study: Study) -> pd.DataFrame:
    """Per sampling scheme and task: the accuracy of the scheme's best trial (by score) at its
    best-score epoch; single-task rows are each task's best single-task trial."""
    cols = ["scheme", "task", "acc", "space", "trial_id", "epoch", "trials"]
    cols += ["epochs", "max_epochs", "stop_reason", "early"]
    t = study.trials.dropna(subset=["best_score"])
    rows = []
    for space in study.spaces:
        part = t[t["space"] == space]
        if part.empty:
            continue
        group = "scheme" if len(study.space_tasks[space]) > 1 else "space"
        best = part.sort_values(["best_score", "order"], ascending=[False, True])
        counts = part.groupby(group).size()
        best = best.drop_duplicates(group)
        for task in study.space_tasks[space]:
            col = f"acc_at_best/{task}"
            if col not in best:
                continue
            rows.append(
                pd.DataFrame(
                    {
                        "scheme": best["scheme"],
                        "task": task,
                        "acc": best[col],
                        "space": space,
                        "trial_id": best["trial_id"],
                        "epoch": best["best_epoch"],
                        "trials": best[group].map(counts).to_numpy(),
                        "epochs": best["epochs"],
                        "max_epochs": best["max_epochs"],
                        "stop_reason": best["stop_reason"],
                        "early": stopped_early(
                            best["stop_reason"], best["epochs"], best["max_epochs"]
                        ),
                    }
                )
            )
    if not rows:
        return pd.DataFrame(columns=cols)
    out = pd.concat(rows, ignore_index=True).dropna(subset=["acc"])
    order = {s: i for i, s in enumerate(scheme_order(out["scheme"]))}
    return out.sort_values(
        ["scheme", "task"], key=lambda c: c.map(order) if c.name == "scheme" else c, kind="stable"
    )[cols].reset_index(drop=True)


def plot_schemes(data: pd.DataFrame) -> go.Figure:
    """Bars per scheme and task; each bar says the epochs its trial trained and, hatched,
    that it stopped before max_epochs (trials of different lengths side by side)."""
    tasks = list(dict.fromkeys(data["task"]))
    fig = go.Figure()
    for task in tasks:
        part = data[data["task"] == task]
        ran = [f"{int(e)}/{int(m)} ep" for e, m in zip(part["epochs"], part["max_epochs"])]
        fig.add_trace(
            go.Bar(
                x=part["scheme"],
                y=part["acc"],
                name=task,
                marker_color=color_in(task, tasks),
                marker_pattern_shape=np.where(part["early"], "/", ""),
                text=[f"{a:.1%}<br>{r}" for a, r in zip(part["acc"], ran)],
                textposition="outside",
                customdata=part[["space", "trial_id", "epoch", "trials", "stop_reason"]],
                hovertemplate="%{x}: %{y:.2%}<br>%{customdata[0]}/%{customdata[1]} epoch "
                "%{customdata[2]} (%{customdata[4]})<br>best of %{customdata[3]} trial(s)"
                "<extra>" + task + "</extra>",
            )
        )
    note = "each bar: epochs its trial trained / max"
    if data["early"].any():
        note += "; hatched: stopped before max_epochs (ASHA early-stopped or cut short)"
    fig.update_layout(
        title="Sampling schemes: best trial per scheme (by score), accuracy per task"
        f"<br><sup>{note}</sup>",
        barmode="group",
        height=480,
        yaxis_tickformat=".1%",
        yaxis_title="validation accuracy",
        xaxis_title="scheme",
    )
    return fig

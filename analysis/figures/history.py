"""Optimization history: each trial's score in search order, with the best so far per space.

`history_data` (extract: from optuna.db where there is one, else the trials' results) and
`plot_history` (render: markers per trial, a step line for the best so far, one colour a space).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from analysis.figures._common import color_in
from analysis.results import Study
from names import OPTUNA_DB


def history_data(study: Study) -> pd.DataFrame:
    """Per space, trial number and the score the searcher saw, with the best so far.

    From `optuna.db` when there is one (value = the score Ray told Optuna, i.e. the trial's
    last reported score); otherwise each trial's best score from its results, in trial order.
    """
    cols = ["space", "number", "value", "best_so_far", "state", "trial_id", "source"]
    ot = study.optuna_trials
    if not ot.empty:
        data = ot[["space", "number", "value", "state", "trial_id"]].assign(source=OPTUNA_DB)
    else:
        t = study.trials
        data = pd.DataFrame(
            {
                "space": t["space"],
                "number": t["order"],
                "value": t["best_score"],
                "state": t["stop_reason"],
                "trial_id": t["trial_id"],
                "source": "results",
            }
        )
    data = data.dropna(subset=["value"]).sort_values(["space", "number"], kind="stable")
    data["best_so_far"] = data.groupby("space")["value"].cummax()
    order = {s: i for i, s in enumerate(study.space_tasks)}
    data = data.sort_values(
        ["space", "number"],
        key=lambda c: c.map(order).fillna(len(order)) if c.name == "space" else c,
        kind="stable",
    )
    return data[cols].reset_index(drop=True)


def plot_history(data: pd.DataFrame) -> go.Figure:
    spaces = list(dict.fromkeys(data["space"]))
    fig = go.Figure()
    for space in spaces:
        part = data[data["space"] == space]
        color = color_in(space, spaces)
        fig.add_trace(
            go.Scatter(
                x=part["number"],
                y=part["value"],
                mode="markers",
                name=f"{space}: trial score",
                marker={"color": color},
                legendgroup=space,
                customdata=part[["trial_id", "state"]],
                hovertemplate="trial %{x} (%{customdata[0]}, %{customdata[1]})<br>"
                "score %{y:.2%}<extra>" + space + "</extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=part["number"],
                y=part["best_so_far"],
                mode="lines",
                name=f"{space}: best so far",
                line={"color": color, "shape": "hv"},
                legendgroup=space,
                hoverinfo="skip",
            )
        )
    source = data["source"].iloc[0] if len(data) else "results"
    what = "Optuna's value (last reported score)" if source == OPTUNA_DB else "best score"
    top = data["number"].max() if len(data) else 0
    fig.update_xaxes(**({"dtick": 1} if top <= 20 else {"tickformat": "d"}))
    fig.update_layout(
        title=f"Optimization history ({what}, from {source})",
        height=450,
        xaxis_title="trial number",
        yaxis_title="score (mean val. accuracy)",
        yaxis_tickformat=".1%",
    )
    return fig

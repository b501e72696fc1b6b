"""Learning rate x sampling scheme: each scored trial's learning rate against its best score.

`lr_scheme_data` (extract: one row per scored trial) and `plot_lr_scheme` (render: one panel per
space; marker shape the scheme, colour the trial, open when stopped early, the baseline a star).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.figures._common import (
    BASELINE_MARKER,
    scheme_order,
    stopped_early,
    trial_colors,
    trial_key,
)
from analysis.results import Study


def lr_scheme_data(study: Study) -> pd.DataFrame:
    """Per scored trial: space, trial_id, lr, best score, scheme, optimizer, stop reason,
    epochs trained and budget, whether it stopped early (`_early`) and its colour."""
    cols = ["space", "trial_id", "lr", "score", "scheme", "optimizer", "stop_reason", "is_baseline"]
    cols += ["epochs", "max_epochs", "early", "color"]
    t = study.trials
    if "lr" not in t:
        return pd.DataFrame(columns=cols)
    data = t.assign(score=t["best_score"], lr=pd.to_numeric(t["lr"], errors="coerce"))
    if "optimizer" not in data:
        data["optimizer"] = None
    data = data.dropna(subset=["lr", "score"])
    data = data[data["lr"] > 0].copy()
    data["early"] = stopped_early(data["stop_reason"], data["epochs"], data["max_epochs"])
    colors = trial_colors(study)
    data["color"] = [colors[trial_key(s, i)] for s, i in zip(data["space"], data["trial_id"])]
    return data[cols].reset_index(drop=True)


SYMBOLS = ["circle", "square", "diamond", "triangle-up", "pentagon", "hexagon", "triangle-down"]
SYMBOLS += ["cross", "x", "star-triangle-up", "hourglass"]


def _symbol(scheme: str, schemes: list[str], open_: np.ndarray) -> list[str]:
    base = SYMBOLS[schemes.index(scheme) % len(SYMBOLS)]
    return [f"{base}-open" if o else base for o in open_]


def _legend_entry(name: str, symbol: str) -> go.Scatter:
    """A legend-only trace: the marker shape of `name`, in grey (colours are trials)."""
    return go.Scatter(
        x=[None],
        y=[None],
        mode="markers",
        name=name,
        legendgroup=name,
        marker={"symbol": symbol, "color": "#777", "size": 10},
        hoverinfo="skip",
    )


HOVER = (
    "trial %{customdata[0]} (%{customdata[1]}, %{customdata[2]}, %{customdata[3]}/"
    "%{customdata[4]} epochs)<br>lr %{x:.2e}<br>score %{y:.2%}<extra>%{customdata[5]}</extra>"
)
CUSTOM = ["trial_id", "optimizer", "stop_reason", "epochs", "max_epochs", "scheme"]


def plot_lr_scheme(data: pd.DataFrame) -> go.Figure:
    """Marker shape: the scheme; colour: the trial (`trial_colors`); open: stopped early; the
    baseline is its own black star."""
    spaces = list(dict.fromkeys(data["space"]))
    schemes = scheme_order(data["scheme"])
    fig = make_subplots(rows=1, cols=max(1, len(spaces)), subplot_titles=spaces, shared_yaxes=False)
    shown: set[str] = set()
    for col, space in enumerate(spaces, start=1):
        _add_space(fig, data[data["space"] == space], schemes, col, shown)
        fig.update_xaxes(type="log", title_text="learning rate", row=1, col=col)
    fig.update_yaxes(tickformat=".1%")
    fig.update_yaxes(title_text="best score (validation)", row=1, col=1)
    early = (
        " Open markers: fewer epochs than max (ASHA-stopped or cut short)."
        if (data["early"].any())
        else ""
    )
    fig.update_layout(
        title="Learning rate vs best score; shape: sampling scheme, colour: trial, star: "
        f"baseline.<br><sup>{early.strip()}</sup>",
        height=480,
    )
    return fig


def _add_space(
    fig: go.Figure, part: pd.DataFrame, schemes: list[str], col: int, shown: set[str]
) -> None:
    """One space's panel: its trials per scheme, then its baseline star; a scheme's grey legend
    entry (and the baseline's) the first time it appears in any panel (`shown` keeps track)."""
    for scheme in schemes:
        pts = part[(part["scheme"] == scheme) & ~part["is_baseline"]]
        if pts.empty:
            continue
        if scheme not in shown:  # the legend shows the shape alone, in grey
            fig.add_trace(_legend_entry(scheme, _symbol(scheme, schemes, [False])[0]))
        fig.add_trace(_scheme_trace(pts, scheme, schemes), row=1, col=col)
        shown.add(scheme)
    base = part[part["is_baseline"]]
    if len(base):
        fig.add_trace(
            go.Scatter(
                x=base["lr"],
                y=base["score"],
                mode="markers",
                name="baseline",
                legendgroup="baseline",
                showlegend="baseline" not in shown,
                marker=BASELINE_MARKER,
                customdata=base[CUSTOM],
                hovertemplate=HOVER,
            ),
            row=1,
            col=col,
        )
        shown.add("baseline")


def _scheme_trace(pts: pd.DataFrame, scheme: str, schemes: list[str]) -> go.Scatter:
    """A scheme's trials in one panel: its shape, each in its trial colour, open if early."""
    marker = {
        "color": pts["color"],
        "size": 11,
        "line": {"width": 2, "color": pts["color"]},
    }
    marker["symbol"] = _symbol(scheme, schemes, pts["early"].to_numpy())
    return go.Scatter(
        x=pts["lr"],
        y=pts["score"],
        mode="markers",
        name=scheme,
        legendgroup=scheme,
        showlegend=False,
        marker=marker,
        customdata=pts[CUSTOM],
        hovertemplate=HOVER,
    )

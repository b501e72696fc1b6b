"""Confusion matrices: one heatmap per trial or run and task, row-normalized.

The extract is `analysis.confusion` (`best_confusions`, `confirmation_confusions`), which the
table and models share; `plot_confusion` renders one `Confusion`.
"""

from __future__ import annotations

import plotly.graph_objects as go

from analysis.confusion import Confusion


def plot_confusion(conf: Confusion) -> go.Figure:
    labels = list(conf.classes)
    fig = go.Figure(
        go.Heatmap(
            z=conf.normalized,
            x=labels,
            y=labels,
            colorscale="Blues",
            zmin=0,
            zmax=1,
            text=conf.counts,
            texttemplate="%{text}",
            customdata=conf.counts,
            colorbar={"title": {"text": "row share"}},
            hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata} (%{z:.1%})<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"{conf.space} / {conf.task} ({conf.split}): trial {conf.trial_id}, "
        f"epoch {conf.epoch}<br>"
        f"<sup>accuracy {conf.accuracy:.1%} of {conf.total} {conf.split} images; "
        f"{conf.selection}</sup>",
        xaxis_title="predicted",
        yaxis_title="true class",
        yaxis_autorange="reversed",
        height=480,
        margin={"l": 60, "r": 20, "t": 80, "b": 60},
        title_font_size=13,
    )  # no fixed width: it fits its box (480 px screens included)
    return fig

"""The multi-task Pareto front: every task's accuracy of each multi-task trial, task by task.

`pareto_front` (which points no other dominates), `pareto_data` / `pareto_figure_data` (extract:
the multi-task space's scored trials, their front and the single-task references) and
`plot_pareto` (render: one panel per task pair, front outlined, references dotted).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.figures._common import BASELINE_MARKER, trial_colors, trial_key
from analysis.results import Study
from analysis.search_table import best_trial  # one definition of "best"
from names import MULTI_SPACE, single_space, task_metric


def pareto_front(points: np.ndarray) -> np.ndarray:
    """Mask of the points that no other point dominates (maximize every column).

    A point dominates another when it is >= in every column and > in one. Rows with NaN are
    never on the front and dominate nothing; equal points are all on the front.
    """
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2:
        raise ValueError(f"points must be a 2-d array (n x objectives), got shape {pts.shape}")
    valid = ~np.isnan(pts).any(axis=1)
    front = valid.copy()
    others = pts[valid]
    for start in range(0, len(pts), 512):  # chunks keep the pairwise test's memory small
        block = pts[start : start + 512, None, :]
        ge = (others[None, :, :] >= block).all(axis=2)
        gt = (others[None, :, :] > block).any(axis=2)
        front[start : start + 512] &= ~(ge & gt).any(axis=1)
    return front


def pareto_data(study: Study, space: str = MULTI_SPACE) -> pd.DataFrame:
    """Per scored trial of the multi-task space: every task's accuracy at its best-score epoch
    (columns `acc/<task>`), whether it is on the Pareto front over all its tasks, its colour
    (`trial_colors`), epochs and stop reason."""
    tasks = list(study.space_tasks.get(space, ()))
    cols = ["trial_id", "scheme", "score", "epoch", "is_baseline", "on_front"]
    cols += ["color", "epochs", "stop_reason"]
    if len(tasks) < 2:
        return pd.DataFrame(columns=cols)
    acc = [f"acc_at_best/{t}" for t in tasks]
    t = study.space_trials(space)
    if not set(acc) <= set(t.columns):
        return pd.DataFrame(columns=cols + [task_metric("acc", x) for x in tasks])
    t = t.dropna(subset=acc)
    colors = trial_colors(study)
    data = pd.DataFrame(
        {
            "trial_id": t["trial_id"],
            "scheme": t["scheme"],
            "score": t["best_score"],
            "epoch": t["best_epoch"],
            "is_baseline": t["is_baseline"],
            "color": [colors[trial_key(space, i)] for i in t["trial_id"]],
            "epochs": t["epochs"],
            "stop_reason": t["stop_reason"],
        }
    )
    for task, col in zip(tasks, acc, strict=True):
        data[task_metric("acc", task)] = t[col]
    data["on_front"] = pareto_front(data[[task_metric("acc", x) for x in tasks]].to_numpy())
    return data.reset_index(drop=True)


def single_task_references(study: Study) -> dict[str, tuple[float, str]]:
    """Per task with a single-task space: the validation accuracy of that space's top trial
    (`search_table.best_trial`, the one confirmed as tuned-1) at its peak epoch, and the
    trial's key."""
    out = {}
    for task in study.task_names:
        space = single_space(task)
        if space not in study.space_tasks:
            continue
        best = best_trial(study.space_trials(space))
        value = None if best is None else best.get(f"acc_at_best/{task}")
        if value is not None and not pd.isna(value):
            out[task] = (float(value), trial_key(space, best["trial_id"]))
    return out


@dataclasses.dataclass
class Pareto:
    """The Pareto figure's data: the multi-task trials (`pareto_data`), their tasks and the
    single-task references (`single_task_references`)."""

    points: pd.DataFrame
    tasks: list[str]
    references: dict[str, tuple[float, str]]

    @property
    def empty(self) -> bool:
        return self.points.empty


def pareto_figure_data(study: Study, space: str = MULTI_SPACE) -> Pareto:
    """`Pareto` of a study's multi-task space."""
    points = pareto_data(study, space)
    tasks = [x for x in study.space_tasks.get(space, ()) if task_metric("acc", x) in points]
    return Pareto(points, tasks, single_task_references(study))


def _pair_panels(tasks: list[str]) -> list[tuple[str, str, int, int]]:
    """(x task, y task, row, col) of every task pair: one panel for two tasks, the upper
    triangle of a matrix for more."""
    return [
        (tasks[i], tasks[j], i + 1, j) for i in range(len(tasks)) for j in range(i + 1, len(tasks))
    ]


def _span(values: list[float]) -> list[float]:
    """An axis range holding every value with a margin (a single point still shows)."""
    low, high = min(values), max(values)
    pad = max(0.02, (high - low) * 0.08)
    return [low - pad, high + pad]


def plot_pareto(data: Pareto) -> go.Figure:
    pts, tasks = data.points, data.tasks
    n = max(1, len(tasks) - 1)
    fig = make_subplots(rows=n, cols=n, horizontal_spacing=0.08, vertical_spacing=0.08)
    first = True
    for xtask, ytask, row, col in _pair_panels(tasks):
        xcol, ycol = task_metric("acc", xtask), task_metric("acc", ytask)
        for trace in _pareto_traces(pts, xcol, ycol, xtask, ytask, first):
            fig.add_trace(trace, row=row, col=col)
        for task, axis in ((xtask, "x"), (ytask, "y")):
            if task in data.references:
                value = data.references[task][0]
                line = {"color": "#555", "dash": "dot", "width": 1}
                if axis == "x":
                    fig.add_vline(x=value, line=line, row=row, col=col)
                else:
                    fig.add_hline(y=value, line=line, row=row, col=col)
        xs = [*pts[xcol], *([data.references[xtask][0]] if xtask in data.references else [])]
        ys = [*pts[ycol], *([data.references[ytask][0]] if ytask in data.references else [])]
        fig.update_xaxes(
            title_text=f"{xtask} accuracy", range=_span(xs), tickformat=".1%", row=row, col=col
        )
        fig.update_yaxes(
            title_text=f"{ytask} accuracy", range=_span(ys), tickformat=".1%", row=row, col=col
        )
        first = False
    refs = "; ".join(f"{t} {v:.1%}" for t, (v, _) in data.references.items())
    sub = (
        f"dotted lines: best single-task validation accuracy ({refs})"
        if refs
        else "no single-task space: no single-task reference lines"
    )
    fig.update_layout(
        title="Multi-task trade-off: validation accuracy at each trial's best-score epoch"
        f"<br><sup>{sub}</sup>",
        height=max(500, 380 * n),
    )
    return fig


PARETO_CUSTOM = ["trial_id", "scheme", "epoch", "stop_reason"]  # a point's hover data


def _pareto_traces(
    pts: pd.DataFrame, xcol: str, ycol: str, xtask: str, ytask: str, legend: bool
) -> list[go.Scatter]:
    """Dominated trials faded, front trials large and outlined (both in their trial colours),
    the front's step line, and the baseline star."""
    hover = (
        "trial %{customdata[0]} (%{customdata[1]}, epoch %{customdata[2]}, "
        "%{customdata[3]})<br>"
        f"{xtask} %{{x:.2%}}<br>{ytask} %{{y:.2%}}<extra></extra>"
    )
    traces = []
    for on_front in (False, True):
        part = pts[pts["on_front"] == on_front]
        marker = {"color": part["color"], "size": 13 if on_front else 9}
        marker["line"] = {"width": 2 if on_front else 0, "color": "#d62728"}
        marker["opacity"] = 1.0 if on_front else 0.55
        traces.append(
            go.Scatter(
                x=part[xcol],
                y=part[ycol],
                mode="markers",
                name="on the Pareto front (red outline)" if on_front else "dominated (faded)",
                legendgroup=str(on_front),
                showlegend=legend,
                marker=marker,
                customdata=part[PARETO_CUSTOM],
                hovertemplate=hover,
            )
        )
    front = pts[pts["on_front"]].sort_values(xcol)
    traces.append(
        go.Scatter(
            x=front[xcol],
            y=front[ycol],
            mode="lines",
            name="front (all tasks)",
            legendgroup="front",
            showlegend=legend,
            line={"color": "#d62728", "shape": "vh", "width": 1},
            hoverinfo="skip",
        )
    )
    base = pts[pts["is_baseline"]]
    if len(base):
        traces.append(_baseline_trace(base, xcol, ycol, legend, hover))
    return traces


def _baseline_trace(
    base: pd.DataFrame, xcol: str, ycol: str, legend: bool, hover: str
) -> go.Scatter:
    """The baseline trial of the multi-task space: an open black star over its trial marker."""
    return go.Scatter(
        x=base[xcol],
        y=base[ycol],
        mode="markers",
        name="baseline configuration",
        legendgroup="baseline",
        showlegend=legend,
        marker={
            **BASELINE_MARKER,
            "symbol": "star-open",
            "size": 20,
            "line": {"width": 2, "color": "#111"},
        },
        customdata=base[PARETO_CUSTOM],
        hovertemplate=hover,
    )

"""The compared methods' figures (with `--compare-methods`): their Pareto front, curves, weights.

Each an extract (pure DataFrames, what the tests check) and a render (plotly):

- `method_pareto_data` / `plot_method_pareto`: each compared method's mean test accuracy on
  task A against task B (its confirmation runs, 95 % intervals as error bars), whether it is on
  the methods' Pareto front over all tasks (`pareto.pareto_front`), and the tuned single-task
  runs' mean test accuracy per task as reference lines.
- `method_curves_data` / `plot_method_curves`: per method, the validation score per epoch of
  the search trial its configuration comes from (confirmation runs score test once, at their
  last epoch, so the curves are the search's, on validation).
- `method_weights_data` / `plot_method_weights`: per method and task, the weight the method gave
  the task in each epoch of that search trial (`names.METHOD_WEIGHT`), where the rows record it
  (the loss weightings, and the aggregators that expose weights).
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis import arms, table_notes
from analysis import methods as methods_mod
from analysis import table as table_mod
from analysis.figures._common import PALETTE
from analysis.figures.pareto import pareto_front
from analysis.results import Study
from names import (
    METHOD_WEIGHT,
    MULTI_SPACE,
    SCORE,
    SINGLE_ARM,
    TEST,
    TUNED_BEST,
    VALIDATION,
    task_metric,
)

PARETO_COLUMNS = ["method", "label", "task", "n", "mean", "ci_low", "ci_high", "on_front"]


def method_colors(methods: list[str]) -> dict[str, str]:
    """One colour per method, in the study's order (`compared_methods`)."""
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}


@dataclasses.dataclass
class MethodPareto:
    """`points`: one row per compared method with runs and task (`PARETO_COLUMNS`: mean test
    accuracy, its interval, and `on_front` over all tasks); `references`: per task the tuned
    single-task runs' mean test accuracy; `tasks`: the table's."""

    points: pd.DataFrame
    references: dict[str, float]
    tasks: list[str]

    @property
    def empty(self) -> bool:
        return self.points.empty


def _section(study: Study) -> methods_mod.MethodsSection | None:
    if not methods_mod.compared_methods(study.settings) or table_notes.no_test_reason(study):
        return None
    tasks = table_mod.table_tasks(study)
    return methods_mod.methods_section(study, arms.seed_frame(study, tasks), tasks)


def _references(study: Study, tasks: list[str]) -> dict[str, float]:
    seeds = arms.seed_frame(study, tasks)
    out = {}
    for task in tasks:
        row = arms.summary_row(study, seeds, task, TUNED_BEST, SINGLE_ARM)
        if row["n"]:
            out[task] = float(row["mean"])
    return out


def method_pareto_data(study: Study) -> MethodPareto:
    """The methods' test accuracies per task, their Pareto front and the single-task
    references (empty without compared methods or test figures)."""
    section = _section(study)
    tasks = table_mod.table_tasks(study)
    if section is None:
        return MethodPareto(pd.DataFrame(columns=PARETO_COLUMNS), {}, tasks)
    s = section.summary
    points = s[(s["unit"] == "accuracy") & s["n"].gt(0)].copy()
    wide = points.pivot(index="method", columns="task", values="mean").reindex(columns=tasks)
    front = dict(zip(wide.index, pareto_front(wide.to_numpy())))
    points["on_front"] = points["method"].map(front).astype(bool)
    return MethodPareto(
        points[PARETO_COLUMNS].reset_index(drop=True), _references(study, tasks), tasks
    )


def plot_method_pareto(data: MethodPareto) -> go.Figure:
    """Task A against task B (the first two tasks), one marker per method with its intervals;
    front methods outlined; dotted lines at the single-task references."""
    xtask, ytask = (data.tasks + data.tasks)[:2]
    wide = {
        c: data.points.pivot(index="method", columns="task", values=c) for c in PARETO_COLUMNS[3:]
    }
    colors = method_colors(list(dict.fromkeys(data.points["method"])))
    fig = go.Figure()
    for method in colors:
        x, y = wide["mean"].loc[method, xtask], wide["mean"].loc[method, ytask]
        err = {
            t: (wide["ci_high"].loc[method, t] - wide["mean"].loc[method, t])
            for t in (xtask, ytask)
        }
        front = bool(wide["on_front"].loc[method, xtask])
        fig.add_trace(
            go.Scatter(
                x=[x],
                y=[y],
                mode="markers",
                name=method + (" (front)" if front else ""),
                marker={
                    "color": colors[method],
                    "size": 14 if front else 10,
                    "line": {"width": 2 if front else 0, "color": "#d62728"},
                },
                error_x={"type": "data", "array": [err[xtask]], "visible": True},
                error_y={"type": "data", "array": [err[ytask]], "visible": True},
                hovertemplate=f"{method}<br>{xtask} %{{x:.2%}}<br>{ytask} %{{y:.2%}}"
                "<extra></extra>",
            )
        )
    for task, add in ((xtask, fig.add_vline), (ytask, fig.add_hline)):
        if task in data.references:
            where = {"x" if add == fig.add_vline else "y": data.references[task]}
            add(**where, line={"color": "#555", "dash": "dot", "width": 1})
    fig.update_xaxes(title_text=f"{xtask} {TEST} accuracy", tickformat=".1%")
    fig.update_yaxes(title_text=f"{ytask} {TEST} accuracy", tickformat=".1%")
    fig.update_layout(
        title=f"Methods on the multi-task trade-off ({TEST}, mean over seeds, 95 % intervals)"
        f"<br><sup>dotted: {TUNED_BEST} single-task {TEST} accuracy; outlined: on the methods' "
        "Pareto front over all tasks</sup>",
        height=500,
    )
    return fig


def _sources(study: Study) -> dict[str, str]:
    """Per compared method with runs: the search trial its configuration comes from."""
    labels = methods_mod.study_method_labels(study)
    runs = study.plan.get(MULTI_SPACE, [])
    out = {}
    for method, label in labels.items():
        found = [r.get("source_trial") for r in runs if r.get("label") == label]
        if label and found and found[0] is not None:
            out[method] = str(found[0])
    return out


def _trial_epochs(study: Study, trial_id: str) -> pd.DataFrame:
    e = study.epochs
    return e[(e["space"] == MULTI_SPACE) & (e["trial_id"].astype(str) == trial_id)]


def method_curves_data(study: Study) -> pd.DataFrame:
    """Per method: its source search trial's validation score per epoch (`method`, `trial_id`,
    `epoch`, `score`, `split`)."""
    parts = []
    for method, trial_id in _sources(study).items():
        rows = _trial_epochs(study, trial_id)
        parts.append(
            pd.DataFrame(
                {
                    "method": method,
                    "trial_id": trial_id,
                    "epoch": rows["epoch"],
                    "score": pd.to_numeric(rows[SCORE], errors="coerce"),
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    cols = ["method", "trial_id", "epoch", "score"]
    return frame.reindex(columns=cols).dropna(subset=["score"]).assign(split=VALIDATION)


def plot_method_curves(data: pd.DataFrame) -> go.Figure:
    colors = method_colors(list(dict.fromkeys(data["method"])))
    fig = go.Figure()
    for method, curve in data.groupby("method", sort=False):
        fig.add_trace(
            go.Scatter(
                x=curve["epoch"],
                y=curve["score"],
                mode="lines+markers",
                name=str(method),
                line={"color": colors[method]},
                hovertemplate=f"{method} (search trial {curve['trial_id'].iloc[0]})"
                "<br>epoch %{x}<br>score %{y:.2%}<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="epoch", dtick=1)
    fig.update_yaxes(title_text=f"{VALIDATION} score (mean accuracy over tasks)", tickformat=".1%")
    fig.update_layout(
        title=f"Learning curves per method: its search trial, on {VALIDATION}", height=450
    )
    return fig


def method_weights_data(study: Study) -> pd.DataFrame:
    """Per method and task: the weight its source search trial gave the task in each epoch
    (`method`, `trial_id`, `task`, `epoch`, `weight`); methods whose rows record none are
    absent."""
    parts = []
    for method, trial_id in _sources(study).items():
        rows = _trial_epochs(study, trial_id)
        for task in study.space_tasks.get(MULTI_SPACE, ()):
            key = task_metric(METHOD_WEIGHT, task)
            if key not in rows or rows[key].isna().all():
                continue
            weight = pd.to_numeric(rows[key], errors="coerce")
            parts.append(
                pd.DataFrame(
                    {
                        "method": method,
                        "trial_id": trial_id,
                        "task": task,
                        "epoch": rows["epoch"],
                        "weight": weight,
                    }
                )
            )
    cols = ["method", "trial_id", "task", "epoch", "weight"]
    return (
        pd.concat(parts, ignore_index=True).dropna(subset=["weight"])
        if parts
        else pd.DataFrame(columns=cols)
    )


def plot_method_weights(data: pd.DataFrame) -> go.Figure:
    methods = list(dict.fromkeys(data["method"]))
    fig = make_subplots(rows=1, cols=len(methods), subplot_titles=methods, shared_yaxes=True)
    tasks = list(dict.fromkeys(data["task"]))
    colors = {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(tasks)}
    for col, method in enumerate(methods, start=1):
        for task in tasks:
            part = data[(data["method"] == method) & (data["task"] == task)]
            fig.add_trace(
                go.Scatter(
                    x=part["epoch"],
                    y=part["weight"],
                    mode="lines+markers",
                    name=task,
                    legendgroup=task,
                    showlegend=col == 1,
                    line={"color": colors[task]},
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="epoch", dtick=1, row=1, col=col)
    fig.update_yaxes(title_text="mean weight in the epoch", row=1, col=1)
    fig.update_layout(
        title="Per-task weights over training (each method's search trial)", height=420
    )
    return fig

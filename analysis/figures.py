"""The report's figures, each an extract step and a render step (as `optuna.visualization`).

`*_data(study)` is pure: it returns a DataFrame (or a small dataclass) computed from a loaded
`Study`, which the tests check against the raw files. `plot_*(data)` turns that into a plotly
figure and computes nothing of substance. An extract that finds nothing to show returns an empty
frame; the report then says what is missing instead of drawing an empty figure.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from analysis import table as table_mod
from analysis.confusion import Confusion
from analysis.results import SINGLE_SCHEME, Study, metric_task
from names import MULTI_SPACE, OPTUNA_DB, is_single_space, task_metric

PALETTE = qualitative.Plotly + qualitative.D3
BASELINE_LABEL = " (baseline)"  # after a trial's name where it is its space's baseline


def _color(name: str, names: list[str]) -> str:
    return PALETTE[names.index(name) % len(PALETTE)] if name in names else PALETTE[-1]


def _schemes(values: pd.Series) -> list[str]:
    """The schemes found, the single-task label first, then by name: a new scheme needs no
    change here (the registry, `trainables.sampling.SCHEMES`, is beyond analysis's reach)."""
    found = set(values.dropna().astype(str))
    return sorted(found, key=lambda s: (s != SINGLE_SCHEME, s))


# ---------------------------------------------------------------------------------------------
# learning curves of the top-k trials per task


def learning_curves_data(study: Study, k: int = 5) -> pd.DataFrame:
    """Validation accuracy per epoch of each task's k best trials (by that task's best
    accuracy), single- and multi-task alike: task, space, trial_id, label, rank, epoch, acc."""
    cols = ["task", "space", "trial_id", "label", "rank", "epoch", "acc"]
    parts = []
    for task in study.task_names:
        key, acc = f"best_acc/{task}", task_metric("acc", task)
        if key not in study.trials or acc not in study.epochs:
            continue
        ranked = study.trials.dropna(subset=[key]).sort_values(
            [key, "order"], ascending=[False, True]
        )
        top = ranked.head(k)[["space", "trial_id", "is_baseline"]].assign(
            rank=np.arange(1, min(k, len(ranked)) + 1)
        )
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
    return out.sort_values(["task", "rank", "epoch"])[cols].reset_index(drop=True)


def plot_learning_curves(data: pd.DataFrame) -> go.Figure:
    tasks = list(dict.fromkeys(data["task"]))
    fig = make_subplots(rows=1, cols=max(1, len(tasks)), subplot_titles=tasks, shared_yaxes=True)
    for col, task in enumerate(tasks, start=1):
        part = data[data["task"] == task]
        for (rank, label, space), curve in part.groupby(["rank", "label", "space"], sort=True):
            multi = not is_single_space(space)
            fig.add_trace(
                go.Scatter(
                    x=curve["epoch"],
                    y=curve["acc"],
                    mode="lines+markers",
                    name=f"#{rank} {label}",
                    legendgroup=task,
                    legendgrouptitle_text=task,
                    line={"dash": "dash" if multi else "solid"},
                    hovertemplate=f"{label}<br>epoch %{{x}}<br>acc %{{y:.2%}}<extra>{task}</extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="epoch", row=1, col=col)
    fig.update_yaxes(title_text="validation accuracy", tickformat=".1%", row=1, col=1)
    fig.update_layout(
        title="Learning curves of the top trials per task (dashed: multi-task)",
        height=450,
        legend={"groupclick": "toggleitem"},
    )
    return fig


# ---------------------------------------------------------------------------------------------
# optimization history


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
        color = _color(space, spaces)
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
    fig.update_layout(
        title=f"Optimization history ({what}, from {source})",
        height=450,
        xaxis_title="trial number",
        yaxis_title="score (mean val. accuracy)",
        yaxis_tickformat=".1%",
    )
    return fig


# ---------------------------------------------------------------------------------------------
# parameter importances


@dataclasses.dataclass
class Importances:
    frame: pd.DataFrame  # space, param, importance
    notes: dict[str, str]  # space -> why it has no importances


def importance_data(study: Study, min_trials: int = 4) -> Importances:
    """Optuna's parameter importances (its default evaluator) per space in `optuna.db`."""
    records, notes = [], {}
    if not study.optuna_studies:
        for space in study.spaces:
            notes[space] = f"no {OPTUNA_DB}: importances need the Optuna database"
        return Importances(pd.DataFrame(columns=["space", "param", "importance"]), notes)
    import optuna

    for space in study.spaces:
        ostudy = study.optuna_studies.get(space)
        if ostudy is None:
            notes[space] = f"not enough trials: {space} is not in {OPTUNA_DB}"
            continue
        done = ostudy.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if len(done) < min_trials:
            notes[space] = (
                f"not enough trials: {len(done)} complete, importances need at least {min_trials}"
            )
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values = optuna.importance.get_param_importances(ostudy)
        except Exception as exc:  # e.g. too few distinct values
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            notes[space] = f"not enough trials for importances ({first})"
            continue
        values = {k: v for k, v in values.items() if not math.isnan(v)}
        if not values:
            notes[space] = "not enough trials: importances are undefined (all scores equal?)"
            continue
        records += [{"space": space, "param": k, "importance": float(v)} for k, v in values.items()]
    return Importances(pd.DataFrame(records, columns=["space", "param", "importance"]), notes)


def plot_importances(data: Importances) -> go.Figure:
    spaces = list(dict.fromkeys(data.frame["space"]))
    fig = make_subplots(rows=1, cols=max(1, len(spaces)), subplot_titles=spaces)
    for col, space in enumerate(spaces, start=1):
        part = data.frame[data.frame["space"] == space].sort_values("importance")
        fig.add_trace(
            go.Bar(
                x=part["importance"],
                y=part["param"],
                orientation="h",
                name=space,
                marker_color=_color(space, spaces),
                showlegend=False,
                hovertemplate="%{y}: %{x:.3f}<extra>" + space + "</extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text="importance", row=1, col=col)
    fig.update_layout(title="Hyperparameter importances (Optuna, normalized per space)", height=400)
    return fig


# ---------------------------------------------------------------------------------------------
# learning rate x sampling scheme


def lr_scheme_data(study: Study) -> pd.DataFrame:
    """Per scored trial: space, trial_id, lr, best score, scheme, optimizer, stop reason."""
    cols = ["space", "trial_id", "lr", "score", "scheme", "optimizer", "stop_reason", "is_baseline"]
    t = study.trials
    if "lr" not in t:
        return pd.DataFrame(columns=cols)
    data = t.assign(score=t["best_score"], lr=pd.to_numeric(t["lr"], errors="coerce"))
    if "optimizer" not in data:
        data["optimizer"] = None
    data = data.dropna(subset=["lr", "score"])
    return data[data["lr"] > 0][cols].reset_index(drop=True)


def plot_lr_scheme(data: pd.DataFrame) -> go.Figure:
    spaces = list(dict.fromkeys(data["space"]))
    schemes = _schemes(data["scheme"])
    fig = make_subplots(rows=1, cols=max(1, len(spaces)), subplot_titles=spaces, shared_yaxes=False)
    shown: set[str] = set()
    for col, space in enumerate(spaces, start=1):
        part = data[data["space"] == space]
        for scheme in schemes:
            pts = part[part["scheme"] == scheme]
            if pts.empty:
                continue
            fig.add_trace(
                go.Scatter(
                    x=pts["lr"],
                    y=pts["score"],
                    mode="markers",
                    name=scheme,
                    legendgroup=scheme,
                    showlegend=scheme not in shown,
                    marker={
                        "color": _color(scheme, schemes),
                        "size": 9,
                        "symbol": np.where(pts["is_baseline"], "star", "circle"),
                    },
                    customdata=pts[["trial_id", "optimizer", "stop_reason"]],
                    hovertemplate="trial %{customdata[0]} (%{customdata[1]}, %{customdata[2]})"
                    "<br>lr %{x:.2e}<br>score %{y:.2%}<extra>" + scheme + "</extra>",
                ),
                row=1,
                col=col,
            )
            shown.add(scheme)
        fig.update_xaxes(type="log", title_text="learning rate", row=1, col=col)
    fig.update_yaxes(tickformat=".1%")
    fig.update_yaxes(title_text="best score", row=1, col=1)
    fig.update_layout(
        title="Learning rate vs best score, by sampling scheme (star: baseline)", height=450
    )
    return fig


# ---------------------------------------------------------------------------------------------
# sampling schemes compared


def scheme_data(study: Study) -> pd.DataFrame:
    """Per sampling scheme and task: the accuracy of the scheme's best trial (by score) at its
    best-score epoch; single-task rows are each task's best single-task trial."""
    cols = ["scheme", "task", "acc", "space", "trial_id", "epoch", "trials"]
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
                    }
                )
            )
    if not rows:
        return pd.DataFrame(columns=cols)
    out = pd.concat(rows, ignore_index=True).dropna(subset=["acc"])
    order = {s: i for i, s in enumerate(_schemes(out["scheme"]))}
    return out.sort_values(
        ["scheme", "task"], key=lambda c: c.map(order) if c.name == "scheme" else c, kind="stable"
    )[cols].reset_index(drop=True)


def plot_schemes(data: pd.DataFrame) -> go.Figure:
    tasks = list(dict.fromkeys(data["task"]))
    fig = go.Figure()
    for task in tasks:
        part = data[data["task"] == task]
        fig.add_trace(
            go.Bar(
                x=part["scheme"],
                y=part["acc"],
                name=task,
                marker_color=_color(task, tasks),
                text=[f"{a:.1%}" for a in part["acc"]],
                textposition="outside",
                customdata=part[["space", "trial_id", "epoch", "trials"]],
                hovertemplate="%{x}: %{y:.2%}<br>%{customdata[0]}/%{customdata[1]} epoch "
                "%{customdata[2]}<br>best of %{customdata[3]} trial(s)<extra>" + task + "</extra>",
            )
        )
    fig.update_layout(
        title="Sampling schemes: best trial per scheme (by score), accuracy per task",
        barmode="group",
        height=450,
        yaxis_tickformat=".1%",
        yaxis_title="validation accuracy",
        xaxis_title="scheme",
    )
    return fig


# ---------------------------------------------------------------------------------------------
# multi-task Pareto front


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
    """Per scored trial of the multi-task space: its first two tasks' accuracies at its
    best-score epoch and whether it is on their Pareto front (columns `acc/<task>`)."""
    tasks = list(study.space_tasks.get(space, ()))[:2]
    cols = ["trial_id", "scheme", "score", "epoch", "is_baseline", "on_front"]
    if len(tasks) < 2:
        return pd.DataFrame(columns=cols)
    acc = [f"acc_at_best/{t}" for t in tasks]
    t = study.space_trials(space)
    if not set(acc) <= set(t.columns):
        return pd.DataFrame(columns=cols + [task_metric("acc", x) for x in tasks])
    t = t.dropna(subset=acc)
    data = pd.DataFrame(
        {
            "trial_id": t["trial_id"],
            "scheme": t["scheme"],
            "score": t["best_score"],
            "epoch": t["best_epoch"],
            "is_baseline": t["is_baseline"],
            task_metric("acc", tasks[0]): t[acc[0]],
            task_metric("acc", tasks[1]): t[acc[1]],
        }
    )
    data["on_front"] = pareto_front(data[[task_metric("acc", x) for x in tasks]].to_numpy())
    return data.reset_index(drop=True)


def plot_pareto(data: pd.DataFrame) -> go.Figure:
    (xcol, xtask), (ycol, ytask) = [
        (c, metric_task(c, "acc")) for c in data.columns if metric_task(c, "acc")
    ][:2]
    fig = go.Figure()
    hover = (
        "trial %{customdata[0]} (%{customdata[1]}, epoch %{customdata[2]})<br>"
        f"{xtask} %{{x:.2%}}<br>{ytask} %{{y:.2%}}<extra></extra>"
    )
    for on_front, part in ((False, data[~data["on_front"]]), (True, data[data["on_front"]])):
        fig.add_trace(
            go.Scatter(
                x=part[xcol],
                y=part[ycol],
                mode="markers",
                name="Pareto front" if on_front else "dominated",
                marker={"size": 11 if on_front else 8, "color": "#d62728" if on_front else "#999"},
                customdata=part[["trial_id", "scheme", "epoch"]],
                hovertemplate=hover,
            )
        )
    front = data[data["on_front"]].sort_values(xcol)
    fig.add_trace(
        go.Scatter(
            x=front[xcol],
            y=front[ycol],
            mode="lines",
            name="front",
            line={"color": "#d62728", "shape": "vh"},
            hoverinfo="skip",
        )
    )
    base = data[data["is_baseline"]]
    if len(base):
        fig.add_trace(_baseline_marker(base, xcol, ycol, hover))
    fig.update_layout(
        title=f"Multi-task trade-off: {xtask} vs {ytask} accuracy at each trial's best-score epoch",
        xaxis_title=f"{xtask} accuracy",
        yaxis_title=f"{ytask} accuracy",
        xaxis_tickformat=".1%",
        yaxis_tickformat=".1%",
        height=500,
    )
    return fig


def _baseline_marker(base: pd.DataFrame, xcol: str, ycol: str, hover: str) -> go.Scatter:
    return go.Scatter(
        x=base[xcol],
        y=base[ycol],
        mode="markers",
        name="baseline configuration",
        marker={"size": 18, "symbol": "star-open", "color": "#1f77b4", "line_width": 2},
        customdata=base[["trial_id", "scheme", "epoch"]],
        hovertemplate=hover,
    )


# ---------------------------------------------------------------------------------------------
# test accuracy per seed: the comparison table's numbers with every seed shown

SEED_ACCURACY_COLUMNS = ["task", "row", "label", "fashion", "seed", "trial_id", "acc", "n"]
SEED_ACCURACY_COLUMNS += ["mean", "ci_low", "ci_high"]


def seed_accuracy_data(study: Study) -> pd.DataFrame:
    """Per task and table row (baseline/tuned x single/multi-task): one row per finished seed
    with its test accuracy at its last epoch, beside the row's mean and 95 % interval over
    seeds (NaN where there is none), from the table's own numbers (`table.seed_frame`,
    `table.summary_frame`). Empty without confirmation runs."""
    tasks = table_mod.table_tasks(study)
    seeds = table_mod.seed_frame(study, tasks)
    shown = seeds[seeds["counted"] & seeds["label"].isin(table_mod.SHOWN)]
    if shown.empty:
        return pd.DataFrame(columns=SEED_ACCURACY_COLUMNS)
    summary = table_mod.summary_frame(study, seeds, tasks)
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
    return [table_mod.row_name(lb, f) for lb in table_mod.SHOWN for f in table_mod.FASHIONS]


def plot_seed_accuracy(data: pd.DataFrame) -> go.Figure:
    tasks = list(dict.fromkeys(data["task"]))
    rows = seed_accuracy_rows()
    fig = make_subplots(rows=1, cols=max(1, len(tasks)), subplot_titles=tasks, shared_yaxes=True)
    colors = {"single": PALETTE[0], "multi": PALETTE[1]}
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
        fig.update_xaxes(tickvals=list(range(len(rows))), ticktext=rows, row=1, col=col)
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


# ---------------------------------------------------------------------------------------------
# confusion matrices (extract: analysis.confusion.best_confusions)


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
        width=560,
    )
    return fig


# ---------------------------------------------------------------------------------------------
# trial table


def trial_table_data(study: Study) -> pd.DataFrame:
    """One display row per trial: config, status and stop reason, scores."""
    t = study.trials
    out = pd.DataFrame(
        {
            "space": t["space"],
            "trial": t["trial_id"],
            "baseline": np.where(t["is_baseline"], "baseline", ""),
            "stop reason": t["stop_reason"],
            "epochs": t["epochs"].astype(str)
            + "/"
            + t["max_epochs"].map(lambda v: "?" if pd.isna(v) else str(int(v))),
            "best score": t["best_score"].map(_pct),
            "best epoch": t["best_epoch"].map(lambda v: "" if pd.isna(v) else str(int(v))),
        }
    )
    for key, name in (
        ("optimizer", "optimizer"),
        ("lr", "lr"),
        ("weight_decay", "wd"),
        ("lr_schedule", "schedule"),
        ("scheme", "scheme"),
    ):
        if key in t:
            fmt = _sci if key == "lr" else _text
            out[name] = t[key].map(fmt)
    for col in t.columns:
        if metric_task(col, "acc_at_best"):
            out[f"{metric_task(col, 'acc_at_best')} acc"] = t[col].map(_pct)
    return out.reset_index(drop=True)


def _sci(value: object) -> str:
    return "" if pd.isna(value) else f"{float(value):.2e}"


def _text(value: object) -> str:
    return "" if pd.isna(value) else str(value)


def _pct(value: float) -> str:
    return "" if pd.isna(value) else f"{value:.1%}"


def plot_trial_table(data: pd.DataFrame) -> go.Figure:
    widths = [
        max(len(str(c)), *(len(str(v)) for v in data[c]), 4) if len(data) else len(str(c))
        for c in data.columns
    ]
    fig = go.Figure(
        go.Table(
            columnwidth=widths,
            header={"values": list(data.columns), "align": "left", "fill_color": "#e8eef7"},
            cells={"values": [data[c] for c in data.columns], "align": "left"},
        )
    )
    fig.update_layout(title="Trials", height=min(1200, 160 + 24 * len(data)))
    return fig


def stop_reason_counts(study: Study) -> pd.DataFrame:
    """Trials per space and stop reason (spaces as rows)."""
    counts = pd.crosstab(study.trials["space"], study.trials["stop_reason"]).reindex(
        [s for s in study.spaces if s in set(study.trials["space"])]
    )
    counts.columns.name = None
    counts["total"] = counts.sum(axis=1)
    return counts

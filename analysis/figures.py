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

from analysis import arms
from analysis import table as table_mod
from analysis.confusion import Confusion
from analysis.results import SINGLE_SCHEME, Study, metric_task
from names import MULTI_SPACE, OPTUNA_DB, is_single_space, single_space, task_metric

PALETTE = qualitative.Plotly + qualitative.D3
BASELINE_LABEL = " (baseline)"  # after a trial's name where it is its space's baseline


MIN_IMPORTANCE_TRIALS = 20  # fewer finished trials than this: importances get a caution
BASELINE_MARKER = {"symbol": "star", "size": 16, "color": "#111", "line": {"width": 1}}
STOPPED_EARLY = "open marker: fewer epochs than max_epochs (ASHA early-stopped or incomplete)"


def _color(name: str, names: list[str]) -> str:
    return PALETTE[names.index(name) % len(PALETTE)] if name in names else PALETTE[-1]


def trial_key(space: object, trial_id: object) -> str:
    """The key of a trial in `trial_colors`: `<space>/<trial id>`."""
    return f"{space}/{trial_id}"


def trial_colors(study: Study) -> dict[str, str]:
    """One colour per trial (`trial_key`), in the study's trial order: every figure and the
    trials table draw a trial in the same colour."""
    keys = [trial_key(s, t) for s, t in zip(study.trials["space"], study.trials["trial_id"])]
    return {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(keys)}


def _integer_epochs(fig: go.Figure, top: float, **where: int) -> None:
    """Whole-number epoch ticks (no 1.5): every epoch up to 20, else plotly's spacing."""
    ticks = {"dtick": 1, "tick0": 1} if top and top <= 20 else {"tickformat": "d"}
    fig.update_xaxes(**ticks, **where)


def _early(stop_reason: pd.Series, epochs: pd.Series, max_epochs: pd.Series) -> np.ndarray:
    """True where a trial trained fewer epochs than its budget (not a still-running one)."""
    short = pd.to_numeric(epochs) < pd.to_numeric(max_epochs)
    return (short & ~stop_reason.isin(["running"])).to_numpy(dtype=bool)


def _schemes(values: pd.Series) -> list[str]:
    """The schemes found, the single-task label first, then by name: a new scheme needs no
    change here (the registry, `trainables.sampling.SCHEMES`, is beyond analysis's reach)."""
    found = set(values.dropna().astype(str))
    return sorted(found, key=lambda s: (s != SINGLE_SCHEME, s))


# ---------------------------------------------------------------------------------------------
# learning curves of the top-k trials per task


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
    _integer_epochs(fig, data["epoch"].max() if len(data) else 0)
    fig.update_yaxes(title_text="validation accuracy", tickformat=".1%", row=1, col=1)
    note = " (dashed: multi-task)" if mixed else ""
    fig.update_layout(
        title=f"Learning curves of the top trials per task{note}; one colour per trial",
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


# ---------------------------------------------------------------------------------------------
# parameter importances


@dataclasses.dataclass
class Importances:
    frame: pd.DataFrame  # space, param, importance
    notes: dict[str, str]  # space -> why it has no importances
    finished: dict[str, int] = dataclasses.field(default_factory=dict)  # complete Optuna trials

    @property
    def cautions(self) -> dict[str, str]:
        """Space -> a caution, where importances are shown from fewer than
        `MIN_IMPORTANCE_TRIALS` finished trials."""
        shown = set(self.frame["space"])
        return {
            space: f"only {n} finished trials (fewer than {MIN_IMPORTANCE_TRIALS}): these "
            "importances are a rough guess, not a finding"
            for space, n in self.finished.items()
            if space in shown and n < MIN_IMPORTANCE_TRIALS
        }


def importance_data(study: Study, min_trials: int = 4) -> Importances:
    """Optuna's parameter importances (its default evaluator) per space in `optuna.db`."""
    records, notes, finished = [], {}, {}
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
        finished[space] = len(done)
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
    frame = pd.DataFrame(records, columns=["space", "param", "importance"])
    return Importances(frame, notes, finished)


def plot_importances(data: Importances) -> go.Figure:
    """One panel per space, stacked (long parameter names never reach a neighbouring panel)."""
    spaces = list(dict.fromkeys(data.frame["space"]))
    titles = [
        f"{s} ({data.finished[s]} finished trials)" if s in data.finished else s for s in spaces
    ]
    fig = make_subplots(rows=max(1, len(spaces)), cols=1, subplot_titles=titles)
    for row, space in enumerate(spaces, start=1):
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
            row=row,
            col=1,
        )
    fig.update_xaxes(title_text="importance", row=len(spaces), col=1)
    fig.update_yaxes(automargin=True)
    caution = " — caution: few trials" if data.cautions else ""
    params = data.frame.groupby("space").size().max() if len(data.frame) else 1
    fig.update_layout(
        title=f"Hyperparameter importances (Optuna, normalized per space){caution}",
        height=140 + len(spaces) * (60 + 26 * params),
    )
    return fig


# ---------------------------------------------------------------------------------------------
# learning rate x sampling scheme


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
    data["early"] = _early(data["stop_reason"], data["epochs"], data["max_epochs"])
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


def plot_lr_scheme(data: pd.DataFrame) -> go.Figure:
    """Marker shape: the scheme; colour: the trial (`trial_colors`); open: stopped early; the
    baseline is its own black star."""
    spaces = list(dict.fromkeys(data["space"]))
    schemes = _schemes(data["scheme"])
    fig = make_subplots(rows=1, cols=max(1, len(spaces)), subplot_titles=spaces, shared_yaxes=False)
    hover = (
        "trial %{customdata[0]} (%{customdata[1]}, %{customdata[2]}, %{customdata[3]}/"
        "%{customdata[4]} epochs)<br>lr %{x:.2e}<br>score %{y:.2%}<extra>%{customdata[5]}</extra>"
    )
    custom = ["trial_id", "optimizer", "stop_reason", "epochs", "max_epochs", "scheme"]
    shown: set[str] = set()
    for col, space in enumerate(spaces, start=1):
        part = data[data["space"] == space]
        for scheme in schemes:
            pts = part[(part["scheme"] == scheme) & ~part["is_baseline"]]
            if pts.empty:
                continue
            marker = {
                "color": pts["color"],
                "size": 11,
                "line": {"width": 2, "color": pts["color"]},
            }
            marker["symbol"] = _symbol(scheme, schemes, pts["early"].to_numpy())
            if scheme not in shown:  # the legend shows the shape alone, in grey
                fig.add_trace(_legend_entry(scheme, _symbol(scheme, schemes, [False])[0]))
            fig.add_trace(
                go.Scatter(
                    x=pts["lr"],
                    y=pts["score"],
                    mode="markers",
                    name=scheme,
                    legendgroup=scheme,
                    showlegend=False,
                    marker=marker,
                    customdata=pts[custom],
                    hovertemplate=hover,
                ),
                row=1,
                col=col,
            )
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
                    customdata=base[custom],
                    hovertemplate=hover,
                ),
                row=1,
                col=col,
            )
            shown.add("baseline")
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


# ---------------------------------------------------------------------------------------------
# sampling schemes compared


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
                        "early": _early(best["stop_reason"], best["epochs"], best["max_epochs"]),
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
                marker_color=_color(task, tasks),
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
    from analysis.search_table import best_trial

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
    custom = ["trial_id", "scheme", "epoch", "stop_reason"]
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
                customdata=part[custom],
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
        traces.append(
            go.Scatter(
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
                customdata=base[custom],
                hovertemplate=hover,
            )
        )
    return traces


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
        margin={"l": 60, "r": 20, "t": 80, "b": 60},
        title_font_size=13,
    )  # no fixed width: it fits its box (480 px screens included)
    return fig


# ---------------------------------------------------------------------------------------------
# trial table


def trial_table_data(study: Study) -> pd.DataFrame:
    """One display row per trial: config, status and stop reason, scores."""
    t = study.trials
    out = pd.DataFrame(
        {
            "trial": t["trial_id"],
            "space": t["space"],
            "stop reason": t["stop_reason"],
            "epochs": t["epochs"].astype(str)
            + "/"
            + t["max_epochs"].map(lambda v: "?" if pd.isna(v) else str(int(v))),
            "best score": t["best_score"].map(_pct),
            "best epoch": t["best_epoch"].map(lambda v: "" if pd.isna(v) else str(int(v))),
            "baseline": np.where(t["is_baseline"], "baseline", ""),
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


def trial_table_colors(study: Study) -> dict[int, str]:
    """Row position in `trial_table_data` -> the trial's colour (`trial_colors`)."""
    colors = trial_colors(study)
    keys = [trial_key(s, t) for s, t in zip(study.trials["space"], study.trials["trial_id"])]
    return {i: colors[k] for i, k in enumerate(keys)}


def stop_reason_counts(study: Study) -> pd.DataFrame:
    """Trials per space and stop reason (spaces as rows)."""
    counts = pd.crosstab(study.trials["space"], study.trials["stop_reason"]).reindex(
        [s for s in study.spaces if s in set(study.trials["space"])]
    )
    counts.columns.name = None
    counts["total"] = counts.sum(axis=1)
    return counts


# ---------------------------------------------------------------------------------------------
# parallel coordinates of the multi-task space

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

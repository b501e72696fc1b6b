"""Hyperparameter importances: Optuna's evaluator per space of optuna.db.

`importance_data` (extract: an `Importances` with the frame, why a space has none, and a caution
where few trials finished) and `plot_importances` (render: one bar panel per space, stacked).
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analysis.figures._common import color_in
from analysis.results import Study
from names import OPTUNA_DB

MIN_IMPORTANCE_TRIALS = 20  # fewer finished trials than this: importances get a caution


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
                marker_color=color_in(space, spaces),
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

"""Shared by every figure family: the palette, one colour per trial, the baseline's marker.

Also the small helpers several families need: whole-number epoch ticks, which trials stopped
early, and the order the sampling schemes are shown in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from analysis.results import SINGLE_SCHEME, Study

PALETTE = qualitative.Plotly + qualitative.D3
BASELINE_LABEL = " (baseline)"  # after a trial's name where it is its space's baseline
BASELINE_MARKER = {"symbol": "star", "size": 16, "color": "#111", "line": {"width": 1}}


def color_in(name: str, names: list[str]) -> str:
    """A name's colour by its place in `names` (one not in it: the palette's last)."""
    return PALETTE[names.index(name) % len(PALETTE)] if name in names else PALETTE[-1]


def trial_key(space: object, trial_id: object) -> str:
    """The key of a trial in `trial_colors`: `<space>/<trial id>`."""
    return f"{space}/{trial_id}"


def trial_colors(study: Study) -> dict[str, str]:
    """One colour per trial (`trial_key`), in the study's trial order: every figure and the
    trials table draw a trial in the same colour."""
    keys = [trial_key(s, t) for s, t in zip(study.trials["space"], study.trials["trial_id"])]
    return {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(keys)}


def integer_epochs(fig: go.Figure, top: float, **where: int) -> None:
    """Whole-number epoch ticks (no 1.5): every epoch up to 20, else plotly's spacing."""
    ticks = {"dtick": 1, "tick0": 1} if top and top <= 20 else {"tickformat": "d"}
    fig.update_xaxes(**ticks, **where)


def stopped_early(stop_reason: pd.Series, epochs: pd.Series, max_epochs: pd.Series) -> np.ndarray:
    """True where a trial trained fewer epochs than its budget (not a still-running one)."""
    short = pd.to_numeric(epochs) < pd.to_numeric(max_epochs)
    return (short & ~stop_reason.isin(["running"])).to_numpy(dtype=bool)


def scheme_order(values: pd.Series) -> list[str]:
    """The schemes found, the single-task label first, then by name: a new scheme needs no
    change here (the registry, `trainables.sampling.SCHEMES`, is beyond analysis's reach)."""
    found = set(values.dropna().astype(str))
    return sorted(found, key=lambda s: (s != SINGLE_SCHEME, s))

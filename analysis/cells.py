"""How one cell of the comparison tables is written: accuracies with their intervals, differences
with their tests, Δm, counts and ratios (pure formatting of recorded numbers; no statistics).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

PCT = 100.0  # accuracy fraction -> points
CLIPPED = "*"  # marks an interval bound clipped to [0, 100] %


def text_of(value: object) -> str | None:
    """A reason from a frame cell: the text, or None for None, NaN or ""."""
    return value if isinstance(value, str) and value else None


def is_nan(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _half(value: float) -> str:
    """An interval's half-width: one decimal from 1 up, else two significant digits."""
    return f"{value:.1f}" if value >= 1 else f"{value:.2g}"


def format_p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def format_acc(
    mean: float,
    n: int,
    low: float,
    high: float,
    why: str | None = None,
    planned: int | None = None,
    not_counted: str | None = None,
    clipped: bool = False,
) -> str:
    """Mean test accuracy over n seeds (fractions): "80.6% ± 1.2 (n=3)", "80.6% (1 seed, no
    interval)", "80.6% (n=3, all 3 seeds equal: no interval)"; with seeds that did not count
    (`planned` > n, `not_counted` says why) "80.6% ± 1.2 (n=2 of 3, 1 diverged)"; an interval
    `clipped` to [0, 1] shows its bounds, the clipped one marked: "58.3% [16.1%, 100.0%*] (n=2)"."""
    count = f"n={n}"
    if planned and planned > n:
        count = f"n={n} of {planned}" + (f", {not_counted}" if not_counted else "")
    if n == 1:
        one = "1 seed" if count == "n=1" else count
        return f"{mean * PCT:.1f}% ({one}, no interval)"
    if is_nan(low) or is_nan(high):
        return f"{mean * PCT:.1f}% ({count}, {why or 'no spread'}: no interval)"
    if clipped:
        return f"{mean * PCT:.1f}% [{format_bound(low)}, {format_bound(high)}] ({count})"
    return f"{mean * PCT:.1f}% ± {_half((high - low) / 2 * PCT)} ({count})"


def format_bound(value: float) -> str:
    """An accuracy interval's bound, marked when it is a clipped one (exactly 0 or 1)."""
    return f"{value * PCT:.1f}%" + (CLIPPED if value in (0.0, 1.0) else "")


def clip_interval(low: float, high: float) -> tuple[float, float, bool]:
    """An accuracy interval (fractions) clipped to [0, 1], and whether it was."""
    if is_nan(low) or is_nan(high):
        return low, high, False
    clipped = (max(0.0, low), min(1.0, high))
    return clipped[0], clipped[1], clipped != (low, high)


def _test_text(test: str | None, p: float, p_holm: float | None, mde: float | None) -> str:
    """ "paired t, p=0.012, Holm p=0.048, MDE 2.1" (the parts that are given)."""
    parts = [test] if test else []
    parts.append(format_p(p))
    if not is_nan(p_holm):
        parts.append("Holm " + format_p(p_holm))
    if not is_nan(mde):
        parts.append(f"MDE {mde:.1f}")
    return ", ".join(parts)


def format_difference(
    diff: float,
    low: float,
    high: float,
    p: float,
    why: str | None,
    test: str | None = None,
    p_holm: float | None = None,
    mde: float | None = None,
) -> str:
    """multi - single in points: "-2.5 ± 2.6 (p=0.060)", with its test, Holm-adjusted p and
    minimum detectable difference where given: "-2.5 ± 2.6 (paired t, p=0.060, Holm p=0.180,
    MDE 3.4)"; or "-2.5 (an arm has 1 seed: no interval, p undefined)"."""
    if is_nan(low) or is_nan(high) or is_nan(p):
        return f"{diff:+.1f} ({why or 'undefined'}: no interval, p undefined)"
    return f"{diff:+.1f} ± {_half((high - low) / 2)} ({_test_text(test, p, p_holm, mde)})"


def format_delta_m(
    value: float,
    n: int,
    low: float,
    high: float,
    why: str | None,
    p: float | None = None,
    p_holm: float | None = None,
    mde: float | None = None,
) -> str:
    """Δm in %: "-3.1% ± 1.9 (n=3 seed pairs)", with its p-value, Holm-adjusted p and minimum
    detectable Δm where given: "-3.1% ± 1.9 (n=3 seed pairs, p=0.021, Holm p=0.084, MDE 2.4)";
    or "-3.1% (1 seed pair, no interval)"."""
    if n == 1:
        return f"{value:+.1f}% (1 seed pair, no interval)"
    if is_nan(low) or is_nan(high):
        return f"{value:+.1f}% (n={n} seed pairs, {why or 'no spread'}: no interval)"
    test = f", {_test_text(None, p, p_holm, mde)}" if not is_nan(p) else ""
    return f"{value:+.1f}% ± {_half((high - low) / 2)} (n={n} seed pairs{test})"


def _count(value: float) -> str:
    return "" if is_nan(value) else f"{value:,.0f}"


def acc_cell(r: Mapping) -> str:
    if text_of(r["missing"]):
        return r["missing"]
    return format_acc(
        r["mean"],
        int(r["n"]),
        r["ci_low"],
        r["ci_high"],
        text_of(r["no_interval"]),
        planned=int(r["planned"]),
        not_counted=text_of(r["not_counted"]),
        clipped=bool(r["clipped"]),
    )


def diff_cell(d: Mapping | None) -> str:
    if d is None:
        return ""
    if text_of(d["missing"]):
        return "n/a " + d["missing"].removeprefix("missing ")
    return format_difference(
        d["diff_pts"],
        d["ci_low"],
        d["ci_high"],
        d["p_value"],
        text_of(d["no_interval"]),
        text_of(d["test"]),
        d["p_holm"],
        d["mde"],
    )


def delta_m_cell(d: Mapping) -> str:
    if text_of(d["missing"]):
        return "n/a " + d["missing"].removeprefix("missing ")
    return format_delta_m(
        d["delta_m_pct"],
        int(d["n"]),
        d["ci_low"],
        d["ci_high"],
        text_of(d["no_interval"]),
        d["p_value"],
        d["p_holm"],
        d["mde"],
    )


def _times(ratio: float) -> str:
    """A multiple: "4.8×", "0.5×", "0.04×"."""
    return f"{ratio:.1f}×" if ratio >= 1 else f"{ratio:.2g}×"

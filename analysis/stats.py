"""The statistics of the comparison table: a mean over seeds with its 95 % Student-t confidence
interval, and the difference of two independent means with Welch's interval and t-test.

Small pure functions over plain sequences of numbers, on top of `scipy.stats` (no statistics by
hand). Where an interval cannot be estimated they say so instead of inventing one: fewer than two
seeds, or seeds that all gave the same number, give no interval (never "± 0") and, for a
difference, no p-value; the reason is in `why`. They never warn and never raise on such input.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95  # every interval of the table


class _Interval:
    """What an estimate with bounds `low`, `high` (None: no interval) offers the table."""

    low: float | None
    high: float | None
    why: str | None

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    @property
    def half_width(self) -> float | None:
        """The interval's half-width (it is symmetric about the estimate), or None."""
        return None if not self.has_interval else (self.high - self.low) / 2

    def bounds(self) -> dict[str, float | str | None]:
        """Its table columns: `ci_low`, `ci_high` (NaN without an interval) and `no_interval`."""
        nan = math.nan
        return {
            "ci_low": self.low if self.has_interval else nan,
            "ci_high": self.high if self.has_interval else nan,
            "no_interval": self.why,
        }


@dataclasses.dataclass(frozen=True)
class Estimate(_Interval):
    """A mean over `n` values with its confidence interval [`low`, `high`], or `why` there is
    none (then `low` and `high` are None; e.g. "1 seed", "all 3 seeds equal")."""

    mean: float
    n: int
    low: float | None = None
    high: float | None = None
    why: str | None = None


@dataclasses.dataclass(frozen=True)
class Difference(_Interval):
    """`diff` = mean(a) - mean(b) of two independent samples, with Welch's confidence interval
    [`low`, `high`], degrees of freedom `df` and two-sided t-test p-value `p`; where those are
    undefined they are None and `why` says why."""

    diff: float
    n_a: int
    n_b: int
    low: float | None = None
    high: float | None = None
    p: float | None = None
    df: float | None = None
    why: str | None = None


def _values(values: Sequence[float]) -> np.ndarray:
    """The finite values as a float array (NaN and missing values dropped)."""
    array = np.asarray(list(values), dtype=float).ravel()
    return array[np.isfinite(array)]


def _all_equal(array: np.ndarray) -> bool:
    return len(array) > 0 and float(np.ptp(array)) == 0.0


def _seeds(n: int) -> str:
    return f"{n} seed" if n == 1 else f"{n} seeds"


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """The mean of `values` (NaN dropped) with its Student-t confidence interval (n - 1 degrees
    of freedom, standard error `scipy.stats.sem`). No interval for n < 2 or when every value is
    the same; NaN mean for no values."""
    array = _values(values)
    n = len(array)
    if n == 0:
        return Estimate(math.nan, 0, why="no values")
    mean = float(np.mean(array))
    if n < 2:
        return Estimate(mean, n, why=_seeds(n))
    if _all_equal(array):
        return Estimate(mean, n, why=f"all {n} seeds equal")
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=stats.sem(array))
    return Estimate(mean, n, float(low), float(high))


def welch(a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE) -> Difference:
    """mean(a) - mean(b) with Welch's confidence interval and two-sided t-test p-value
    (`scipy.stats.ttest_ind(a, b, equal_var=False)`), NaN dropped. Undefined (None, with `why`)
    when an arm has fewer than 2 values or neither arm varies."""
    x, y = _values(a), _values(b)
    if not len(x) or not len(y):
        return Difference(math.nan, len(x), len(y), why="an arm has no values")
    diff = float(np.mean(x) - np.mean(y))
    if min(len(x), len(y)) < 2:
        return Difference(diff, len(x), len(y), why="an arm has 1 seed")
    if _all_equal(x) and _all_equal(y):
        return Difference(diff, len(x), len(y), why="no spread in either arm")
    with warnings.catch_warnings():
        # one constant arm is a valid Welch test; scipy's precision note about it is not news
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        result = stats.ttest_ind(x, y, equal_var=False)
        interval = result.confidence_interval(confidence)
    return Difference(
        diff,
        len(x),
        len(y),
        float(interval.low),
        float(interval.high),
        float(result.pvalue),
        float(result.df),
    )

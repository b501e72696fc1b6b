"""The statistics of the comparison table and the verdict: a mean over seeds with its 95 %
Student-t confidence interval; the difference of two arms, paired over seeds when both have the
same seeds (paired t, n - 1 degrees of freedom) and Welch's otherwise; Holm's step-down correction
of a family of p-values; and the minimum detectable difference of a comparison (80 % power,
two-sided 0.05, from the noncentral t).

Small pure functions over plain sequences (or seed -> value mappings) of numbers, on top of
`scipy.stats` (no statistics by hand where scipy has them). Where an interval cannot be estimated
they say so instead of inventing one: fewer than two seeds, or seeds that all gave the same number
(for a paired difference: the same difference), give no interval (never "± 0") and, for a
difference, no p-value; the reason is in `why`. They never warn and never raise on such input.

Why paired: seed r of every arm starts from the same initialisation and (for a shared task) the
same batch order, so the arms are not independent; the paired t over seed pairs uses that (and is
valid whether or not the pairs are correlated). Welch's test remains for arms whose seeds differ
(a seed that failed in one arm only).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import optimize, stats

CONFIDENCE = 0.95  # every interval of the table
ALPHA = 0.05  # two-sided level of every test (and of the Holm-adjusted verdict)
POWER = 0.80  # the power of the minimum detectable difference
PAIRED = "paired t"
WELCH = "Welch"


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
    """`diff` = mean(a) - mean(b), with the confidence interval [`low`, `high`] of `test`
    (`PAIRED` or `WELCH`), its degrees of freedom `df` and two-sided p-value `p`, and the
    minimum difference it could detect (`mde`, same unit, 80 % power, two-sided 0.05; None with
    `mde_why`). Where the interval is undefined it is None and `why` says why."""

    diff: float
    n_a: int
    n_b: int
    low: float | None = None
    high: float | None = None
    p: float | None = None
    df: float | None = None
    why: str | None = None
    test: str | None = None
    mde: float | None = None
    mde_why: str | None = None


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
    (`scipy.stats.ttest_ind(a, b, equal_var=False)`), NaN dropped, and its `mde`. Undefined
    (None, with `why`) when an arm has fewer than 2 values or neither arm varies."""
    x, y = _values(a), _values(b)
    if not len(x) or not len(y):
        return Difference(math.nan, len(x), len(y), why="an arm has no values", test=WELCH)
    diff = float(np.mean(x) - np.mean(y))
    if min(len(x), len(y)) < 2:
        return _undefined(diff, len(x), len(y), "an arm has 1 seed", WELCH)
    if _all_equal(x) and _all_equal(y):
        return _undefined(diff, len(x), len(y), "no spread in either arm", WELCH)
    with warnings.catch_warnings():
        # one constant arm is a valid Welch test; scipy's precision note about it is not news
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        result = stats.ttest_ind(x, y, equal_var=False)
        interval = result.confidence_interval(confidence)
    detectable, why = mde(np.std(x, ddof=1), len(x), np.std(y, ddof=1), len(y))
    return Difference(
        diff,
        len(x),
        len(y),
        float(interval.low),
        float(interval.high),
        float(result.pvalue),
        float(result.df),
        test=WELCH,
        mde=detectable,
        mde_why=why,
    )


def _undefined(diff: float, n_a: int, n_b: int, why: str, test: str) -> Difference:
    """A difference without interval, p-value or detectable difference, all for one reason."""
    return Difference(diff, n_a, n_b, why=why, test=test, mde_why=why)


def _by_seed(values: Mapping[object, float]) -> dict[object, float]:
    """The seeds with a finite value."""
    return {s: float(v) for s, v in values.items() if v is not None and np.isfinite(float(v))}


def paired(
    a_by_seed: Mapping[object, float],
    b_by_seed: Mapping[object, float],
    confidence: float = CONFIDENCE,
) -> Difference:
    """mean(a) - mean(b) over seeds (`{seed: value}`, NaN dropped). When both arms have the same
    seeds: the paired t over the seed pairs (`scipy.stats.ttest_rel`, n - 1 degrees of freedom),
    its interval and p-value, and the `mde` from the SD of the differences; undefined (None, with
    `why`) for fewer than 2 pairs or differences that are all equal. When the seeds differ:
    `welch` over every value of each arm."""
    a, b = _by_seed(a_by_seed), _by_seed(b_by_seed)
    if set(a) != set(b) or not a:
        return welch(list(a.values()), list(b.values()), confidence)
    seeds = sorted(a, key=str)
    x, y = np.array([a[s] for s in seeds]), np.array([b[s] for s in seeds])
    n, diffs = len(seeds), x - y
    diff = float(np.mean(diffs))
    if n < 2:
        return _undefined(diff, n, n, "1 seed pair", PAIRED)
    if _all_equal(diffs):
        return _undefined(diff, n, n, f"all {n} seed pairs differ equally", PAIRED)
    result = stats.ttest_rel(x, y)
    interval = result.confidence_interval(confidence)
    detectable, why = mde(float(np.std(diffs, ddof=1)), n)
    return Difference(
        diff,
        n,
        n,
        float(interval.low),
        float(interval.high),
        float(result.pvalue),
        float(result.df),
        test=PAIRED,
        mde=detectable,
        mde_why=why,
    )


def one_sample(
    values_by_seed: Mapping[object, float], confidence: float = CONFIDENCE
) -> Difference:
    """The mean of per-seed values (e.g. Δm of each seed pair) against 0: `paired` against
    zeros, i.e. the one-sample t (as `scipy.stats.ttest_1samp`, n - 1 df)."""
    values = _by_seed(values_by_seed)
    return paired(values, dict.fromkeys(values, 0.0), confidence)


def holm(pvalues: Sequence[float | None]) -> list[float]:
    """Holm-Bonferroni step-down adjusted p-values of one family, in the input's order: the
    i-th smallest of the m defined p-values times (m - i + 1), made non-decreasing, at most 1.
    Undefined p-values (None, NaN) are not tests of the family: they stay NaN and do not count
    in m. (`scipy.stats.false_discovery_control` offers only Benjamini-Hochberg/Yekutieli.)"""
    p = np.array([math.nan if v is None else float(v) for v in pvalues], dtype=float)
    out = np.full(len(p), math.nan)
    defined = np.flatnonzero(np.isfinite(p))
    order = defined[np.argsort(p[defined], kind="stable")]
    m = len(order)
    steps = p[order] * (m - np.arange(m))
    out[order] = np.minimum(1.0, np.maximum.accumulate(steps)) if m else steps
    return out.tolist()


def _power(noncentrality: float, df: float, alpha: float) -> float:
    """Power of the two-sided t-test at level `alpha` (noncentral t, `scipy.stats.nct`); the
    lower tail, negligible and NaN in scipy for large noncentralities, counts as 0 there."""
    crit = stats.t.ppf(1 - alpha / 2, df)
    low = stats.nct.cdf(-crit, df, noncentrality)
    return float(stats.nct.sf(crit, df, noncentrality) + (0.0 if math.isnan(low) else low))


def mde(
    sd: float,
    n: int,
    sd_b: float | None = None,
    n_b: int | None = None,
    power: float = POWER,
    alpha: float = ALPHA,
) -> tuple[float | None, str | None]:
    """The minimum detectable difference (same unit as `sd`) of a two-sided t-test at `alpha`
    with `power`, and None or why it is undefined. Paired (only `sd`, `n`): `sd` is the SD of
    the n differences, standard error sd / sqrt(n), n - 1 df. Welch (`sd_b`, `n_b` given): the
    arms' SDs and sizes, Welch-Satterthwaite df. Solves power(effect / se) = `power` for the
    effect with the noncentral t."""
    if sd_b is None or n_b is None:
        se2, df = (sd**2 / n, n - 1) if n >= 2 else (math.nan, 0)
    elif min(n, n_b) >= 2:
        va, vb = sd**2 / n, sd_b**2 / n_b
        se2 = va + vb
        df = se2**2 / (va**2 / (n - 1) + vb**2 / (n_b - 1)) if se2 > 0 else math.nan
    else:
        return None, "an arm has 1 seed"
    if df < 1 or not np.isfinite(se2):
        return None, "fewer than 2 seed pairs"
    if se2 == 0:
        return None, "no spread between seeds"
    return float(_noncentrality(float(df), power, alpha) * math.sqrt(se2)), None


@functools.lru_cache(maxsize=1024)
def _noncentrality(df: float, power: float, alpha: float) -> float:
    """The noncentrality (effect / standard error) the two-sided t-test with `df` degrees of
    freedom detects with `power` at `alpha` (1.96 + 0.84 = 2.80 for large df, 16.3 for df 1)."""
    top = 1e3  # far beyond what any df >= 1 needs
    return optimize.brentq(lambda x: _power(x, df, alpha) - power, 0.0, top)

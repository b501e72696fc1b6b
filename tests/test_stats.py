"""Tests of the table's statistics (`analysis.stats`): hand-made samples against values computed
independently (textbook numbers, numpy formulas written here), the cases without an interval, and
a simulation of two identical arms."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from analysis.stats import mean_interval, welch

T_975_DF4 = 2.7764451051977987  # Student t, 97.5th percentile, 4 degrees of freedom (tables)


def test_mean_interval_of_one_to_five() -> None:
    est = mean_interval([1, 2, 3, 4, 5])
    sd = math.sqrt(sum((x - 3) ** 2 for x in range(1, 6)) / 4)  # 1.5811
    half = T_975_DF4 * sd / math.sqrt(5)  # 1.9632
    assert est.mean == 3 and est.n == 5 and est.why is None
    assert (est.low, est.high) == pytest.approx((3 - half, 3 + half), abs=1e-12)
    assert est.half_width == pytest.approx(1.963243161477557)


def test_mean_interval_numpy_formula() -> None:
    x = np.array([0.806, 0.812, 0.797, 0.821])
    est = mean_interval(x)
    half = stats.t.ppf(0.975, len(x) - 1) * np.std(x, ddof=1) / np.sqrt(len(x))
    assert est.mean == pytest.approx(x.mean())
    assert est.half_width == pytest.approx(half)
    assert mean_interval(x, confidence=0.99).half_width > half


def test_no_interval_without_spread() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = mean_interval([0.8])
        same = mean_interval([0.8, 0.8, 0.8])
        none = mean_interval([])
        with_nan = mean_interval([0.8, math.nan])
    assert one.mean == 0.8 and one.n == 1 and not one.has_interval and one.half_width is None
    assert one.why == "1 seed"
    assert same.mean == pytest.approx(0.8) and same.low is None
    assert same.why == "all 3 seeds equal"
    assert math.isnan(none.mean) and none.n == 0
    assert with_nan.n == 1 and with_nan.mean == 0.8  # NaN is not a seed


def test_welch_textbook_sample() -> None:
    a, b = np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 5.0])
    d = welch(a, b)
    va, vb = a.var(ddof=1) / 3, b.var(ddof=1) / 3
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 2)  # Welch-Satterthwaite
    t = (a.mean() - b.mean()) / se
    assert d.diff == pytest.approx(-4 / 3)
    assert d.df == pytest.approx(df) == pytest.approx(3.4482758620689653)
    assert d.p == pytest.approx(2 * stats.t.sf(abs(t), df)) == pytest.approx(0.2846271787614)
    half = stats.t.ppf(0.975, df) * se
    assert (d.low, d.high) == pytest.approx((d.diff - half, d.diff + half))


def test_welch_one_constant_arm_is_a_valid_test() -> None:
    a, b = [0.8, 0.8, 0.8], [0.7, 0.75, 0.72]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = welch(a, b)
    se = np.std(b, ddof=1) / math.sqrt(3)
    assert d.df == pytest.approx(2.0)
    assert d.p == pytest.approx(2 * stats.t.sf((0.8 - np.mean(b)) / se, 2))


def test_welch_undefined_cases() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        single = welch([0.8], [0.7, 0.75])
        flat = welch([0.8, 0.8], [0.7, 0.7])
        empty = welch([], [0.7, 0.75])
    assert single.diff == pytest.approx(0.075) and single.p is None and not single.has_interval
    assert single.why == "an arm has 1 seed"
    assert flat.diff == pytest.approx(0.1) and flat.p is None and flat.low is None
    assert flat.why == "no spread in either arm"
    assert math.isnan(empty.diff) and empty.p is None


def test_identical_arms_are_rarely_called_different() -> None:
    """200 simulated comparisons of two arms with the same true accuracy (3-5 seeds each, seed
    noise plus a binomial test set): Welch's p > 0.05 in at least 90 % of them, and its 95 %
    interval covers 0 exactly as often; a mean's interval covers the truth as often."""
    rng = np.random.default_rng(11)
    p_large = covers_zero = covers_truth = 0
    studies = 200
    for _ in range(studies):
        seeds = int(rng.integers(3, 6))

        def arm(n: int = seeds) -> np.ndarray:
            return rng.binomial(2000, rng.normal(0.8, 0.01, n)) / 2000

        a, b = arm(), arm()
        d = welch(a, b)
        p_large += d.p > 0.05
        covers_zero += d.low <= 0 <= d.high
        est = mean_interval(a)
        covers_truth += est.low <= 0.8 <= est.high
    assert p_large >= 0.9 * studies
    assert covers_zero == p_large
    assert covers_truth >= 0.9 * studies

"""Tests of the table's statistics (`analysis.stats`): hand-made samples against values computed
independently (textbook numbers, numpy formulas written here), the cases without an interval,
Holm's correction and the minimum detectable difference, and simulations (fixed seeds, vectorized
with scipy's axis-aware tests, checked against `paired` itself) of the paired test's false
positives, coverage, family-wise rate after Holm and power against Welch's.

The measured rates are printed: `python -m pytest tests/test_stats.py -q -s -k simulated`."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from analysis.stats import PAIRED, WELCH, holm, mde, mean_interval, one_sample, paired, welch

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


# ---------------------------------------------------------------------------------------------
# paired t, Holm, the minimum detectable difference


def test_paired_textbook_sample() -> None:
    a, b = {1: 80.0, 2: 82.0, 3: 81.0}, {1: 78.0, 2: 81.0, 3: 78.0}
    d = paired(a, b)
    diffs = np.array([2.0, 1.0, 3.0])
    se = diffs.std(ddof=1) / math.sqrt(3)
    half = stats.t.ppf(0.975, 2) * se
    assert d.test == PAIRED and d.df == 2 and d.n_a == d.n_b == 3
    assert d.diff == pytest.approx(2.0) and (d.low, d.high) == pytest.approx((2 - half, 2 + half))
    assert d.p == pytest.approx(2 * stats.t.sf(2.0 / se, 2))
    assert d.mde == pytest.approx(mde(diffs.std(ddof=1), 3)[0])
    # the order of the seeds does not matter, their pairing does
    assert paired(dict(reversed(a.items())), b).p == pytest.approx(d.p)
    shuffled = dict(zip(b, [78.0, 78.0, 81.0]))
    assert paired(a, shuffled).p != pytest.approx(d.p)


def test_paired_falls_back_to_welch_when_seeds_differ() -> None:
    a, b = {1: 80.0, 2: 82.0, 3: 81.0}, {1: 78.0, 2: 81.0, 4: 78.5}
    d = paired(a, b)
    ref = welch(list(a.values()), list(b.values()))
    assert d.test == WELCH and d.p == pytest.approx(ref.p) and d.df == pytest.approx(ref.df)
    nan_seed = paired(a, {**b, 4: math.nan, 3: 78.0})  # NaN is not a seed: 1, 2, 3 vs 1, 2, 3
    assert nan_seed.test == PAIRED and nan_seed.n_b == 3


def test_paired_undefined_cases() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = paired({1: 80.0}, {1: 78.0})
        equal = paired({1: 80.0, 2: 81.0}, {1: 79.0, 2: 80.0})
        empty = paired({}, {})
    assert one.diff == 2.0 and one.p is None and one.why == "1 seed pair" and one.mde is None
    assert one.mde_why == "1 seed pair" and one.test == PAIRED
    assert equal.diff == pytest.approx(1.0) and not equal.has_interval and equal.p is None
    assert equal.why == "all 2 seed pairs differ equally"
    assert math.isnan(empty.diff) and empty.p is None


def test_one_sample_is_ttest_1samp() -> None:
    values = {1: -3.0, 2: -1.0, 3: -2.5, 4: 0.5}
    d = one_sample(values)
    ref = stats.ttest_1samp(list(values.values()), 0.0)
    ci = ref.confidence_interval(0.95)
    assert d.diff == pytest.approx(-1.5) and d.p == pytest.approx(ref.pvalue)
    assert (d.low, d.high) == pytest.approx((ci.low, ci.high)) and d.df == 3


def test_holm_step_down() -> None:
    assert holm([0.01, 0.04, 0.03, 0.2]) == pytest.approx([0.04, 0.09, 0.09, 0.2])
    # monotone: a larger raw p never gets a smaller adjusted p; capped at 1
    assert holm([0.5, 0.3, 0.01]) == pytest.approx([0.6, 0.6, 0.03])
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])
    out = holm([0.02, None, math.nan, 0.03])  # undefined: not a test of the family (m = 2)
    assert out[0] == pytest.approx(0.04) and out[3] == pytest.approx(0.04)
    assert math.isnan(out[1]) and math.isnan(out[2])
    assert holm([]) == [] and holm([0.01]) == pytest.approx([0.01])


def test_mde_against_the_normal_approximation_and_power() -> None:
    """Large n: (z_0.975 + z_0.8) x se; any n: the noncentral t's power at the MDE is 80 %."""
    big, _ = mde(2.0, 10_000)
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)
    assert big == pytest.approx(z * 2.0 / 100, rel=1e-3)
    for n in (2, 3, 5):
        value, why = mde(1.0, n)
        df, crit = n - 1, stats.t.ppf(0.975, n - 1)
        nc = value / (1.0 / math.sqrt(n))
        power = stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)
        assert why is None and power == pytest.approx(0.8, abs=1e-6)
    assert mde(1.0, 3)[0] > mde(1.0, 5)[0] > mde(0.5, 5)[0]  # fewer seeds, more noise: larger
    welch_mde, _ = mde(1.0, 3, 1.0, 3)  # se sqrt(2/3), Welch-Satterthwaite df 4
    same_se_and_df = mde(math.sqrt(10 / 3), 5)[0]  # se sqrt(10/3) / sqrt(5), df 4
    assert welch_mde == pytest.approx(same_se_and_df)
    assert welch_mde > stats.t.ppf(0.975, 4) * math.sqrt(2 / 3)
    assert mde(1.0, 1) == (None, "fewer than 2 seed pairs")
    assert mde(0.0, 3) == (None, "no spread between seeds")
    assert mde(1.0, 3, 1.0, 1) == (None, "an arm has 1 seed")


# ---------------------------------------------------------------------------------------------
# simulations (vectorized; `paired` itself checked on the first comparisons)

SIMULATED = 4000  # comparisons: a rate's standard error is 0.34 points at 5 %, 0.69 at 80 %
TOLERANCE = 0.025
SEED_SD = 0.5  # points, each arm
CORRELATION = 0.7  # between the arms of one seed (a shared per-seed effect)


def _arms(rng: np.random.Generator, shape: tuple[int, int], diff: float) -> tuple:
    """multi, single of `shape` (comparisons x seeds): a shared per-seed effect carries
    CORRELATION of each arm's variance SEED_SD**2; multi's true mean is `diff` higher."""
    shared = rng.normal(0, SEED_SD * math.sqrt(CORRELATION), shape)
    own = SEED_SD * math.sqrt(1 - CORRELATION)
    multi = 80 + diff + shared + rng.normal(0, own, shape)
    return multi, 80 + shared + rng.normal(0, own, shape)


def _same_as_paired(multi: np.ndarray, single: np.ndarray, p: np.ndarray) -> None:
    for i in range(50):
        d = paired(dict(enumerate(multi[i])), dict(enumerate(single[i])))
        assert d.test == PAIRED and d.p == pytest.approx(p[i])


@pytest.mark.parametrize("seeds", [3, 5])
def test_simulated_paired_false_positives_and_coverage(seeds: int) -> None:
    """Identical arms: p < 0.05 in 5 % ± 2.5 points of the comparisons, and the 95 % interval
    covers the true difference (0) in 95 % ± 2.5 points."""
    rng = np.random.default_rng(20 + seeds)
    multi, single = _arms(rng, (SIMULATED, seeds), 0.0)
    result = stats.ttest_rel(multi, single, axis=1)
    ci = result.confidence_interval(0.95)
    _same_as_paired(multi, single, result.pvalue)
    first = paired(dict(enumerate(multi[0])), dict(enumerate(single[0])))
    assert (first.low, first.high) == pytest.approx((ci.low[0], ci.high[0]))
    false_positive = float(np.mean(result.pvalue < 0.05))
    coverage = float(np.mean((ci.low <= 0) & (0 <= ci.high)))
    print(f"\nn={seeds}: false positives {false_positive:.2%}, coverage {coverage:.2%}")
    assert abs(false_positive - 0.05) <= TOLERANCE
    assert abs(coverage - 0.95) <= TOLERANCE


def test_simulated_holm_family_wise_rate() -> None:
    """A family of 4 comparisons of identical arms (3 seeds each): after Holm, some p < 0.05
    in at most 5 % + 2.5 points of the families; uncorrected, clearly more often."""
    rng = np.random.default_rng(7)
    families, size, seeds = SIMULATED, 4, 3
    multi, single = _arms(rng, (families * size, seeds), 0.0)
    p = stats.ttest_rel(multi, single, axis=1).pvalue.reshape(families, size)
    adjusted = np.array([holm(row) for row in p])
    holm_rate = float(np.mean((adjusted < 0.05).any(axis=1)))
    raw_rate = float(np.mean((p < 0.05).any(axis=1)))
    print(f"\nfamily of {size}: family-wise rate {holm_rate:.2%} after Holm, {raw_rate:.2%} raw")
    assert holm_rate <= 0.05 + TOLERANCE
    assert raw_rate > 0.05 + 3 * TOLERANCE  # the correction is needed: 1 - 0.95**4 = 18.5 %


@pytest.mark.parametrize("seeds", [3, 5])
def test_simulated_power_paired_beats_welch(seeds: int) -> None:
    """A true 1.5-point difference, seed SD 0.5 per arm, arms correlated 0.7 by seed: the
    paired test detects it (p < 0.05) more often than Welch's on the same runs."""
    rng = np.random.default_rng(30 + seeds)
    multi, single = _arms(rng, (SIMULATED, seeds), 1.5)
    p_paired = stats.ttest_rel(multi, single, axis=1).pvalue
    p_welch = stats.ttest_ind(multi, single, axis=1, equal_var=False).pvalue
    _same_as_paired(multi, single, p_paired)
    assert welch(multi[0], single[0]).p == pytest.approx(p_welch[0])
    power_paired, power_welch = float(np.mean(p_paired < 0.05)), float(np.mean(p_welch < 0.05))
    print(f"\nn={seeds}: power paired {power_paired:.2%}, Welch {power_welch:.2%}")
    assert power_paired > power_welch
    assert power_paired >= min(1.0, power_welch + TOLERANCE) or power_welch > 0.99  # near 100 %


@pytest.mark.parametrize("seeds", [3, 5])
def test_simulated_power_at_the_mde_is_80_percent(seeds: int) -> None:
    """At a true difference equal to `mde` (from the true SD of the differences), the paired
    test detects it in 80 % ± 2.5 points of the comparisons."""
    rng = np.random.default_rng(40 + seeds)
    sd_diff = SEED_SD * math.sqrt(2 * (1 - CORRELATION))
    effect, _ = mde(sd_diff, seeds)
    multi, single = _arms(rng, (SIMULATED, seeds), effect)
    power = float(np.mean(stats.ttest_rel(multi, single, axis=1).pvalue < 0.05))
    print(f"\nn={seeds}: MDE {effect:.2f} points, power there {power:.2%}")
    assert abs(power - 0.8) <= TOLERANCE

"""Statistics against published table values and hand-computed examples."""

from __future__ import annotations

import math

import pytest

from transferlab.experiments.stats import (
    compare,
    summarize,
    t_cdf,
    t_quantile,
    welch_t_test,
)

# Two-sided 95 % critical values of Student's t (any statistics textbook table).
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 9: 2.262, 10: 2.228, 30: 2.042,
        120: 1.980}


@pytest.mark.parametrize("df,expected", sorted(T975.items()))
def test_t_quantile_matches_tables(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=6e-4)


def test_t_quantile_other_levels_and_limits():
    assert t_quantile(0.995, 2) == pytest.approx(9.925, abs=1e-3)  # 99 % two-sided, df 2
    assert t_quantile(0.95, 10) == pytest.approx(1.812, abs=1e-3)  # one-sided 95 %, df 10
    assert t_quantile(0.975, math.inf) == pytest.approx(1.95996, abs=1e-5)  # the normal
    assert t_quantile(0.5, 3) == 0.0
    assert t_quantile(0.025, 4) == pytest.approx(-t_quantile(0.975, 4))
    with pytest.raises(ValueError, match="between 0 and 1"):
        t_quantile(1.0, 3)


def test_t_cdf_known_values_and_round_trip():
    # t CDF at 2: df 1 is 1/2 + atan(2)/pi; df 2 is 1/2 + 2 / (2 sqrt(6)).
    assert t_cdf(2.0, 1) == pytest.approx(0.5 + math.atan(2.0) / math.pi, abs=1e-12)
    assert t_cdf(2.0, 2) == pytest.approx(0.5 + 1.0 / math.sqrt(6.0), abs=1e-12)
    assert t_cdf(-2.0, 2) == pytest.approx(1 - t_cdf(2.0, 2), abs=1e-12)
    for df in (1.5, 2.7, 7.3):  # fractional df, as Welch's test produces
        for p in (0.6, 0.9, 0.975, 0.999):
            assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-9)
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_cdf(1.0, 0)


def test_summarize_three_seeds_by_hand():
    s = summarize([0.80, 0.82, 0.85])
    mean = (0.80 + 0.82 + 0.85) / 3
    sd = math.sqrt(((0.80 - mean) ** 2 + (0.82 - mean) ** 2 + (0.85 - mean) ** 2) / 2)
    half = 4.302653 * sd / math.sqrt(3)
    assert (s.n, s.min, s.max) == (3, 0.80, 0.85)
    assert s.mean == pytest.approx(mean)
    assert s.std == pytest.approx(sd)
    assert s.ci_low == pytest.approx(mean - half, abs=1e-6)
    assert s.ci_high == pytest.approx(mean + half, abs=1e-6)
    assert s.half_width == pytest.approx(half, abs=1e-6)


def test_summarize_one_value_has_no_interval_and_empty_is_an_error():
    s = summarize([0.7])
    assert (s.mean, s.ci_low, s.ci_high, s.min, s.max) == (0.7, None, None, 0.7, 0.7)
    with pytest.raises(ValueError, match="empty"):
        summarize([])


def test_welch_by_hand():
    a, b = [1, 2, 3, 4], [2, 4, 6, 8, 10]
    t, df, p = welch_t_test(a, b)
    va, vb = (5 / 3) / 4, 10 / 5  # sample variances over n
    assert t == pytest.approx(-3.5 / math.sqrt(va + vb))
    assert df == pytest.approx((va + vb) ** 2 / (va**2 / 3 + vb**2 / 4))
    assert p == pytest.approx(2 * t_cdf(t, df))
    assert 0.06 < p < 0.08  # 0.069: not significant at 5 %


def test_welch_degenerate_groups():
    assert welch_t_test([0.5, 0.5], [0.5, 0.5])[2] == 1.0
    assert welch_t_test([0.5, 0.5], [0.6, 0.6])[2] == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        welch_t_test([0.5], [0.5, 0.6])


def test_compare_verdicts():
    noisy = compare([0.80, 0.86, 0.83], [0.82, 0.79, 0.85], names=("x", "y"))
    assert noisy.within_noise and noisy.intervals_overlap
    assert "within noise" in noisy.verdict
    clear = compare([0.90, 0.91, 0.92], [0.40, 0.42, 0.41], names=("transfer", "scratch"))
    assert clear.within_noise is False and clear.intervals_overlap is False
    assert clear.diff == pytest.approx(0.5)
    assert clear.verdict.startswith("transfer better")
    worse = compare([0.40, 0.42, 0.41], [0.90, 0.91, 0.92], names=("a", "b"))
    assert worse.verdict.startswith("b better")
    single = compare([0.9], [0.4, 0.5])
    assert single.within_noise is None and "undetermined" in single.verdict
    assert single.as_dict()["verdict"] == single.verdict

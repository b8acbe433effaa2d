"""Intervals on one accuracy and the paired test of two runs, against published values."""

import math

import pytest

from transferlab.inspect.intervals import format_accuracy, mcnemar_test, wilson_interval


def test_wilson_matches_the_closed_form():
    # Wilson (1927): centre (k + z²/2)/(n + z²), half-width z/(n + z²)·sqrt(k(n-k)/n + z²/4)
    k, n, z = 335, 372, 1.959963984540054
    centre = (k + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(k * (n - k) / n + z * z / 4)
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(centre - half, abs=1e-9)
    assert hi == pytest.approx(centre + half, abs=1e-9)
    assert format_accuracy(k / n, (lo, hi), n) == "0.901 [0.866, 0.927] on 372 images"


def test_wilson_stays_inside_zero_one_and_narrows_with_n():
    lo, hi = wilson_interval(10, 10)
    assert hi == pytest.approx(1.0) and 0.65 < lo < 0.75  # not the degenerate [1, 1]
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    w_small = wilson_interval(45, 50)
    w_big = wilson_interval(450, 500)
    assert (w_big[1] - w_big[0]) < (w_small[1] - w_small[0]) / 2.5
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


def test_mcnemar_counts_only_discordant_images():
    # 100 images: both right on 80, both wrong on 5, a only 2, b only 13
    a = [True] * 80 + [False] * 5 + [True] * 2 + [False] * 13
    b = [True] * 80 + [False] * 5 + [False] * 2 + [True] * 13
    r = mcnemar_test(a, b)
    assert (r["a_only"], r["b_only"]) == (2, 13)
    # exact two-sided binomial: 2 * P(X <= 2 | n=15, 1/2) = 2 * (1 + 15 + 105) / 2**15
    assert r["p_value"] == pytest.approx(2 * 121 / 2**15, rel=1e-9)
    assert "different" in r["verdict"]
    # the concordant images do not matter
    r2 = mcnemar_test(a[80:], b[80:])
    assert r2["p_value"] == pytest.approx(r["p_value"])
    same = mcnemar_test([True, False], [True, False])
    assert same["p_value"] == 1.0 and "identical" in same["verdict"]
    with pytest.raises(ValueError, match="same images"):
        mcnemar_test([True], [True, False])

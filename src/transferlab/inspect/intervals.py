"""How much to trust one accuracy figure, and whether two runs differ on the same images.

An accuracy measured on n images is a binomial proportion: with 150 validation images one
image is 0.7 points. :func:`wilson_interval` gives its 95 % Wilson score interval (good
coverage down to small n and near 0 or 1, unlike the normal approximation), from scipy.
Two runs measured on the *same* images are compared with :func:`mcnemar_test`, the exact
(binomial) McNemar test on the images where exactly one of them is right: overlapping
intervals of two runs say little, since both saw the same easy and hard images.
"""

from __future__ import annotations

from collections.abc import Sequence

from scipy.stats import binomtest

__all__ = ["INTERVAL_NAME", "format_accuracy", "mcnemar_test", "wilson_interval"]

INTERVAL_NAME = "95 % Wilson score interval"


def wilson_interval(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of ``correct / total`` (``(nan, nan)`` when total is 0)."""
    if total < 0 or not 0 <= correct <= total:
        raise ValueError(f"need 0 <= correct <= total, got {correct} of {total}")
    if total == 0:
        return float("nan"), float("nan")
    ci = binomtest(int(correct), int(total)).proportion_ci(confidence_level=confidence,
                                                          method="wilson")
    return float(ci.low), float(ci.high)


def format_accuracy(accuracy: float, interval: Sequence[float], n: int) -> str:
    """``0.901 [0.868, 0.927] on 372 images`` — the figure, its interval, what it rests on."""
    return f"{accuracy:.3f} [{interval[0]:.3f}, {interval[1]:.3f}] on {n} images"


def mcnemar_test(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict:
    """Exact McNemar test of two classifiers on the same images (paired).

    ``correct_a[i]`` / ``correct_b[i]``: whether each run got image i right. Only the
    discordant images count: ``a_only`` (a right, b wrong) and ``b_only``; under "no
    difference" each discordant image is a fair coin, so the two-sided p-value is the
    binomial test of ``b_only`` out of ``a_only + b_only`` at 1/2.
    """
    if len(correct_a) != len(correct_b):
        raise ValueError(f"paired test needs the same images: {len(correct_a)} vs "
                         f"{len(correct_b)} results")
    a_only = sum(1 for a, b in zip(correct_a, correct_b, strict=True) if a and not b)
    b_only = sum(1 for a, b in zip(correct_a, correct_b, strict=True) if b and not a)
    discordant = a_only + b_only
    p = 1.0 if discordant == 0 else float(binomtest(b_only, discordant, 0.5).pvalue)
    return {"test": "exact McNemar (binomial on discordant images)", "images": len(correct_a),
            "a_only": a_only, "b_only": b_only, "p_value": p,
            "verdict": ("no discordant images: identical on these images" if discordant == 0
                        else ("different (p < 0.05)" if p < 0.05
                              else "within noise (p >= 0.05)"))}

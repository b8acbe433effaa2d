"""Honest error bars over a handful of seeds: Student t intervals and Welch's t-test.

With 3 seeds the normal approximation (1.96) understates the 95 % interval more than
twofold (the t quantile is 4.30), so the quantile comes from the t distribution itself
(``scipy.stats.t``; tests check it against published table values).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from scipy.stats import t as _t

__all__ = [
    "Comparison",
    "Summary",
    "compare",
    "summarize",
    "t_cdf",
    "t_quantile",
    "welch_t_test",
]


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (df may be fractional)."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    return float(_t.cdf(t, df))


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (``t_quantile(0.975, 2)`` = 4.303)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be between 0 and 1 (exclusive), got {p}")
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    return float(_t.ppf(p, df))


@dataclass(frozen=True)
class Summary:
    """Mean and 95 % t-interval (``None`` with fewer than 2 values), min and max."""

    n: int
    mean: float
    std: float  # sample standard deviation (n - 1); 0 for one value
    ci_low: float | None
    ci_high: float | None
    min: float
    max: float

    @property
    def half_width(self) -> float | None:
        return None if self.ci_high is None else self.ci_high - self.mean

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """Mean, sample SD, ``confidence`` t-interval of the mean, min and max."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("cannot summarise an empty list of values")
    n = len(xs)
    mean = math.fsum(xs) / n
    if n < 2:
        return Summary(n, mean, 0.0, None, None, mean, mean)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half, min(xs), max(xs))


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Welch's unequal-variance t-test: (t, degrees of freedom, two-sided p-value).

    Two groups without any spread give p = 1 when their means are equal and p = 0 otherwise.
    """
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"Welch's t-test needs at least 2 values per group, got {len(a)} "
                         f"and {len(b)}")
    sa, sb = summarize(a), summarize(b)
    va, vb = sa.std**2 / sa.n, sb.std**2 / sb.n
    diff = sa.mean - sb.mean
    if va + vb == 0.0:
        return (0.0 if diff == 0 else math.copysign(math.inf, diff)), math.inf, (
            1.0 if diff == 0 else 0.0)
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (sa.n - 1) + vb**2 / (sb.n - 1))
    p = 2.0 * float(_t.sf(abs(t), df))
    return t, df, min(1.0, max(0.0, p))


@dataclass(frozen=True)
class Comparison:
    """``a`` against ``b``: the difference of means and whether it is within noise."""

    a: str
    b: str
    diff: float  # mean(a) - mean(b)
    p_value: float | None  # Welch; None with fewer than 2 seeds on a side
    intervals_overlap: bool | None
    within_noise: bool | None  # None: not enough seeds to tell

    @property
    def verdict(self) -> str:
        if self.within_noise is None:
            return "undetermined (needs at least 2 seeds per arm)"
        if self.within_noise:
            return f"within noise (Welch p = {self.p_value:.2f})"
        better = self.a if self.diff > 0 else self.b
        p = "< 0.001" if self.p_value < 0.001 else f"= {self.p_value:.3f}"
        return f"{better} better (Welch p {p})"

    def as_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict}


def compare(a: Sequence[float], b: Sequence[float], *, names: tuple[str, str] = ("a", "b"),
            alpha: float = 0.05) -> Comparison:
    """Is ``mean(a) - mean(b)`` larger than seed noise? Welch's test at level ``alpha``.

    Overlap of the two 95 % intervals is reported as well; it is the more conservative eye
    test (intervals can overlap while Welch's test still finds a difference).
    """
    sa, sb = summarize(a), summarize(b)
    diff = sa.mean - sb.mean
    if sa.n < 2 or sb.n < 2:
        return Comparison(names[0], names[1], diff, None, None, None)
    _, _, p = welch_t_test(a, b)
    overlap = sa.ci_low <= sb.ci_high and sb.ci_low <= sa.ci_high
    return Comparison(names[0], names[1], diff, p, overlap, p >= alpha)

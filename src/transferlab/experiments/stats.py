"""Honest error bars over a handful of seeds: Student t intervals and Welch's t-test.

With 3 seeds the normal approximation (1.96) understates the 95 % interval more than
twofold (the t quantile is 4.30), so the quantile is computed from the t distribution itself.
scipy is not a dependency: the regularised incomplete beta function below (Lentz's continued
fraction, as in Numerical Recipes §6.4) gives the t CDF to ~1e-12, and the quantile is found
by bisection on it. Tests check both against published table values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

__all__ = [
    "Comparison",
    "Summary",
    "compare",
    "summarize",
    "t_cdf",
    "t_quantile",
    "welch_t_test",
]


def _betacf(a: float, b: float, x: float) -> float:
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (df may be fractional)."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    if math.isinf(df):
        return 0.5 * math.erfc(-t / math.sqrt(2.0))
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (``t_quantile(0.975, 2)`` = 4.303)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be between 0 and 1 (exclusive), got {p}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, hi * 2.0
        if hi > 1e12:
            return math.inf
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


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
    p = 2.0 * (1.0 - t_cdf(abs(t), df))
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

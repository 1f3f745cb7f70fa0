"""Statistics over seeds: mean, sample standard deviation, Student-t confidence intervals, paired differences.

A claim that one variant beats another is a statement about the distribution of results over seeds, not
about one run. With n seeds, the 95% interval of a mean is ``mean ± t(0.975, n-1) * std / sqrt(n)``;
a paired difference (variant minus reference, seed by seed, both run with the same seeds) removes what
the seeds share and is the interval to read when two variants are compared (docs/statistics.md).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95


def _t_density(x: float, dof: int) -> float:
    log_norm = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
    return math.exp(log_norm - (dof + 1) / 2 * math.log1p(x * x / dof))


def t_cdf(x: float, dof: int) -> float:
    """P(T <= x) for Student's t with ``dof`` degrees of freedom (Simpson's rule on the density; error < 1e-10)."""
    if dof < 1:
        raise ValueError(f"a t distribution needs at least 1 degree of freedom, got {dof}")
    if x < 0:
        return 1.0 - t_cdf(-x, dof)
    # Substituting x = tan(u) keeps the integrand smooth and bounded even for dof = 1 and large x.
    upper = math.atan(x)
    steps = 2000
    h = upper / steps
    total = 0.0
    for i in range(steps + 1):
        u = i * h
        value = _t_density(math.tan(u), dof) / math.cos(u) ** 2
        total += value * (1 if i in (0, steps) else 4 if i % 2 else 2)
    return 0.5 + total * h / 3


@functools.cache
def t_quantile(p: float, dof: int) -> float:
    """The ``p`` quantile of Student's t with ``dof`` degrees of freedom (t(0.975, 2) = 4.3027)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"a quantile needs 0 < p < 1, got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, dof)
    low, high = 0.0, 1.0
    while t_cdf(high, dof) < p:
        low, high = high, high * 2
    for _ in range(60):  # bisection to far below the printed precision
        middle = 0.5 * (low + high)
        low, high = (middle, high) if t_cdf(middle, dof) < p else (low, middle)
    return 0.5 * (low + high)


@dataclass(frozen=True)
class Summary:
    """Values over seeds, their mean, sample standard deviation (n - 1) and the t-interval of the mean.

    With one value, ``std`` and the interval are None: one seed is an anecdote, not a spread.
    """

    values: tuple[float, ...]
    mean: float
    std: float | None
    low: float | None
    high: float | None

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies wholly above or wholly below 0."""
        return self.low is not None and (self.low > 0 or self.high < 0)

    def as_dict(self) -> dict:
        return {
            "values": list(self.values),
            "n": self.n,
            "mean": self.mean,
            "std": self.std,
            "ci95": None if self.low is None else [self.low, self.high],
        }

    def format(self, digits: int = 2) -> str:
        """``"47.10 ± 1.23"`` (mean ± std), or the mean alone for one value."""
        return f"{self.mean:.{digits}f}" if self.std is None else f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


def summarize_values(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """Mean, sample standard deviation and the Student-t ``confidence`` interval of the mean of ``values``."""
    values = tuple(float(v) for v in values)
    if not values:
        raise ValueError("no values to summarise")
    n = len(values)
    mean = math.fsum(values) / n
    if n == 1:
        return Summary(values, mean, None, None, None)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(0.5 + confidence / 2, n - 1) * std / math.sqrt(n)
    return Summary(values, mean, std, mean - half, mean + half)


def paired_difference(values: Sequence[float], reference: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """The summary of ``values[k] - reference[k]`` over seeds k (both lists in the same seed order)."""
    if len(values) != len(reference):
        raise ValueError(f"a paired difference needs the same seeds on both sides ({len(values)} vs {len(reference)})")
    return summarize_values([v - r for v, r in zip(values, reference)], confidence)

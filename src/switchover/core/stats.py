"""The statistical tests behind verdicts, each returning a one-sided or two-sided p-value.

- A rate against an absolute threshold: the exact binomial tail (is the true rate
  above 5 %, given 18 errors in 300 calls?).
- A latency quantile against a threshold: the same binomial test on the calls slower
  than the threshold (p95 <= T exactly when at most 5 % of calls are slower than T).
- Candidate against legacy for a rate: a two-proportion z-test, or Fisher's exact test
  when a cell is expected to hold fewer than five.
- Candidate against legacy for latency: Mann-Whitney U on the per-minute series, the
  test Kayenta's judge uses.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from types import ModuleType


@functools.cache
def _scipy() -> ModuleType:
    """SciPy takes about a second to import: only processes that judge pay for it."""
    from scipy import stats

    return stats


def binomial_above(k: int, n: int, p0: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p0): small when the true rate is above p0."""
    if n <= 0 or k <= 0:
        return 1.0
    if p0 <= 0:
        return 0.0
    return float(_scipy().binom.sf(k - 1, n, p0))


def binomial_below(k: int, n: int, p0: float) -> float:
    """P(X <= k): small when the true rate is below p0."""
    if n <= 0:
        return 1.0
    if p0 >= 1:
        return 0.0 if k < n else 1.0
    return float(_scipy().binom.cdf(k, n, p0))


def two_proportions(k1: int, n1: int, k0: int, n0: int, *, alternative: str) -> float:
    """p-value that rate 1 (candidate) is ``greater``/``less`` than rate 0 (legacy)."""
    if n1 <= 0 or n0 <= 0:
        return 1.0
    pooled = (k1 + k0) / (n1 + n0)
    expected = min(n1 * pooled, n1 * (1 - pooled), n0 * pooled, n0 * (1 - pooled))
    if expected < 5:
        table = [[k1, n1 - k1], [k0, n0 - k0]]
        return float(_scipy().fisher_exact(table, alternative=alternative).pvalue)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    if se == 0:
        return 1.0
    z = (k1 / n1 - k0 / n0) / se
    return float(_scipy().norm.sf(z) if alternative == "greater" else _scipy().norm.cdf(z))


def _adjusted(k: int, n: int) -> tuple[float, float]:
    """Agresti-Caffo: one success and one failure added, so small counts behave."""
    p = (k + 1) / (n + 2)
    return p, p * (1 - p) / (n + 2)


def ratio_above(k1: int, n1: int, k0: int, n0: int, ratio: float) -> float:
    """p-value that rate 1 is above ``ratio`` times rate 0 (H0: p1 <= ratio * p0).

    The null is the gate's limit itself, not "the sides are equal": a candidate whose
    rate is 1.1x legacy's is not evidence against "at most 1.5x", however many looks.
    """
    if n1 <= 0 or n0 <= 0:
        return 1.0
    p1, v1 = _adjusted(k1, n1)
    p0, v0 = _adjusted(k0, n0)
    z = (p1 - ratio * p0) / math.sqrt(v1 + ratio * ratio * v0)
    return float(_scipy().norm.sf(z))


def difference_above(k0: int, n0: int, k1: int, n1: int, margin: float) -> float:
    """p-value that rate 0 exceeds rate 1 by more than ``margin`` (H0: p0 - p1 <= margin)."""
    if n1 <= 0 or n0 <= 0:
        return 1.0
    p0, v0 = _adjusted(k0, n0)
    p1, v1 = _adjusted(k1, n1)
    z = (p0 - p1 - margin) / math.sqrt(v0 + v1)
    return float(_scipy().norm.sf(z))


def mann_whitney(
    candidate: Sequence[float], legacy: Sequence[float], *, alternative: str = "two-sided"
) -> float:
    """Mann-Whitney U p-value; 1.0 when a side has fewer than two points."""
    if len(candidate) < 2 or len(legacy) < 2:
        return 1.0
    if min(candidate) == max(candidate) == min(legacy) == max(legacy):
        return 1.0
    return float(_scipy().mannwhitneyu(candidate, legacy, alternative=alternative).pvalue)

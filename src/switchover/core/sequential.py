"""Always-valid statistics: evidence that may be looked at after every interval, for ever.

A plan is judged every interval for days or weeks. A fixed-sample test at 98 % asked every
minute of a week is wrong thousands of times over; the tests here are not. Each one is an
**e-value**: a mixture likelihood ratio (Wald's sequential probability ratio, averaged over
a grid of alternatives, Robbins' mixture method). Under the null hypothesis it is a
nonnegative supermartingale with expectation at most 1, so by Ville's inequality

    P(the e-value ever reaches 1/a, at any look) <= a

however often, and however long, it is looked at. A test fails when its log e-value
reaches a threshold ``log(1/a)``; :class:`Budget` splits the plan's ``1 - confidence``
between every test, phase and window a plan can look at (a union bound), so the chance
that a healthy candidate is *ever* failed by *any* test of the plan is at most
``1 - confidence``.

The building blocks, each a pure function of counts:

- :func:`binomial_log_e`: a rate against a fixed value (``error_rate < 2%``, the calls
  slower than 800 ms against 5 % for ``p95 < 800ms``).
- :func:`ratio_log_e`: a rate against ``limit`` times legacy's, on the same traffic
  (``error_ratio <= 1.5``). Given that a call failed, the chance that it was the
  candidate's is ``theta = r q / (r q + 1 - q)`` when the candidate's rate is ``r`` times
  legacy's and ``q`` is the candidate's share of the calls (rare events, Poisson); the
  failures are then coin flips, and the test is :func:`binomial_log_e` on them.
- :func:`rate_bounds`, :func:`quantile_lower_bound`, :func:`quantile_upper_bound`:
  confidence sequences (the values an e-value does not reject), for the tests that
  compare two bounds (a latency ratio, a rate against a baseline taken before the phase).

References: A. Wald, *Sequential tests of statistical hypotheses* (1945); H. Robbins,
*Statistical methods related to the law of the iterated logarithm* (1970); S. Howard,
A. Ramdas, J. McAuliffe, J. Sekhon, *Time-uniform, nonparametric, nonasymptotic confidence
sequences*, Annals of Statistics (2021); S. Howard, A. Ramdas, *Sequential estimation of
quantiles with applications to A/B-testing and best-arm identification*, Bernoulli
(2022); A. Ramdas, P. Grünwald, V. Vovk, G. Shafer, *Game-theoretic statistics and safe
anytime-valid inference*, Statistical Science (2023); J. Shin, A. Ramdas, A. Rinaldo,
*E-detectors: a nonparametric framework for sequential change detection* (2024).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from types import ModuleType

from switchover.core.sketch import _MULTIPLIER, _OFFSET, LatencySketch

GRID: tuple[float, ...] = tuple(0.1 * 2**j for j in range(7))
"""The alternatives mixed, as steps in log-odds beyond the null value (0.1 ... 6.4).

For rare events a step ``d`` is a rate ``e**d`` times the null's: 1.1x, 1.2x, 1.5x, 2.2x,
5x, 25x, 600x. Wherever the truth lies, one alternative is within a factor of 2 of it and
collects at least 91 % of the evidence the best one would; mixing seven costs ``log 7``
(about 1.9) in the log e-value, paid once, not per look.
"""
LOG_GRID = math.log(len(GRID))
ABOVE = "above"
"""The null says the rate is at most the value; evidence grows when it is above."""
BELOW = "below"
"""The null says the rate is at least the value; evidence grows when it is below."""


@functools.cache
def _optimize() -> ModuleType:
    """SciPy takes a moment to import: only processes that judge pay for it."""
    from scipy import optimize

    return optimize


def _xlogy(x: float, y: float) -> float:
    """x * log(y), 0 when x is 0 (SciPy's ``xlogy``, for scalars without its call cost)."""
    return 0.0 if x == 0 else x * math.log(y)


def _log_lr(k: float, n: float, p0: float, theta: float) -> float:
    """log of the likelihood ratio of ``k`` successes in ``n`` trials, ``theta`` against ``p0``
    (``binom.logpmf(k, n, theta) - binom.logpmf(k, n, p0)``)."""
    return _xlogy(k, theta / p0) + _xlogy(n - k, (1.0 - theta) / (1.0 - p0))


def binomial_log_e(k: float, n: float, p0: float, worse: str = ABOVE) -> float:
    """log e-value against "the rate is at most ``p0``" (``worse="above"``) or at least.

    ``k`` successes (errors, slow calls, outcomes) in ``n`` trials. The alternatives are
    ``expit(logit(p0) +- d)`` for ``d`` in :data:`GRID`, weighted alike. Each likelihood
    ratio is a supermartingale for every rate on the null's side (a monotone likelihood
    ratio), so the mixture is too. 0.0 (an e-value of 1) when the counts lean the null's
    way: no evidence, and nothing computed.
    """
    if n <= 0 or k < 0:
        return 0.0
    k = min(k, n)
    if worse == ABOVE:
        if p0 >= 1.0 or k <= p0 * n:
            return 0.0
        if p0 <= 0.0:
            return math.inf
    else:
        if p0 <= 0.0 or k >= p0 * n:
            return 0.0
        if p0 >= 1.0:
            return math.inf
    odds = p0 / (1.0 - p0)
    logs = []
    for d in GRID:
        o = odds * (_EXP[d] if worse == ABOVE else _EXP_NEG[d])
        logs.append(_log_lr(k, n, p0, o / (1.0 + o)))
    top = max(logs)
    return top + math.log(sum(math.exp(x - top) for x in logs)) - LOG_GRID


_EXP = {d: math.exp(d) for d in GRID}
_EXP_NEG = {d: math.exp(-d) for d in GRID}


def ratio_null(limit: float, share: float) -> float:
    """The chance that a failure is the candidate's when its rate is ``limit`` x legacy's."""
    return limit * share / (limit * share + 1.0 - share)


def ratio_log_e(k1: float, k0: float, share: float, limit: float) -> float:
    """log e-value against "the candidate's rate is at most ``limit`` x legacy's".

    ``k1`` candidate and ``k0`` legacy failures on the same traffic, ``share`` the
    candidate's share of the calls. Each failure is a coin flip that lands "candidate"
    with probability :func:`ratio_null` at most, under the null (rare events).
    """
    if not 0.0 < share < 1.0 or k1 + k0 <= 0:
        return 0.0
    return binomial_log_e(k1, k1 + k0, ratio_null(limit, share), ABOVE)


# --- confidence sequences ---------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def count_needed(n: int, p0: float, log_threshold: float) -> int | None:
    """The fewest successes in ``n`` trials whose evidence against "rate <= p0" reaches
    ``log_threshold``; None when even ``n`` of ``n`` would not."""
    if n <= 0 or binomial_log_e(n, n, p0) < log_threshold:
        return None
    lo, hi = math.floor(p0 * n), n  # evidence(lo) < threshold <= evidence(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if binomial_log_e(mid, n, p0) >= log_threshold:
            hi = mid
        else:
            lo = mid
    return hi


@functools.lru_cache(maxsize=4096)
def rate_bounds(k: int, n: int, log_threshold: float) -> tuple[float, float]:
    """The rates that :func:`binomial_log_e` does not reject at ``log_threshold``, on
    either side: a confidence sequence for a rate, valid at every look at once."""
    if n <= 0:
        return 0.0, 1.0
    p, tiny = k / n, 1e-12
    optimize = _optimize()

    def above(p0: float) -> float:
        return binomial_log_e(k, n, p0, ABOVE) - log_threshold

    def below(p0: float) -> float:
        return binomial_log_e(k, n, p0, BELOW) - log_threshold

    lower = 0.0
    if k > 0 and above(tiny) > 0:
        lower = float(optimize.brentq(above, tiny, p, xtol=1e-15, rtol=1e-10))
    upper = 1.0
    if k < n and below(1.0 - tiny) > 0:
        upper = float(optimize.brentq(below, p, 1.0 - tiny, xtol=1e-15, rtol=1e-10))
    return lower, upper


def _upper_edge(key: int) -> float:
    """The largest value a sketch bin holds (values v with key ceil(log2(v) m + o))."""
    return float(2.0 ** ((key - _OFFSET) / _MULTIPLIER))


def _lower_edge(key: int) -> float:
    """Every value in the bin is above this."""
    return _upper_edge(key - 1)


def quantile_upper_bound(sketch: LatencySketch, q: float, log_threshold: float) -> float:
    """A value the ``q`` quantile is below, at every look: ``inf`` without enough calls.

    Enough calls at or below ``x`` (more than a fraction ``q``, with evidence
    ``log_threshold``) show that the quantile is at most ``x``. The bins are read from
    the bottom; the bound is the upper edge of the bin where that count is reached, so
    the sketch's rounding only widens it.
    """
    needed = count_needed(sketch.count, q, log_threshold)
    if needed is None:
        return math.inf
    running = sketch.zeros
    if running >= needed:
        return 0.0
    for key in sorted(sketch.bins):
        running += sketch.bins[key]
        if running >= needed:
            return _upper_edge(key)
    return math.inf


def quantile_lower_bound(sketch: LatencySketch, q: float, log_threshold: float) -> float:
    """A value the ``q`` quantile is above, at every look: 0 without enough calls."""
    needed = count_needed(sketch.count, 1.0 - q, log_threshold)
    if needed is None:
        return 0.0
    running = 0
    for key in sorted(sketch.bins, reverse=True):
        running += sketch.bins[key]
        if running >= needed:
            return _lower_edge(key)
    return 0.0


# --- the plan's budget --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Budget:
    """How the plan's ``1 - confidence`` is split, as thresholds on log e-values.

    ``alpha`` is split evenly between the plan's phases and, in a phase, between its
    tests (each guardrail and gate, and the decision matrix's two metrics). A test
    checked only on the evidence since the phase began spends its whole share there. A
    test also checked on windows that end now (to catch a change in mid-phase, a spike)
    spends half there and half on the windows.

    A window starts at a whole minute; one started ``u`` minutes into a phase planned
    for ``D`` minutes gets ``(6 / pi**2) / (D * (1 + u // D)**2)`` of that half: every
    minute of the planned phase alike, and minutes beyond it (a phase that holds) less
    and less, so the shares of every possible start add up to at most one.
    """

    alpha: float
    tests: int
    phases: int
    phase_minutes: float

    @property
    def share(self) -> float:
        """One test's share of ``alpha`` in this phase."""
        return self.alpha / (max(1, self.tests) * max(1, self.phases))

    def phase(self, *, windowed: bool = False) -> float:
        """The log e-value a test of the evidence since the phase began must reach."""
        return -math.log(self.share / 2.0 if windowed else self.share)

    def window(self, offset_minutes: int) -> float:
        """The same for a window that starts ``offset_minutes`` into the phase."""
        d = max(1.0, self.phase_minutes)
        late = 1 + int(max(0, offset_minutes) // d)
        return -math.log(self.share / 2.0) + math.log(d * late * late * math.pi**2 / 6.0)


def halved(log_threshold: float) -> float:
    """A test made of two confidence sequences gives each half of its share."""
    return log_threshold + math.log(2.0)


def adjusted_p(log_e: float, log_threshold: float, alpha: float) -> float:
    """An always-valid p-value, adjusted for every look, test and window of the plan.

    ``alpha * (1/share) / e``: at most ``alpha`` exactly when the e-value reaches its
    threshold, so "p <= alpha" reads the same as for a single fixed-sample test.
    """
    if log_e <= 0.0:
        return 1.0
    return min(1.0, alpha * math.exp(log_threshold - log_e))

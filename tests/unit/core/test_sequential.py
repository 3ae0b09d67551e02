"""The always-valid statistics: e-values, confidence sequences and the plan's budget.

Each e-value is checked against SciPy's binomial likelihoods, and its one promise — under
the null it reaches ``1/a`` at *some* look with a chance of at most ``a`` — is checked by
simulation: many seeded sequences, a look after every batch of calls, the share of
sequences that ever cross counted.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from switchover.core import sequential as seq
from switchover.core.sketch import LatencySketch


def mixture_by_hand(k: int, n: int, p0: float, sign: float) -> float:
    """The mean over the grid of binom.pmf(k, n, theta) / binom.pmf(k, n, p0), in logs."""
    eta = math.log(p0 / (1 - p0))
    ratios = [
        st.binom.logpmf(k, n, 1 / (1 + math.exp(-(eta + sign * d)))) - st.binom.logpmf(k, n, p0)
        for d in seq.GRID
    ]
    return float(np.log(np.mean(np.exp(ratios))))


@pytest.mark.parametrize(("k", "n", "p0"), [(18, 300, 0.05), (9, 1000, 0.001), (7, 10, 0.5)])
def test_binomial_e_value_is_the_mean_likelihood_ratio_over_the_grid(
    k: int, n: int, p0: float
) -> None:
    assert seq.binomial_log_e(k, n, p0) == pytest.approx(mixture_by_hand(k, n, p0, 1.0))


def test_the_lower_sided_e_value_mirrors_the_upper_one() -> None:
    # 700 of 1000 against "at least 80 %": the alternatives are below 80 %
    assert seq.binomial_log_e(700, 1000, 0.8, seq.BELOW) == pytest.approx(
        mixture_by_hand(700, 1000, 0.8, -1.0)
    )
    assert seq.binomial_log_e(300, 1000, 0.2) == pytest.approx(
        seq.binomial_log_e(700, 1000, 0.8, seq.BELOW)
    )


def test_counts_on_the_nulls_side_are_no_evidence() -> None:
    assert seq.binomial_log_e(4, 100, 0.05) == 0.0  # exactly at the null value
    assert seq.binomial_log_e(1, 100, 0.05) == 0.0
    assert seq.binomial_log_e(90, 100, 0.8, seq.BELOW) == 0.0
    assert seq.binomial_log_e(5, 0, 0.05) == 0.0
    assert seq.binomial_log_e(1, 100, 0.0) == math.inf  # a rate that must be 0 is not
    assert seq.binomial_log_e(100, 100, 1.0) == 0.0


def test_evidence_grows_with_the_excess_and_with_the_calls() -> None:
    e = [seq.binomial_log_e(k, 1000, 0.05) for k in (55, 60, 70, 90)]
    assert e == sorted(e) and e[-1] > 10
    assert seq.binomial_log_e(600, 10_000, 0.05) > seq.binomial_log_e(60, 1000, 0.05)


def test_the_ratio_test_is_a_coin_flip_per_failure() -> None:
    # at a 10 % share, "the candidate fails at most 1.5x as often" means a failure is the
    # candidate's with probability 1.5 x 0.1 / (1.5 x 0.1 + 0.9) = 1/7 at most
    assert seq.ratio_null(1.5, 0.1) == pytest.approx(1 / 7)
    assert seq.ratio_log_e(30, 70, 0.1, 1.5) == pytest.approx(seq.binomial_log_e(30, 100, 1 / 7))
    assert seq.ratio_log_e(30, 70, 0.0, 1.5) == 0.0  # no candidate traffic: no evidence
    assert seq.ratio_log_e(0, 0, 0.1, 1.5) == 0.0


def ever_crossed(
    rng: np.random.Generator, p: float, looks: int, batch: int, runs: int, level: float
) -> float:
    """The share of ``runs`` Bernoulli(p) sequences whose e-value against "rate <= p" reaches
    ``level`` at one of ``looks`` looks, one after every ``batch`` calls."""
    counts = rng.binomial(batch, p, size=(runs, looks)).cumsum(axis=1)
    crossed = 0
    for row in counts:
        n = 0
        for k in row.tolist():
            n += batch
            if seq.binomial_log_e(k, n, p) >= level:
                crossed += 1
                break
    return crossed / runs


@pytest.mark.parametrize("p", [0.001, 0.05, 0.5])
def test_at_the_null_value_the_e_value_crosses_1_over_a_at_any_look_at_most_a_of_the_time(
    p: float,
) -> None:
    """400 looks a sequence, 2,000 sequences: a fixed-sample test at 10 % would be wrong in
    most of them. At the null value itself (the hardest case) the e-value stays below
    1/0.1 in at least 90 % (and in practice many more)."""
    rng = np.random.default_rng(7)
    share = ever_crossed(rng, p, looks=400, batch=50, runs=2000, level=math.log(10))
    assert share <= 0.1
    # a fixed-sample binomial test at the same 10 % level, asked at every one of the looks
    fixed = 0
    counts = rng.binomial(50, p, size=(300, 400)).cumsum(axis=1)
    n = 50 * np.arange(1, 401)
    for row in counts:
        if (st.binom.sf(row - 1, n, p) < 0.1).any():
            fixed += 1
    assert fixed / 300 > 3 * share


def test_the_ratio_test_holds_its_level_at_the_limit_on_simulated_traffic() -> None:
    """Calls split 20/80, the candidate failing exactly 1.5x as often as legacy (1 % vs
    0.67 %): judged against "at most 1.5x" after every minute for 1,000 minutes."""
    rng = np.random.default_rng(3)
    runs, level, crossed = 400, math.log(20), 0
    for _ in range(runs):
        n1 = rng.binomial(1000, 0.2, size=1000)
        k1 = rng.binomial(n1, 0.01).cumsum()
        k0 = rng.binomial(1000 - n1, 0.01 / 1.5).cumsum()
        c1 = n1.cumsum()
        share = c1 / (1000 * np.arange(1, 1001))
        if any(
            seq.ratio_log_e(a, b, q, 1.5) >= level
            for a, b, q in zip(k1.tolist(), k0.tolist(), share.tolist(), strict=True)
        ):
            crossed += 1
    assert crossed / runs <= 0.05


def test_count_needed_is_the_first_count_whose_evidence_reaches_the_threshold() -> None:
    k = seq.count_needed(10_000, 0.05, 8.0)
    assert k is not None
    assert seq.binomial_log_e(k, 10_000, 0.05) >= 8.0 > seq.binomial_log_e(k - 1, 10_000, 0.05)
    assert seq.count_needed(5, 0.5, 8.0) is None  # 5 of 5 cannot show "above 50 %" at e^8
    assert seq.count_needed(0, 0.5, 1.0) is None


def test_rate_bounds_are_where_the_e_values_reach_the_threshold() -> None:
    low, high = seq.rate_bounds(50, 1000, 6.0)
    assert low < 0.05 < high
    assert seq.binomial_log_e(50, 1000, low) == pytest.approx(6.0, abs=1e-6)
    assert seq.binomial_log_e(50, 1000, high, seq.BELOW) == pytest.approx(6.0, abs=1e-6)
    # wider than a fixed-sample 99.5 % interval: they hold at every look
    exact = st.binomtest(50, 1000).proportion_ci(0.995)
    assert low < exact.low and high > exact.high
    assert seq.rate_bounds(0, 1000, 6.0)[0] == 0.0
    assert seq.rate_bounds(1000, 1000, 6.0)[1] == 1.0
    assert seq.rate_bounds(3, 0, 6.0) == (0.0, 1.0)


def lognormal_sketch(seed: int, n: int, median: float, p95: float) -> LatencySketch:
    rng = np.random.default_rng(seed)
    sigma = math.log(p95 / median) / st.norm.ppf(0.95)
    sketch = LatencySketch()
    for v in rng.lognormal(math.log(median), sigma, n).tolist():
        sketch.add(v)
    return sketch


def test_quantile_bounds_hold_the_true_quantile_and_the_sketchs_own() -> None:
    sketch = lognormal_sketch(1, 20_000, 300.0, 800.0)
    upper = seq.quantile_upper_bound(sketch, 0.95, 8.0)
    lower = seq.quantile_lower_bound(sketch, 0.95, 8.0)
    pooled = sketch.quantile(0.95)
    assert pooled is not None
    assert lower < 800.0 < upper
    assert lower < pooled < upper
    assert upper / lower < 1.15  # 20,000 calls pin the p95 down to a few percent
    # the bound counts whole sketch bins: at least 95 % of the calls are at or below it
    below = sketch.count - sketch.count_above(upper * 1.0000001)
    assert below >= 0.95 * sketch.count


def test_quantile_bounds_need_enough_calls() -> None:
    # 20 calls cannot show that 95 % of calls are below anything: no upper bound; a lower
    # bound exists (enough of 20 calls above x show the p95 above x) but is weak
    few = lognormal_sketch(2, 20, 300.0, 800.0)
    assert seq.quantile_upper_bound(few, 0.95, 8.0) == math.inf
    assert 0.0 < seq.quantile_lower_bound(few, 0.95, 8.0) < 400.0
    assert seq.quantile_lower_bound(LatencySketch(), 0.95, 8.0) == 0.0


def test_the_budget_never_spends_more_than_alpha() -> None:
    """Every phase, every test, the evidence since each phase began and every window start
    (a year of minutes beyond a 10-minute phase): the shares add up to at most alpha."""
    b = seq.Budget(alpha=0.02, tests=5, phases=4, phase_minutes=10)
    per_test = math.exp(-b.phase(windowed=True)) + sum(
        math.exp(-b.window(u)) for u in range(1, 525_600)
    )
    assert per_test <= b.share
    assert b.share * b.tests * b.phases == pytest.approx(0.02)
    assert math.exp(-b.phase()) == pytest.approx(b.share)  # not windowed: the whole share
    # a window in the planned phase costs log(D pi^2 / 6) more than the phase's test ...
    assert b.window(3) - b.phase(windowed=True) == pytest.approx(math.log(10 * math.pi**2 / 6))
    # ... and a window past the phase's planned length more again
    assert b.window(10) - b.window(9) == pytest.approx(math.log(4))


def test_the_adjusted_p_value_reads_like_a_fixed_test() -> None:
    threshold, alpha = 7.0, 0.02
    assert seq.adjusted_p(7.0, threshold, alpha) == pytest.approx(alpha)
    assert seq.adjusted_p(9.0, threshold, alpha) < alpha < seq.adjusted_p(6.0, threshold, alpha)
    assert seq.adjusted_p(0.0, threshold, alpha) == 1.0
    assert seq.halved(threshold) == pytest.approx(threshold + math.log(2))

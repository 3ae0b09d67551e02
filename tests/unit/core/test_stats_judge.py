"""The statistics behind verdicts and the judgement itself: pure, no store.

Evidence is built the way the controller sees it: per-minute :class:`Rollup` values filled
call by call with :meth:`Rollup.add` from a seeded :class:`random.Random`, turned into
:class:`MinuteStats` by :func:`minute_stats`. Error and outcome counts are exact (a chosen
number of calls, at random positions) so that each p-value below is known in advance.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from scipy import stats as st

from switchover.core import stats
from switchover.core.judge import (
    MIN_POINTS,
    Action,
    Check,
    Classification,
    Evidence,
    MinuteStats,
    Pool,
    Result,
    Situation,
    Verdict,
    check_absolute,
    check_relative,
    compare_metrics,
    judge,
    matrix_checks,
    minute_stats,
)
from switchover.core.plan import Gate, Plan, load_plan, parse_gate
from switchover.core.rollup import Rollup

M0 = 29_500_000
"""A minute since the epoch (mid 2026): every window below starts here."""
T0 = M0 * 60.0


# --- evidence helpers ----------------------------------------------------------------


def fill(
    rng: random.Random,
    calls: int,
    *,
    errors: int = 0,
    p50: float = 200.0,
    p95: float = 400.0,
    outcomes: Mapping[str, int] | None = None,
    slow: int = 0,
    slow_ms: float = 1500.0,
) -> Rollup:
    """One minute of one side: ``calls`` log-normal latencies fitted to p50 and p95.

    Exactly ``errors`` calls fail, exactly ``outcomes[name]`` calls report ``name`` and
    exactly ``slow`` calls take ``slow_ms`` (each set at random positions); the others
    are capped well below ``slow_ms``.
    """
    r = Rollup()
    mu, sigma = math.log(p50), math.log(p95 / p50) / 1.6448536269514722
    positions = list(range(calls))
    failing = set(rng.sample(positions, errors))
    slow_set = set(rng.sample(positions, slow))
    hits = {name: set(rng.sample(positions, k)) for name, k in (outcomes or {}).items()}
    for i in range(calls):
        latency = slow_ms if i in slow_set else min(rng.lognormvariate(mu, sigma), 0.45 * slow_ms)
        ok = i not in failing
        outcome = {name: 1.0 for name, chosen in hits.items() if i in chosen} or None
        r.add(latency, ok, None if ok else "Boom", not ok, outcome)
    return r


def minutes(
    seed: int,
    count: int,
    calls: int,
    *,
    first: int = M0,
    errors: int = 0,
    p50: float = 200.0,
    p95: float = 400.0,
    outcomes: Mapping[str, int] | None = None,
    slow: int = 0,
) -> list[MinuteStats]:
    """``count`` consecutive minutes from ``first``, each built by :func:`fill`."""
    rng = random.Random(seed)
    return [
        minute_stats(
            m,
            fill(rng, calls, errors=errors, p50=p50, p95=p95, outcomes=outcomes, slow=slow),
        )
        for m in range(first, first + count)
    ]


def pool(seed: int, count: int, calls: int, **kw: Any) -> Pool:
    return Pool(minutes(seed, count, calls, **kw))


def evidence(candidate: Sequence[MinuteStats], legacy: Sequence[MinuteStats]) -> Evidence:
    """What the evidence cache answers: the minutes of each side in [start, end)."""

    def read(start: int, end: int, operation: str | None) -> Mapping[str, Sequence[MinuteStats]]:
        return {
            "candidate": [m for m in candidate if start <= m.minute < end],
            "legacy": [m for m in legacy if start <= m.minute < end],
        }

    return read


def gate(text: str) -> Gate:
    return parse_gate(text, "test")


PLAN = """
plan: stats_test
window: 30m
recent: 2m
min_samples: 100
confidence: 98%
phases:
  - {name: canary, percentage: 10, duration: 30m, gates: ["p95 < 800ms"]}
  - {name: half, percentage: 50, duration: 30m, gates: ["p95 < 800ms"]}
  - {name: full, percentage: 100, duration: 30m, gates: ["p95 < 800ms"]}
"""


@pytest.fixture(scope="module")
def plan() -> Plan:
    return load_plan(PLAN, "stats_test.yaml")


# --- stats: p-values against known values -------------------------------------------


@pytest.mark.parametrize(("k", "n", "p0"), [(18, 300, 0.05), (180, 3000, 0.05), (1, 10, 0.2)])
def test_binomial_tails_equal_scipys_exact_binomial_test(k: int, n: int, p0: float) -> None:
    above = st.binomtest(k, n, p0, alternative="greater").pvalue
    below = st.binomtest(k, n, p0, alternative="less").pvalue
    assert stats.binomial_above(k, n, p0) == pytest.approx(above, rel=1e-9)
    assert stats.binomial_below(k, n, p0) == pytest.approx(below, rel=1e-9)


def test_binomial_edge_cases() -> None:
    assert stats.binomial_above(0, 100, 0.05) == 1.0
    assert stats.binomial_above(5, 0, 0.05) == 1.0
    assert stats.binomial_above(1, 100, 0.0) == 0.0
    assert stats.binomial_below(3, 0, 0.5) == 1.0
    assert stats.binomial_below(99, 100, 1.0) == 0.0
    assert stats.binomial_below(100, 100, 1.0) == 1.0
    # P(X >= 2) for Binomial(2, 0.5) = 1/4, P(X <= 0) = 1/4, by hand
    assert stats.binomial_above(2, 2, 0.5) == pytest.approx(0.25)
    assert stats.binomial_below(0, 2, 0.5) == pytest.approx(0.25)


def test_two_proportions_is_the_pooled_z_test_for_large_counts() -> None:
    # 6 % of 1000 against 4 % of 1000, by hand: pooled 5 %, z = 0.02 / sqrt(.05*.95*2/1000)
    z = 0.02 / math.sqrt(0.05 * 0.95 * (2 / 1000))
    greater = 0.5 * math.erfc(z / math.sqrt(2))
    assert z == pytest.approx(2.0519, abs=1e-4)
    assert stats.two_proportions(60, 1000, 40, 1000, alternative="greater") == pytest.approx(
        greater, rel=1e-9
    )
    assert greater == pytest.approx(0.02009, abs=1e-5)
    assert stats.two_proportions(60, 1000, 40, 1000, alternative="less") == pytest.approx(
        1 - greater, rel=1e-9
    )
    # no variation at all: nothing to test
    assert stats.two_proportions(0, 1000, 0, 1000, alternative="greater") == 1.0
    assert stats.two_proportions(5, 0, 1, 10, alternative="greater") == 1.0


def test_two_proportions_uses_fishers_exact_test_for_small_counts() -> None:
    # 3 of 20 against 0 of 20: an expected cell of 1.5 calls for Fisher. By hand, the
    # one-sided p-value is P(all 3 failures fall in the candidate's 20 of 40 calls)
    by_hand = math.comb(20, 3) / math.comb(40, 3)
    got = stats.two_proportions(3, 20, 0, 20, alternative="greater")
    assert got == pytest.approx(by_hand, rel=1e-9)
    assert got == pytest.approx(
        st.fisher_exact([[3, 17], [0, 20]], alternative="greater").pvalue, rel=1e-12
    )
    # the z-test would have said p = 0.036, "significant" at 95 %
    se = math.sqrt(0.075 * 0.925 * (2 / 20))
    assert 0.5 * math.erfc((0.15 / se) / math.sqrt(2)) < 0.05 < got


def test_mann_whitney_needs_two_points_a_side() -> None:
    assert stats.mann_whitney([1.0], [1.0, 2.0, 3.0]) == 1.0
    assert stats.mann_whitney([1.0, 2.0], [5.0]) == 1.0
    assert stats.mann_whitney([], []) == 1.0
    assert stats.mann_whitney([4.0, 4.0], [4.0, 4.0, 4.0]) == 1.0
    cand, legacy = [10.0, 11.0, 12.0, 13.0, 14.0], [1.0, 2.0, 3.0, 4.0, 5.0]
    expected = st.mannwhitneyu(cand, legacy, alternative="two-sided").pvalue
    assert stats.mann_whitney(cand, legacy) == pytest.approx(expected)
    assert stats.mann_whitney(cand, legacy) == pytest.approx(2 / math.comb(10, 5))
    # one-sided: every candidate point above every legacy point, 1 ordering in C(10, 5)
    assert stats.mann_whitney(cand, legacy, alternative="greater") == pytest.approx(
        1 / math.comb(10, 5)
    )
    assert stats.mann_whitney(legacy, cand, alternative="greater") == pytest.approx(1.0)


def _agresti_caffo(k: int, n: int) -> tuple[float, float]:
    p = (k + 1) / (n + 2)
    return p, p * (1 - p) / (n + 2)


def test_ratio_above_tests_against_the_limit_not_against_equality() -> None:
    # 3 % of 1000 against 0 of 1000, limit 1.5x: by hand with one success and one failure
    # added to each side (Agresti-Caffo), z = (p1 - 1.5 p0) / sqrt(v1 + 1.5^2 v0)
    p1, v1 = _agresti_caffo(30, 1000)
    p0, v0 = _agresti_caffo(0, 1000)
    z = (p1 - 1.5 * p0) / math.sqrt(v1 + 1.5**2 * v0)
    assert stats.ratio_above(30, 1000, 0, 1000, 1.5) == pytest.approx(
        0.5 * math.erfc(z / math.sqrt(2)), rel=1e-9
    )
    assert stats.ratio_above(30, 1000, 0, 1000, 1.5) < 1e-6
    # 1.1x legacy is no evidence against "at most 1.5x", however many calls
    assert stats.ratio_above(1100, 100_000, 1000, 100_000, 1.5) > 0.99
    # right at the limit: a coin flip
    assert stats.ratio_above(15_000, 100_000, 10_000, 100_000, 1.5) == pytest.approx(0.5, abs=0.01)
    assert stats.ratio_above(3, 0, 1, 10, 1.5) == 1.0


def test_difference_above_tests_a_drop_beyond_the_margin() -> None:
    p0, v0 = _agresti_caffo(900, 3000)
    p1, v1 = _agresti_caffo(720, 3000)
    z = (p0 - p1 - 0.02) / math.sqrt(v0 + v1)
    assert stats.difference_above(900, 3000, 720, 3000, 0.02) == pytest.approx(
        0.5 * math.erfc(z / math.sqrt(2)), rel=1e-9
    )
    # a 1-point drop is within a 2-point margin, even on a million calls
    assert stats.difference_above(300_000, 10**6, 290_000, 10**6, 0.02) > 0.99
    assert stats.difference_above(5, 10, 1, 0, 0.02) == 1.0


# --- check_absolute -----------------------------------------------------------------


def test_error_rate_6_percent_of_3000_fails_significantly(plan: Plan) -> None:
    cand = pool(1, 30, 100, errors=6)
    assert (cand.calls, cand.errors) == (3000, 180)
    check = check_absolute(gate("error_rate < 5%"), cand, plan)
    assert check.result is Result.FAIL
    assert check.classification is Classification.HIGH
    assert check.p_value is not None and check.p_value < 0.02
    assert check.p_value == pytest.approx(stats.binomial_above(180, 3000, 0.05))
    assert check.candidate == pytest.approx(0.06)
    assert check.effect == pytest.approx(1.2)
    assert check.samples == (3000, 0)
    assert "error_rate < 5% failed" in check.reason and "180 of 3000" in check.reason
    assert "significant" in check.reason


def test_error_rate_6_percent_of_100_is_not_significant(plan: Plan) -> None:
    cand = pool(2, 1, 100, errors=6)
    check = check_absolute(gate("error_rate < 5%"), cand, plan)
    assert check.result is Result.INCONCLUSIVE
    assert check.p_value is not None and check.p_value > 0.3
    assert "not significant yet" in check.reason


def test_error_rate_1_percent_of_3000_passes(plan: Plan) -> None:
    check = check_absolute(gate("error_rate < 5%"), pool(3, 30, 100, errors=1), plan)
    assert check.result is Result.PASS
    assert check.classification is Classification.PASS
    assert check.candidate == pytest.approx(0.01)
    assert "passed" in check.reason


def test_too_few_calls_are_inconclusive_even_when_clean(plan: Plan) -> None:
    check = check_absolute(gate("error_rate < 5%"), pool(4, 1, 50), plan)
    assert check.result is Result.INCONCLUSIVE
    assert check.classification is Classification.NODATA
    assert "too few samples (50 of 100 calls)" in check.reason


def test_no_traffic_is_nodata(plan: Plan) -> None:
    for text in ("error_rate < 5%", "p95 < 800ms", "outcome.cache_hit > 80%"):
        check = check_absolute(gate(text), Pool([]), plan)
        assert check.result is Result.INCONCLUSIVE
        assert check.classification is Classification.NODATA
        assert check.samples == (0, 0)
        assert "no candidate traffic" in check.reason


def test_latency_gate_fails_when_10_percent_of_calls_are_slower(plan: Plan) -> None:
    cand = pool(5, 10, 100, slow=10)
    check = check_absolute(gate("p95 < 800ms"), cand, plan)
    assert cand.above(800.0) == 100
    assert check.result is Result.FAIL
    assert check.classification is Classification.HIGH
    assert check.p_value == pytest.approx(stats.binomial_above(100, 1000, 0.05))
    assert check.p_value is not None and check.p_value < 1e-6
    assert check.effect == pytest.approx(2.0)
    assert "100 of 1000 calls slower than 800 ms" in check.reason


def test_latency_gate_passes_when_fast(plan: Plan) -> None:
    check = check_absolute(gate("p95 < 800ms"), pool(6, 10, 100), plan)
    assert check.result is Result.PASS
    assert check.candidate is not None and 300 < check.candidate < 500


def test_outcome_floor_fails_low_at_70_percent_and_passes_at_85(plan: Plan) -> None:
    g = gate("outcome.cache_hit > 80%")
    low = check_absolute(g, pool(7, 10, 100, outcomes={"cache_hit": 70}), plan)
    assert low.result is Result.FAIL
    assert low.classification is Classification.LOW
    assert low.candidate == pytest.approx(0.70)
    assert low.p_value == pytest.approx(stats.binomial_below(700, 1000, 0.8))
    high = check_absolute(g, pool(8, 10, 100, outcomes={"cache_hit": 85}), plan)
    assert high.result is Result.PASS
    assert high.candidate == pytest.approx(0.85)


# --- check_relative -----------------------------------------------------------------


def test_p95_ratio_fails_through_mann_whitney_at_1_5x_over_30_minutes(plan: Plan) -> None:
    cand = pool(10, 30, 200, p50=300, p95=600)
    legacy = pool(11, 30, 200, p50=200, p95=400)
    check = check_relative(gate("p95_ratio <= 1.2"), cand, legacy, plan)
    assert check.result is Result.FAIL
    assert check.classification is Classification.HIGH
    assert check.effect is not None and 1.35 < check.effect < 1.65
    series_c, series_l = cand.latency_series("p95"), legacy.latency_series("p95")
    assert len(series_c) == len(series_l) == 30
    # H0 is the limit: candidate <= 1.2 x legacy, so legacy is scaled before comparing
    scaled = [1.2 * x for x in series_l]
    assert check.p_value == pytest.approx(
        stats.mann_whitney(series_c, scaled, alternative="greater")
    )
    assert check.p_value is not None and check.p_value < 1e-6
    assert "Mann-Whitney" in check.reason


def test_p95_ratio_below_the_limit_passes_however_many_minutes(plan: Plan) -> None:
    """1.1x is significantly slower than legacy, but not above the 1.2x limit."""
    cand = pool(29, 60, 500, p50=220, p95=440)
    legacy = pool(30, 60, 500)
    assert (
        stats.mann_whitney(
            cand.latency_series("p95"), legacy.latency_series("p95"), alternative="greater"
        )
        < 1e-6
    )
    check = check_relative(gate("p95_ratio <= 1.2"), cand, legacy, plan)
    assert check.result is Result.PASS
    assert check.effect is not None and 1.0 < check.effect < 1.2


def test_p95_ratio_passes_for_identical_sides(plan: Plan) -> None:
    check = check_relative(gate("p95_ratio <= 1.2"), pool(12, 30, 200), pool(13, 30, 200), plan)
    assert check.result is Result.PASS
    assert check.effect == pytest.approx(1.0, abs=0.1)


def test_p95_ratio_on_3_minutes_is_inconclusive(plan: Plan) -> None:
    cand = pool(14, 3, 500, p50=300, p95=600)
    legacy = pool(15, 3, 500)
    check = check_relative(gate("p95_ratio <= 1.2"), cand, legacy, plan)
    assert check.result is Result.INCONCLUSIVE
    assert check.classification is Classification.NODATA
    assert check.p_value is None  # too few points to ask Mann-Whitney
    assert f"3/3 of {MIN_POINTS} points" in check.reason


def test_sparse_minutes_are_merged_into_latency_points() -> None:
    sparse = Pool(minutes(16, 12, 4))  # 4 calls a minute: 3 minutes make one point
    assert len(sparse.latency_series("p95")) == 4


def test_error_ratio_fails_when_legacy_has_no_errors(plan: Plan) -> None:
    cand = pool(17, 10, 100, errors=3)
    legacy = pool(18, 10, 100)
    check = check_relative(gate("error_ratio <= 1.5"), cand, legacy, plan)
    assert check.result is Result.FAIL
    assert check.classification is Classification.HIGH
    assert check.effect == math.inf
    assert check.p_value == pytest.approx(stats.ratio_above(30, 1000, 0, 1000, 1.5))
    assert check.p_value is not None and check.p_value < 1e-6
    assert "two-proportion test" in check.reason


def test_error_ratio_with_no_errors_anywhere_passes(plan: Plan) -> None:
    check = check_relative(gate("error_ratio <= 1.5"), pool(19, 10, 100), pool(20, 10, 100), plan)
    assert check.result is Result.PASS
    assert check.effect == 1.0


def test_outcome_drop_fails_when_bookings_drop_significantly(plan: Plan) -> None:
    cand = pool(21, 30, 100, outcomes={"booked": 24})
    legacy = pool(22, 30, 100, outcomes={"booked": 30})
    check = check_relative(gate("outcome_drop.booked < 2%"), cand, legacy, plan)
    assert check.result is Result.FAIL
    assert check.classification is Classification.LOW
    assert check.effect == pytest.approx(0.06)
    assert check.p_value == pytest.approx(stats.difference_above(900, 3000, 720, 3000, 0.02))
    assert check.p_value is not None and check.p_value < 0.02
    # a drop within the tolerance passes
    same = pool(23, 30, 100, outcomes={"booked": 29})
    assert check_relative(gate("outcome_drop.booked < 2%"), same, legacy, plan).result is (
        Result.PASS
    )


def test_relative_gate_without_legacy_traffic_is_nodata(plan: Plan) -> None:
    check = check_relative(gate("p95_ratio <= 1.2"), pool(24, 10, 100), Pool([]), plan)
    assert check.result is Result.INCONCLUSIVE
    assert check.classification is Classification.NODATA
    assert "no legacy traffic" in check.reason


# --- matrix and metric table ---------------------------------------------------------


def test_matrix_reports_only_the_most_severe_level(plan: Plan) -> None:
    rows = matrix_checks(plan, pool(25, 10, 100, errors=60), "phase")
    assert [level for level, _ in rows] == ["P0"]
    assert rows[0][1].name == "P0: error_rate <= 50%"
    assert matrix_checks(plan, pool(26, 10, 100, errors=1), "phase") == []


def test_metric_table_classifies_each_metric(plan: Plan) -> None:
    cand = pool(27, 30, 100, errors=5, p50=300, p95=600, outcomes={"booked": 24})
    legacy = pool(28, 30, 100, errors=1, outcomes={"booked": 30})
    rows = {c.name: c for c in compare_metrics(plan, cand, legacy)}
    assert rows["error_rate"].classification is Classification.HIGH
    assert rows["outcome.booked"].classification is Classification.LOW
    assert rows["p95"].classification is Classification.HIGH
    assert rows["fallback_rate"].classification is Classification.HIGH
    assert all(c.scope == "metric" for c in rows.values())


# --- judge ---------------------------------------------------------------------------


def judged(
    plan: Plan,
    *,
    phase_index: int,
    elapsed_minutes: int,
    cand: Sequence[MinuteStats],
    legacy: Sequence[MinuteStats],
    status: str = "running",
    approved: bool = False,
) -> Verdict:
    situation = Situation(
        plan=plan,
        phase_index=phase_index,
        phase_started=T0,
        now=T0 + elapsed_minutes * 60,
        status=status,
        approved=approved,
    )
    return judge(situation, evidence(cand, legacy))


def clean(seed: int, count: int = 40, calls: int = 100, **kw: Any) -> list[MinuteStats]:
    """``count`` minutes from M0, clean unless told otherwise."""
    return minutes(seed, count, calls, **kw)


def by_name(verdict: Verdict) -> dict[str, Check]:
    return {c.name: c for c in verdict.checks}


def test_p0_error_rate_rolls_back_totally_even_with_passing_gates(plan: Plan) -> None:
    v = judged(plan, phase_index=1, elapsed_minutes=40, cand=clean(30, errors=60), legacy=clean(31))
    assert v.action is Action.ROLLBACK_TOTAL
    assert v.severity == "P0"
    assert v.target_index == -1
    assert by_name(v)["p95 < 800ms"].result is Result.PASS
    assert by_name(v)["P0: error_rate <= 50%"].result is Result.FAIL
    assert v.reasons[0].startswith("P0: immediate total rollback")


def test_p1_error_rate_rolls_back_to_the_previous_phase(plan: Plan) -> None:
    v = judged(plan, phase_index=1, elapsed_minutes=40, cand=clean(32, errors=12), legacy=clean(33))
    assert v.action is Action.ROLLBACK_PARTIAL
    assert v.severity == "P1"
    assert v.target_index == 0
    assert "P1: rolling back to phase 'canary'" in v.reasons[0]
    first = judged(
        plan, phase_index=0, elapsed_minutes=20, cand=clean(32, errors=12), legacy=clean(33)
    )
    assert (first.action, first.target_index) == (Action.ROLLBACK_PARTIAL, -1)
    assert "0% (before the plan)" in first.reasons[0]
    # 12 % of 500 calls is significantly above P2's 5 % but not above P1's 10 %: a hold
    early = judged(
        plan, phase_index=0, elapsed_minutes=5, cand=clean(32, errors=12), legacy=clean(33)
    )
    assert (early.action, early.severity) == (Action.HOLD, "P2")


def test_p2_error_rate_with_enough_samples_holds(plan: Plan) -> None:
    v = judged(plan, phase_index=1, elapsed_minutes=40, cand=clean(34, errors=6), legacy=clean(35))
    assert v.action is Action.HOLD
    assert v.severity == "P2"
    assert v.target_index is None
    assert v.reasons[0] == "P2: holding and alerting"
    assert any("P2: error_rate <= 5%" in r for r in v.reasons)
    # 6 % of 100 calls is not evidence of anything: no P2
    few = judged(
        plan, phase_index=1, elapsed_minutes=1, cand=clean(34, count=1, errors=6), legacy=clean(35)
    )
    assert few.severity == "P3"


def test_before_the_minimum_duration_the_phase_continues(plan: Plan) -> None:
    v = judged(plan, phase_index=0, elapsed_minutes=10, cand=clean(36), legacy=clean(37))
    assert v.action is Action.CONTINUE
    assert v.severity == "P3"
    assert "for 10m of 30m" in v.reasons[0]


def test_after_the_duration_with_every_gate_passing_it_advances(plan: Plan) -> None:
    v = judged(plan, phase_index=0, elapsed_minutes=40, cand=clean(38), legacy=clean(39))
    assert v.action is Action.ADVANCE
    assert v.target_index == 1
    assert "advancing to half (50%)" in v.reasons[0]
    assert v.window == (M0 + 10, M0 + 40)  # the 30-minute window ending now
    assert all(c.result is Result.PASS for c in v.checks)


def test_inconclusive_gates_hold_after_the_duration(plan: Plan) -> None:
    v = judged(plan, phase_index=0, elapsed_minutes=40, cand=clean(40, calls=2), legacy=clean(41))
    assert v.action is Action.HOLD
    assert v.severity == "P3"
    assert v.reasons[0].startswith("inconclusive: 1 gate(s)")
    assert any("too few samples" in r for r in v.reasons)


def test_the_last_phase_completes(plan: Plan) -> None:
    v = judged(plan, phase_index=2, elapsed_minutes=40, cand=clean(42), legacy=clean(43))
    assert v.action is Action.COMPLETE
    assert v.target_index is None
    assert "rollout complete" in v.reasons[0]


def test_at_100_percent_relative_gates_compare_with_legacys_baseline() -> None:
    plan = load_plan(
        """
plan: baseline
window: 30m
min_samples: 100
guardrails: ["p95_ratio <= 1.2"]
phases:
  - {name: full, percentage: 100, duration: 30m}
""",
        "baseline.yaml",
    )
    legacy_before = minutes(44, 30, 100, first=M0 - 30)  # legacy only served before
    fine = judged(plan, phase_index=0, elapsed_minutes=30, cand=clean(45, 30), legacy=legacy_before)
    assert fine.action is Action.COMPLETE
    assert by_name(fine)["p95_ratio <= 1.2"].samples == (3000, 3000)
    slow = judged(
        plan,
        phase_index=0,
        elapsed_minutes=30,
        cand=clean(46, 30, p50=300, p95=600),
        legacy=legacy_before,
    )
    assert slow.action is Action.ROLLBACK_PARTIAL


def test_next_phase_requiring_approval_waits_until_approved() -> None:
    plan = load_plan(
        PLAN.replace(
            "percentage: 50, duration: 30m,",
            "percentage: 50, duration: 30m, requires_approval: true,",
        ),
        "approval.yaml",
    )
    assert plan.phases[1].requires_approval
    waiting = judged(plan, phase_index=0, elapsed_minutes=40, cand=clean(47), legacy=clean(48))
    assert waiting.action is Action.HOLD
    assert waiting.awaiting_approval
    assert "waiting for approval to enter 'half'" in waiting.reasons[0]
    approved = judged(
        plan, phase_index=0, elapsed_minutes=40, cand=clean(47), legacy=clean(48), approved=True
    )
    assert approved.action is Action.ADVANCE
    assert approved.target_index == 1
    assert not approved.awaiting_approval


def test_paused_never_advances_but_still_rolls_back_on_p1(plan: Plan) -> None:
    held = judged(
        plan, phase_index=0, elapsed_minutes=40, cand=clean(49), legacy=clean(50), status="paused"
    )
    assert held.action is Action.HOLD
    assert held.reasons[0].startswith("paused: not advancing")
    rolled = judged(
        plan,
        phase_index=1,
        elapsed_minutes=40,
        cand=clean(51, errors=12),
        legacy=clean(52),
        status="paused",
    )
    assert rolled.action is Action.ROLLBACK_PARTIAL
    assert rolled.severity == "P1"


def test_before_the_first_phase_the_plan_starts(plan: Plan) -> None:
    v = judged(plan, phase_index=-1, elapsed_minutes=0, cand=[], legacy=[])
    assert v.action is Action.START
    assert v.target_index == 0
    assert v.severity == "P3"
    assert "phase 'canary' at 10%" in v.reasons[0]
    gated = load_plan(
        PLAN.replace("duration: 30m, gates", "duration: 30m, requires_approval: true, gates", 1),
        "first.yaml",
    )
    waiting = judged(gated, phase_index=-1, elapsed_minutes=0, cand=[], legacy=[])
    assert (waiting.action, waiting.awaiting_approval) == (Action.HOLD, True)
    # rolled back to before the first phase: it does not start again by itself
    back = judged(plan, phase_index=-1, elapsed_minutes=0, cand=[], legacy=[], status="rolled_back")
    assert (back.action, back.target_index) == (Action.HOLD, None)


def test_a_failed_gate_rolls_back_and_a_hold_guardrail_holds() -> None:
    plan = load_plan(
        """
plan: actions
window: 30m
min_samples: 100
guardrails:
  - {gate: "outcome.cache_hit > 80%", action: hold}
phases:
  - {name: one, percentage: 10, duration: 30m}
  - {name: two, percentage: 50, duration: 30m, gates: ["error_rate < 2%"]}
""",
        "actions.yaml",
    )
    misses = clean(53, outcomes={"cache_hit": 70})
    hold = judged(plan, phase_index=0, elapsed_minutes=40, cand=misses, legacy=clean(54))
    assert (hold.action, hold.severity) == (Action.HOLD, "P2")
    errors = clean(55, errors=4, outcomes={"cache_hit": 90})
    back = judged(plan, phase_index=1, elapsed_minutes=40, cand=errors, legacy=clean(56))
    assert (back.action, back.severity, back.target_index) == (Action.ROLLBACK_PARTIAL, "P1", 0)
    assert any(r.startswith("error_rate < 2% failed") for r in back.reasons)


def test_guardrails_catch_a_spike_in_the_recent_window() -> None:
    plan = load_plan(
        """
plan: spike
window: 30m
recent: 2m
min_samples: 100
guardrails: ["error_rate < 5%"]
phases:
  - {name: one, percentage: 50, duration: 30m}
""",
        "spike.yaml",
    )
    # 28 clean minutes and then 2 minutes at 20 %: 4 % over the window, 20 % recently
    cand = minutes(57, 28, 500) + minutes(58, 2, 500, first=M0 + 28, errors=100)
    v = judged(plan, phase_index=0, elapsed_minutes=30, cand=cand, legacy=clean(59, 30, 500))
    check = by_name(v)["error_rate < 5%"]
    assert (check.result, check.window) == (Result.FAIL, "recent")
    assert v.action is Action.ROLLBACK_PARTIAL


def test_verdict_serialises_checks_and_metrics(plan: Plan) -> None:
    v = judged(plan, phase_index=0, elapsed_minutes=40, cand=clean(60), legacy=clean(61))
    data = v.to_dict()
    assert data["action"] == "advance"
    assert data["window"] == {"from_minute": M0 + 10, "to_minute": M0 + 40}
    assert {c["name"] for c in data["checks"]} == {"p95 < 800ms"}
    assert {m["name"] for m in data["metrics"]} >= {"error_rate", "p95"}

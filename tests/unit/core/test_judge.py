"""The judgement step by step (spans, budget, evidence, checks, severity, action), then whole.

Evidence is built the way the controller sees it: per-minute rollups filled call by call
from a seeded :class:`random.Random`, with exact error counts, read through
:func:`~switchover.core.judge.minutes_by_side`.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from typing import Any

import pytest

from switchover.core.checks import MATRIX_TESTS
from switchover.core.evidence import MinuteEvidence, MinuteStats, minute_stats
from switchover.core.judge import (
    Action,
    Check,
    Decision,
    Result,
    Severity,
    Situation,
    Verdict,
    budget,
    decide,
    gather,
    judge,
    minutes_by_side,
    run_checks,
    severity_of,
    spans,
    window_lengths,
)
from switchover.core.judge import Checked as CheckedResult
from switchover.core.plan import GateAction, Plan, load_plan
from switchover.core.rollup import Rollup
from switchover.core.verdict import PHASE, RECENT, Classification, Scope

M0 = 29_500_000
"""A minute since the epoch (mid 2026): every phase below starts here."""
T0 = M0 * 60.0

PLAN = """
plan: judge_test
window: 30m
recent: 2m
min_samples: 100
confidence: 98%
guardrails: ["error_rate < 5%"]
phases:
  - {name: canary, percentage: 10, duration: 30m, gates: ["p95 < 800ms"]}
  - {name: half, percentage: 50, duration: 30m, gates: ["p95 < 800ms"]}
  - {name: full, percentage: 100, duration: 30m, gates: ["p95 < 800ms"]}
"""


@pytest.fixture(scope="module")
def plan() -> Plan:
    return load_plan(PLAN, "judge_test.yaml")


def fill(rng: random.Random, calls: int, errors: int, p50: float, p95: float) -> Rollup:
    r = Rollup()
    mu, sigma = math.log(p50), math.log(p95 / p50) / 1.6448536269514722
    failing = set(rng.sample(range(calls), errors))
    for i in range(calls):
        ok = i not in failing
        r.add(min(rng.lognormvariate(mu, sigma), 5000.0), ok, None if ok else "Boom", not ok, None)
    return r


def minutes(
    seed: int,
    count: int = 40,
    calls: int = 100,
    *,
    first: int = M0,
    errors: int = 0,
    p50: float = 200.0,
    p95: float = 400.0,
) -> list[MinuteStats]:
    rng = random.Random(seed)
    return [
        minute_stats(m, fill(rng, calls, errors, p50, p95)) for m in range(first, first + count)
    ]


def situation(plan: Plan, phase_index: int, elapsed_minutes: float, **kw: Any) -> Situation:
    return Situation(
        plan=plan, phase_index=phase_index, phase_started=T0, now=T0 + elapsed_minutes * 60, **kw
    )


def judged(
    plan: Plan,
    *,
    phase_index: int,
    elapsed_minutes: float,
    cand: Sequence[MinuteStats],
    legacy: Sequence[MinuteStats],
    **kw: Any,
) -> Verdict:
    return judge(situation(plan, phase_index, elapsed_minutes, **kw), minutes_by_side(cand, legacy))


def by_name(verdict: Verdict) -> dict[str, Check]:
    return {c.name: c for c in verdict.checks}


# --- 1. spans -----------------------------------------------------------------------------------


def test_windows_double_from_recent_to_window(plan: Plan) -> None:
    assert window_lengths(plan) == [2, 4, 8, 16, 30]
    one = load_plan(
        "plan: w\nwindow: 1h\nrecent: 5m\nphases: [{name: a, percentage: 1, duration: 1h}]", "w"
    )
    assert window_lengths(one) == [5, 10, 20, 40, 60]


def test_spans_read_the_whole_phase_and_only_windows_begun_after_it(plan: Plan) -> None:
    sp = spans(situation(plan, 0, 10))
    assert sp.phase == (M0, M0 + 10)
    assert sp.windows == ((M0 + 8, M0 + 10), (M0 + 6, M0 + 10), (M0 + 2, M0 + 10))
    assert sp.baseline == (M0 - 30, M0)
    # a phase that began in mid-minute starts at the next whole minute
    # and the minute in progress counts (here 30 s of minute M0 + 20)
    late = Situation(plan, 0, T0 + 30, T0 + 30 + 20 * 60)
    assert spans(late).phase == (M0 + 1, M0 + 21)
    # guardrails and the matrix also read the minute the phase began in, except after a
    # rollback (the calls that caused it are not judged twice)
    assert spans(late).guard == (M0, M0 + 21)
    back = Situation(plan, 0, T0 + 30, T0 + 30 + 20 * 60, status="rolled_back")
    assert spans(back).guard == (M0 + 1, M0 + 21)
    # three days in: the phase's evidence is three days long, the windows 30 minutes at most
    long = spans(situation(plan, 0, 3 * 1440))
    assert long.phase == (M0, M0 + 3 * 1440) and long.windows[-1] == (
        M0 + 3 * 1440 - 30,
        M0 + 3 * 1440,
    )


# --- 2. budget ----------------------------------------------------------------------------------


def test_the_budget_counts_every_test_of_the_phase(plan: Plan) -> None:
    b = budget(plan, 0)
    assert (b.tests, b.phases, b.phase_minutes) == (1 + 1 + MATRIX_TESTS, 3, 30.0)
    assert b.alpha == pytest.approx(0.02)
    assert b.phase() == pytest.approx(math.log(4 * 3 / 0.02))


# --- 3. gather ----------------------------------------------------------------------------------


def test_at_100_percent_legacys_baseline_stands_in_for_it(plan: Plan) -> None:
    legacy_before = minutes(1, 30, 100, first=M0 - 30)
    g = gather(
        situation(plan, 2, 20), MinuteEvidence(minutes_by_side(minutes(2, 20), legacy_before))
    )
    sides = g.phase(None)
    assert sides.baseline and (sides.candidate.calls, sides.legacy.calls) == (2000, 3000)
    assert (sides.legacy.first, sides.legacy.end) == (M0 - 30, M0)
    below = gather(
        situation(plan, 1, 20), MinuteEvidence(minutes_by_side(minutes(2, 20), legacy_before))
    )
    assert not below.phase(None).baseline  # at 50 %, legacy's own minutes (none here)


# --- 4. checks ----------------------------------------------------------------------------------


def test_a_guardrail_is_checked_since_the_phase_began_and_on_each_window(plan: Plan) -> None:
    # 28 clean minutes and 2 at 20 %: 2.7 % since the phase began, 20 % in the last two
    cand = minutes(3, 28, 500) + minutes(4, 2, 500, first=M0 + 28, errors=100)
    s = situation(plan, 0, 30)
    checked = run_checks(s, gather(s, MinuteEvidence(minutes_by_side(cand, minutes(5, 30, 500)))))
    spike = checked.gates[0]
    assert (spike.name, spike.result, spike.window) == ("error_rate < 5%", Result.FAIL, RECENT)
    assert spike.span == (M0 + 28, M0 + 30)
    assert "(200 of 1,000 calls in the last 2 minutes)" in spike.reason
    # a window's bar is higher than the phase's: it is one of many windows
    assert spike.threshold is not None and spike.threshold > budget(plan, 0).phase(windowed=True)
    assert [level for level, _ in checked.matrix] == [Severity.P1]  # 20 % > 10 %, shown
    gate = checked.gates[1]
    assert (gate.name, gate.scope, gate.window) == ("p95 < 800ms", Scope.GATE, PHASE)


# --- 5. severity --------------------------------------------------------------------------------


def _failed(action: GateAction) -> Check:
    return Check(
        "g",
        Scope.GUARDRAIL,
        PHASE,
        Result.FAIL,
        Classification.HIGH,
        None,
        None,
        None,
        None,
        (0, 0),
        "failed",
        action,
    )


def test_severity_is_the_matrix_level_raised_by_failed_actions() -> None:
    assert severity_of(CheckedResult([], [])) is Severity.P3
    assert severity_of(CheckedResult([], [_failed(GateAction.HOLD)])) is Severity.P2
    assert severity_of(CheckedResult([], [_failed(GateAction.ROLLBACK)])) is Severity.P1
    assert severity_of(CheckedResult([], [_failed(GateAction.ABORT)])) is Severity.P0
    p2_row = (Severity.P2, _failed(GateAction.ROLLBACK))
    assert severity_of(CheckedResult([p2_row], [])) is Severity.P2
    assert severity_of(CheckedResult([p2_row], [_failed(GateAction.ROLLBACK)])) is Severity.P1


# --- 6. decide ----------------------------------------------------------------------------------


def _passing() -> Check:
    return Check(
        "g",
        Scope.GATE,
        PHASE,
        Result.PASS,
        Classification.PASS,
        None,
        None,
        None,
        None,
        (0, 0),
        "passed",
    )


def test_decide_rolls_back_holds_continues_and_advances(plan: Plan) -> None:
    s = situation(plan, 1, 40)
    assert decide(s, Severity.P0, []) == Decision(
        Action.ROLLBACK_TOTAL,
        -1,
        ("P0: immediate total rollback (percentage 0, master switch off)",),
    )
    assert decide(s, Severity.P1, []).target == 0
    assert decide(situation(plan, 0, 40), Severity.P1, []).reasons == (
        "P1: rolling back to 0% (before the plan)",
    )
    assert decide(s, Severity.P2, []).action is Action.HOLD
    assert decide(situation(plan, 1, 10), Severity.P3, []).action is Action.CONTINUE
    assert decide(s, Severity.P3, [_passing()]).action is Action.ADVANCE
    assert decide(situation(plan, 2, 40), Severity.P3, [_passing()]).action is Action.COMPLETE
    paused = decide(situation(plan, 1, 40, status="paused"), Severity.P3, [_passing()])
    assert paused.action is Action.HOLD and paused.reasons[0].startswith("paused: not advancing")


# --- the whole judgement -------------------------------------------------------------------------


def test_a_healthy_candidate_advances_after_the_minimum_duration(plan: Plan) -> None:
    v = judged(plan, phase_index=0, elapsed_minutes=40, cand=minutes(10), legacy=minutes(11))
    assert (v.action, v.severity, v.target_index) == (Action.ADVANCE, Severity.P3, 1)
    assert v.window == (M0, M0 + 40)  # every minute since the phase began
    assert v.reasons[0] == "every gate of canary passed after 40m: advancing to half (50%)"
    gate = by_name(v)["p95 < 800ms"]
    assert gate.result is Result.PASS
    assert "of 4,000 calls slower than 800 ms since the phase began" in gate.reason


def test_a_failure_in_the_minute_in_progress_is_judged(plan: Plan) -> None:
    """Minutes M0..M0+9 healthy; 40 s into M0 + 10 the candidate fails every call: the
    guardrails read that minute now, not once it is over."""
    cand = minutes(1, 10, 100)
    cand.append(minute_stats(M0 + 10, fill(random.Random(2), 300, 300, 200.0, 400.0)))
    legacy = minutes(3, 11, 100)
    v = judged(plan, phase_index=0, elapsed_minutes=10 + 40 / 60, cand=cand, legacy=legacy)
    assert v.action in (Action.ROLLBACK_PARTIAL, Action.ROLLBACK_TOTAL), v.reasons


def test_a_continue_verdict_lists_the_checks_it_looked_at(plan: Plan) -> None:
    v = judged(plan, phase_index=0, elapsed_minutes=10, cand=minutes(1, 10), legacy=minutes(2, 10))
    assert v.action is Action.CONTINUE
    listed = v.reasons[-1]
    assert listed.startswith("looked at: ") and "decision matrix" in listed
    for gate in (*plan.guardrails, *plan.phases[0].gates):
        assert gate.text in listed


def test_before_the_minimum_duration_the_phase_continues(plan: Plan) -> None:
    v = judged(plan, phase_index=0, elapsed_minutes=10, cand=minutes(12), legacy=minutes(13))
    assert (v.action, v.severity) == (Action.CONTINUE, Severity.P3)
    assert "for 10m of 30m" in v.reasons[0]
    assert v.metrics == ()  # the per-metric table is for verdicts that act or hold
    assert {c.name for c in v.checks} == {"error_rate < 5%", "p95 < 800ms"}


def test_a_candidate_failing_half_its_calls_is_rolled_back_totally(plan: Plan) -> None:
    v = judged(
        plan, phase_index=1, elapsed_minutes=40, cand=minutes(14, errors=90), legacy=minutes(15)
    )
    assert (v.action, v.severity, v.target_index) == (Action.ROLLBACK_TOTAL, Severity.P0, -1)
    assert v.reasons[0].startswith("P0: immediate total rollback")
    assert any(
        r.startswith("P0: error_rate <= 50% failed: error_rate 90.00% (3,600 of 4,000")
        for r in v.reasons
    )
    assert by_name(v)["p95 < 800ms"].result is Result.PASS


def test_a_failing_guardrail_rolls_back_one_phase(plan: Plan) -> None:
    v = judged(
        plan, phase_index=1, elapsed_minutes=40, cand=minutes(16, errors=8), legacy=minutes(17)
    )
    assert (v.action, v.severity, v.target_index) == (Action.ROLLBACK_PARTIAL, Severity.P1, 0)
    assert v.reasons[0] == "P1: rolling back to phase 'canary'"
    assert any(r.startswith("error_rate < 5% failed") for r in v.reasons)


def test_inconclusive_gates_hold_after_the_duration(plan: Plan) -> None:
    v = judged(
        plan, phase_index=0, elapsed_minutes=40, cand=minutes(18, calls=2), legacy=minutes(19)
    )
    assert (v.action, v.severity) == (Action.HOLD, Severity.P3)
    assert v.reasons[0] == "inconclusive: 2 gate(s) without enough evidence"
    assert any("too few samples (80 of 100 calls" in r for r in v.reasons)


def test_at_100_percent_relative_gates_use_the_baseline() -> None:
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
    before = minutes(20, 30, 300, first=M0 - 30)
    fine = judged(plan, phase_index=0, elapsed_minutes=30, cand=minutes(21, 30, 300), legacy=before)
    assert fine.action is Action.COMPLETE
    check = by_name(fine)["p95_ratio <= 1.2"]
    assert check.samples == (9000, 9000) and "legacy's baseline before the phase" in check.reason
    slow = judged(
        plan,
        phase_index=0,
        elapsed_minutes=30,
        cand=minutes(22, 30, 300, p50=400, p95=800),
        legacy=before,
    )
    assert slow.action is Action.ROLLBACK_PARTIAL


def test_before_the_first_phase_the_plan_starts_unless_stopped(plan: Plan) -> None:
    v = judged(plan, phase_index=-1, elapsed_minutes=0, cand=[], legacy=[])
    assert (v.action, v.target_index, v.severity) == (Action.START, 0, Severity.P3)
    stopped = judged(
        plan, phase_index=-1, elapsed_minutes=0, cand=[], legacy=[], status="rolled_back"
    )
    assert (stopped.action, stopped.target_index) == (Action.HOLD, None)


def test_the_verdicts_json_keeps_its_fields_and_adds_the_statistics(plan: Plan) -> None:
    v = judged(
        plan, phase_index=1, elapsed_minutes=40, cand=minutes(23, errors=8), legacy=minutes(24)
    )
    data = json.loads(json.dumps(v.to_dict(), allow_nan=False))
    assert set(data) == {
        "action",
        "severity",
        "phase_index",
        "target_index",
        "reasons",
        "checks",
        "metrics",
        "window",
        "awaiting_approval",
    }
    assert (data["action"], data["severity"]) == ("rollback_partial", "P1")
    check = next(c for c in data["checks"] if c["name"] == "error_rate < 5%")
    assert set(check) >= {
        "name",
        "scope",
        "window",
        "result",
        "classification",
        "candidate",
        "legacy",
        "effect",
        "p_value",
        "samples",
        "reason",
        "action",
    }
    assert check["samples"] == {"candidate": 4000, "legacy": 0}
    assert check["span"] == {"from_minute": M0, "to_minute": M0 + 40}
    assert check["method"] and check["log_e"] >= check["threshold"]
    assert {m["name"] for m in data["metrics"]} >= {"error_rate", "p95"}
    # legacy without any error: a ratio is infinite, written as "inf" (JSON has no infinity)
    err = next(m for m in data["metrics"] if m["name"] == "error_rate")
    assert err["effect"] == "inf" and err["classification"] == "high"

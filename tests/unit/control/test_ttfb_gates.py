"""Time-to-first-chunk gates (issue 15 item 2): ``ttfb_p95 < 500ms`` and
``ttfb_p95_ratio <= 1.2`` (p50 and p99 too) are parsed, judged exactly as ``p95`` and
``p95_ratio`` are but on the streams' first-chunk sketch, and roll back a slow candidate
stream in the simulator (the real controller on a real store)."""

from __future__ import annotations

import pytest

from switchover.control.simulate import SideModel, Traffic, simulate
from switchover.core.checks import Look, check_gate
from switchover.core.evidence import MinuteStats, Pool, minute_stats
from switchover.core.plan import load_plan, parse_gate
from switchover.core.rollup import Rollup
from switchover.core.verdict import PHASE, Result, Scope
from switchover.errors import ValidationError


@pytest.mark.parametrize(
    ("raw", "kind", "text"),
    [
        ("ttfb_p95 < 500ms", "ttfb", "ttfb_p95 < 500ms"),
        ("ttfb_p50 < 0.2s", "ttfb", "ttfb_p50 < 200ms"),
        ("ttfb_p99 <= 1s on llm", "ttfb", "ttfb_p99 <= 1000ms on llm"),
        ("ttfb_p95_ratio <= 1.2", "ttfb_ratio", "ttfb_p95_ratio <= 1.2"),
        ("ttfb_p50_ratio < 1.5x", "ttfb_ratio", "ttfb_p50_ratio < 1.5"),
        ("ttfb_p99_ratio <= 2", "ttfb_ratio", "ttfb_p99_ratio <= 2"),
    ],
)
def test_ttfb_gates_parse(raw: str, kind: str, text: str) -> None:
    gate = parse_gate(raw, "gates[0]")
    assert gate.kind == kind and gate.text == text


def test_unknown_metrics_are_refused_with_the_valid_ones() -> None:
    with pytest.raises(ValidationError) as info:
        parse_gate("ttfb_p90 < 500ms", "gates[0]")
    message = str(info.value)
    for name in ("p95_ratio", "ttfb_p50", "ttfb_p95", "ttfb_p99", "ttfb_p95_ratio"):
        assert name in message
    with pytest.raises(ValidationError, match="lower-is-better"):
        parse_gate("ttfb_p95 > 500ms", "gates[0]")
    with pytest.raises(ValidationError, match="latency"):
        parse_gate("ttfb_p95 < 500", "gates[0]")


def _rollup(calls: int, latency: float, streams: int, ttfb: float) -> Rollup:
    r = Rollup()
    for i in range(calls):
        r.add(latency, True, None, False, None, first_chunk_ms=ttfb if i < streams else None)
    return r


LOOK = Look(Scope.GUARDRAIL, PHASE, (0, 10), threshold=5.0, alpha=0.01, min_samples=100)


def test_a_ttfb_gate_reads_the_first_chunk_sketch_not_the_latency() -> None:
    fast_calls_slow_first = Pool.of_rollup(_rollup(1000, 100.0, 1000, 900.0), 0, 10)
    slow_calls_fast_first = Pool.of_rollup(_rollup(1000, 900.0, 1000, 100.0), 0, 10)
    ttfb, p95 = parse_gate("ttfb_p95 < 500ms", "g"), parse_gate("p95 < 500ms", "g")
    assert check_gate(ttfb, fast_calls_slow_first, Pool.empty(), LOOK).result is Result.FAIL
    assert check_gate(p95, fast_calls_slow_first, Pool.empty(), LOOK).result is Result.PASS
    assert check_gate(ttfb, slow_calls_fast_first, Pool.empty(), LOOK).result is Result.PASS
    failed = check_gate(ttfb, fast_calls_slow_first, Pool.empty(), LOOK)
    assert (
        "ttfb_p95" in failed.reason and "1,000 of 1,000 calls slower than 500 ms" in failed.reason
    )


def test_too_few_streams_are_inconclusive_and_no_streams_no_traffic() -> None:
    gate = parse_gate("ttfb_p95 < 500ms", "g")
    few = check_gate(
        gate, Pool.of_rollup(_rollup(1000, 100.0, 50, 900.0), 0, 10), Pool.empty(), LOOK
    )
    assert few.result is Result.INCONCLUSIVE and "too few samples (50 of 100" in few.reason
    none = check_gate(gate, Pool.of_rollup(_rollup(1000, 100.0, 0, 0.0), 0, 10), Pool.empty(), LOOK)
    assert none.result is Result.INCONCLUSIVE and "no candidate traffic" in none.reason


def test_a_ttfb_ratio_compares_both_sides_first_chunks() -> None:
    gate = parse_gate("ttfb_p95_ratio <= 1.2", "g")
    legacy = Pool.of_rollup(_rollup(2000, 800.0, 2000, 200.0), 0, 10)
    slow = Pool.of_rollup(_rollup(2000, 800.0, 2000, 400.0), 0, 10)
    same = Pool.of_rollup(_rollup(2000, 800.0, 2000, 200.0), 0, 10)
    failed = check_gate(gate, slow, legacy, LOOK)
    assert failed.result is Result.FAIL and failed.effect == pytest.approx(2.0, rel=0.03)
    assert check_gate(gate, same, legacy, LOOK).result is Result.PASS
    # from minutes (as the windows read them): the same answer as from the pooled rollup
    minutes = [minute_stats(m, _rollup(200, 800.0, 200, 400.0)) for m in range(10)]
    legacy_minutes = [minute_stats(m, _rollup(200, 800.0, 200, 200.0)) for m in range(10)]
    by_minutes = check_gate(
        gate, Pool.of_minutes(minutes, 0, 10), Pool.of_minutes(legacy_minutes, 0, 10), LOOK
    )
    assert by_minutes.result is Result.FAIL
    assert isinstance(minutes[0].ttfb, MinuteStats) and minutes[0].ttfb.calls == 200


PLAN = """
plan: streams
interval: 1m
window: 30m
min_samples: 100
guardrails: ["error_rate < 5%", "p95_ratio <= 1.2"]
phases:
  - name: p10
    percentage: 10
    duration: 30m
    gates: ["ttfb_p95 < 500ms"]
  - name: p50
    percentage: 50
    duration: 30m
    gates: ["ttfb_p95 < 500ms", "ttfb_p95_ratio <= 1.2"]
"""
LEGACY = SideModel(p95_ms=1500.0, p50_ms=700.0, ttfb_p95_ms=300.0, ttfb_p50_ms=150.0)


def test_a_slow_candidate_stream_is_rolled_back_in_the_simulator() -> None:
    plan = load_plan(PLAN, "streams.yaml")
    # the same total latency, but 900 ms of dead air before the first chunk
    slow = SideModel(p95_ms=1500.0, p50_ms=700.0, ttfb_p95_ms=900.0, ttfb_p50_ms=600.0)
    result = simulate(plan, PLAN, Traffic(20.0, LEGACY, slow), seed=3)
    assert result.state == "rolled_back", result.timeline
    (rollback,) = [e for e in result.timeline if e.action.startswith("rollback")]
    assert "ttfb_p95 < 500ms failed" in rollback.summary


def test_a_candidate_stream_as_fast_as_legacy_completes() -> None:
    plan = load_plan(PLAN, "streams.yaml")
    result = simulate(plan, PLAN, Traffic(20.0, LEGACY, LEGACY), seed=3)
    assert result.state == "completed", result.timeline

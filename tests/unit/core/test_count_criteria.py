"""Counts per hour: ``outcome.tool_call_failure < 50/h`` (seed 001), the candidate's count
of an outcome per hour of the phase, judged by a Poisson mixture SPRT."""

from __future__ import annotations

import numpy as np
import pytest

from switchover.core.checks import Look, check_gate, poisson_log_e
from switchover.core.evidence import Pool
from switchover.core.plan import load_plan, parse_gate
from switchover.core.sequential import ABOVE, BELOW, Budget
from switchover.core.verdict import PHASE, Result, Scope
from switchover.errors import ValidationError


def test_counts_per_hour_parse_and_bad_units_are_refused() -> None:
    gate = parse_gate("outcome.tool_call_failure < 50/h", "guardrails[0]")
    assert (gate.kind, gate.value, gate.text) == (
        "count",
        50.0,
        "outcome.tool_call_failure < 50/h",
    )
    assert gate.per_hour and gate.to_dict()["per_hour"]
    assert parse_gate("error_rate < 2/m", "g").value == 120.0
    assert parse_gate("outcome.booked > 240/d", "g").value == 10.0
    for bad, words in (
        ("outcome.x < 50/w", "per s, m, h or d"),
        ("p95 < 50/h", "outcome.NAME, not p95"),
        ("outcome.x < 0/h", "above 0"),
    ):
        with pytest.raises(ValidationError) as err:
            load_plan(
                f"plan: x\nphases: [{{name: a, percentage: 5, duration: 1h, gates: ['{bad}']}}]",
                "x.yaml",
            )
        text = str(err.value)
        assert "x.yaml" in text and "phases[0].gates[0]" in text and words in text, text


def test_poisson_evidence_leans_the_right_way() -> None:
    assert poisson_log_e(40, 50.0) == 0.0
    assert poisson_log_e(100, 50.0) > poisson_log_e(70, 50.0) > 0.0
    assert poisson_log_e(20, 50.0, BELOW) > 0.0
    assert poisson_log_e(60, 50.0, BELOW) == 0.0
    assert poisson_log_e(5, 0.0, ABOVE) == 0.0


def _look(minutes: int) -> Look:
    # a 30-day plan's phase, judged every minute: the tightest budget the grids use
    b = Budget(0.02, tests=6, phases=4, phase_minutes=30 * 1440.0)
    return Look(Scope.GATE, PHASE, (0, minutes), b.phase(), 0.02, 100)


def _pool(calls: int, events: int) -> Pool:
    return Pool(0, 1, calls=calls, outcomes={"tool_call_failure": float(events)})


@pytest.mark.parametrize("limit", [5.0, 50.0, 500.0])
@pytest.mark.parametrize("minutes", [10, 120, 1440, 30 * 1440])
def test_at_the_limit_never_fails(limit: float, minutes: int) -> None:
    gate = parse_gate(f"outcome.tool_call_failure < {limit:g}/h", "g")
    rng = np.random.default_rng(int(limit) + minutes)
    # every minute of the phase looked at: a Poisson process at the limit itself
    per_minute = rng.poisson(limit / 60.0, size=(50, minutes)).cumsum(axis=1)
    for run in per_minute:
        for m in sorted({1, 2, 5, minutes // 3, minutes // 2, minutes}):
            k = int(run[m - 1])
            check = check_gate(gate, _pool(10_000, k), Pool.empty(), _look(m))
            assert check.result is not Result.FAIL, check.reason


@pytest.mark.parametrize("limit", [5.0, 50.0])
def test_twice_the_limit_fails_within_hours(limit: float) -> None:
    gate = parse_gate(f"outcome.tool_call_failure < {limit:g}/h", "g")
    rng = np.random.default_rng(3)
    # 2x the limit: shown within 80 expected events at the limit (16 h at 5/h, 96 minutes at
    # 50/h) in at least 99 % of runs (the 1 % quantile of the count, 131, is enough)
    minutes = int(80 / limit * 60)
    k = int(rng.poisson(2 * limit * minutes / 60))
    check = check_gate(gate, _pool(10_000, k), Pool.empty(), _look(minutes))
    assert check.result is Result.FAIL, check.reason
    assert "/h (" in check.reason and "limit" in check.reason


def test_a_floor_fails_when_the_events_stop() -> None:
    gate = parse_gate("outcome.tool_call_failure > 50/h", "g")
    check = check_gate(gate, _pool(10_000, 3), Pool.empty(), _look(120))
    assert check.result is Result.FAIL, check.reason
    assert check_gate(gate, _pool(10_000, 130), Pool.empty(), _look(120)).result is Result.PASS

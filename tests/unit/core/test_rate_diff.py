"""``error_diff <= 1%``: the candidate's error rate minus legacy's, in points (seed 004's
"at most 1 % more errors"), parsed like every gate and judged by two confidence sequences."""

from __future__ import annotations

import numpy as np
import pytest

from switchover.core.checks import Look, check_gate
from switchover.core.evidence import Pool
from switchover.core.plan import load_plan, parse_gate
from switchover.core.sequential import Budget
from switchover.core.verdict import PHASE, Result, Scope
from switchover.errors import ValidationError


def test_error_diff_parses_as_points() -> None:
    gate = parse_gate("error_diff <= 1%", "guardrails[0]")
    assert (gate.kind, gate.value, gate.text) == ("rate_diff", 0.01, "error_diff <= 1%")
    with pytest.raises(ValidationError) as err:
        load_plan(
            "plan: x\nphases: [{name: a, percentage: 5, duration: 1h, gates: ['error_dif <= 1%']}]",
            "x.yaml",
        )
    text = str(err.value)
    assert "x.yaml" in text or "phases[0]" in text
    assert "error_diff" in text and "phases[0]" in text


def _look() -> Look:
    # a 30-day plan's phase, judged every minute: the tightest budget the grid uses
    b = Budget(0.02, tests=6, phases=4, phase_minutes=30 * 1440.0)
    return Look(Scope.GATE, PHASE, (0, 1), b.phase(), 0.02, 100)


@pytest.mark.parametrize("base", [0.0005, 0.02, 0.05])
@pytest.mark.parametrize("calls", [200, 5_000, 200_000])
def test_equal_sides_never_fail_and_three_more_points_do(base: float, calls: int) -> None:
    gate = parse_gate("error_diff <= 1%", "g")
    rng = np.random.default_rng(int(base * 1e5) + calls)
    look = _look()
    for _ in range(50):
        k1, k0 = rng.binomial(calls, base), rng.binomial(calls * 9, base)
        cand = Pool(0, 1, calls=calls, errors=int(k1))
        legacy = Pool(0, 1, calls=calls * 9, errors=int(k0))
        assert check_gate(gate, cand, legacy, look).result is not Result.FAIL
    if (calls >= 5_000 and base <= 0.02) or calls >= 200_000:
        # 3 points more than legacy (a margin of 1): shown within 5,000 candidate calls
        # up to a 2 % base rate (at 5 %, the bounds need more: 200,000 here)
        k1 = rng.binomial(calls, base + 0.03)
        k0 = rng.binomial(calls * 9, base)
        check = check_gate(
            gate,
            Pool(0, 1, calls=calls, errors=int(k1)),
            Pool(0, 1, calls=calls * 9, errors=int(k0)),
            look,
        )
        assert check.result is Result.FAIL, check.reason
        assert "more, margin 1.00%" in check.reason

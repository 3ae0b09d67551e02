"""``mean_ratio <= 1.2``: the candidate's mean latency over legacy's (seed 004's detector
compares averages), judged by two confidence sequences on the rollups' sketches."""

from __future__ import annotations

import numpy as np
import pytest

from switchover.core.checks import Look, check_gate
from switchover.core.evidence import Pool
from switchover.core.plan import load_plan, parse_gate
from switchover.core.sequential import Budget
from switchover.core.sketch import _MULTIPLIER, _OFFSET, LatencySketch
from switchover.core.verdict import PHASE, Result, Scope
from switchover.errors import ValidationError


def sketch_of(values: np.ndarray) -> LatencySketch:
    """A sketch of many latencies at once (what :meth:`LatencySketch.add` gives, fast)."""
    sk = LatencySketch()
    keys = np.ceil(np.log2(values) * _MULTIPLIER + _OFFSET).astype(np.int64)
    uniq, counts = np.unique(keys, return_counts=True)
    sk.bins = {int(k): int(c) for k, c in zip(uniq, counts, strict=True)}
    sk.count, sk.sum = int(values.size), float(values.sum())
    sk.min, sk.max = float(values.min()), float(values.max())
    return sk


def pool(values: np.ndarray) -> Pool:
    return Pool(0, 1, calls=int(values.size), sketch=sketch_of(values))


def look() -> Look:
    # a 30-day plan's phase, judged every minute: the tightest budget the grids use
    b = Budget(0.02, tests=6, phases=4, phase_minutes=30 * 1440.0)
    return Look(Scope.GATE, PHASE, (0, 1), b.phase(), 0.02, 100)


def test_mean_ratio_parses_and_unknown_metrics_list_it() -> None:
    gate = parse_gate("mean_ratio <= 1.2", "guardrails[0]")
    assert (gate.kind, gate.value, gate.text) == ("mean_ratio", 1.2, "mean_ratio <= 1.2")
    with pytest.raises(ValidationError) as err:
        load_plan(
            "plan: x\nphases: [{name: a, percentage: 5, duration: 1h, "
            "gates: ['mean_ratoi <= 1.2']}]",
            "x.yaml",
        )
    text = str(err.value)
    assert "x.yaml" in text and "phases[0].gates[0]" in text and "mean_ratio" in text
    with pytest.raises(ValidationError, match="not a ratio"):
        parse_gate("mean_ratio <= 20ms", "g")


def _latencies(rng: np.random.Generator, n: int, median: float, sigma: float) -> np.ndarray:
    return rng.lognormal(np.log(median), sigma, n)


@pytest.mark.parametrize("sigma", [0.3, 1.0, 1.5])
@pytest.mark.parametrize("calls", [100, 2_000, 30_000])
def test_equal_sides_never_fail(sigma: float, calls: int) -> None:
    gate = parse_gate("mean_ratio <= 1.2", "g")
    rng = np.random.default_rng(calls + int(sigma * 10))
    for _ in range(20):
        cand = pool(_latencies(rng, calls, 300.0, sigma))
        legacy = pool(_latencies(rng, calls * 9, 300.0, sigma))
        check = check_gate(gate, cand, legacy, look())
        assert check.result is not Result.FAIL, check.reason


@pytest.mark.parametrize("sigma", [0.3, 1.0])
def test_a_mean_half_again_legacy_fails(sigma: float) -> None:
    gate = parse_gate("mean_ratio <= 1.2", "g")
    rng = np.random.default_rng(7)
    # 1.5 x legacy's mean: shown within 5,000 candidate calls at these spreads
    cand = pool(_latencies(rng, 5_000, 450.0, sigma))
    legacy = pool(_latencies(rng, 45_000, 300.0, sigma))
    check = check_gate(gate, cand, legacy, look())
    assert check.result is Result.FAIL, check.reason
    assert "legacy's mean is below" in check.reason
    assert check.effect == pytest.approx(1.5, rel=0.05)

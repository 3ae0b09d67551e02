"""The issue's grid, at its corners: equal sides are not rolled back, regressions are.

Every run is the real controller on the in-memory store, driven by the seeded simulator
(:mod:`switchover.control.simulate`). The plan has the three kinds of guardrail the
issue names (an absolute error rate, ``error_ratio``, ``p95_ratio``), phase gates, and
seed 001's decision matrix, over four phases (1 %, 10 %, 50 %, 100 %: a tenth, a fifth,
three tenths and two fifths of the plan's length).

The full grid (every base error rate from 0.01 % to 5 %, 1 to 500 calls/s, plans of 1
hour to 30 days judged every 1 or 5 minutes, many seeds) is ``bench/verdicts.py``; these
tests take its corners: the lowest and highest base rate, the lowest and highest traffic,
the shortest plan at both intervals, and one long plan. Timing (2 CPUs): ~25 s in all.

The delays stated for regressions are in the candidate's own calls or failures, since
that is what evidence is made of (at 1 % of 20 calls/s a regression takes 100 times as
long to show as at 100 %). They are measured on these seeds and bench/verdicts.py's.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from switchover.control.simulate import Change, SideModel, SimulationResult, Traffic, simulate
from switchover.core.plan import load_plan

P95, P50 = 800.0, 300.0
PHASES = ((1, 0.1), (10, 0.2), (50, 0.3), (100, 0.4))


def grid_source(minutes: int, interval: int, error_limit: float) -> str:
    """The grid's plan: ``minutes`` long, judged every ``interval`` minutes."""
    gates = f'["error_rate < {error_limit * 100:g}%", "p95 < {2 * P95:g}ms"]'
    phases = "\n".join(
        f"  - {{name: p{pct}, percentage: {pct}, duration: {max(1, round(minutes * f))}m, "
        f"gates: {gates}}}"
        for pct, f in PHASES
    )
    return f"""
plan: grid
interval: {interval}m
window: 1h
min_samples: 100
confidence: 98%
guardrails:
  - error_rate < {error_limit * 100:g}%
  - error_ratio <= 1.2
  - p95_ratio <= 1.2
phases:
{phases}
"""


def error_limit(base: float) -> float:
    """The absolute guardrail and gates: 3 %, or twice the base rate above 1.5 %."""
    return max(0.03, 2 * base)


def run(
    minutes: int,
    interval: int,
    base: float,
    rate: float,
    seed: int,
    candidate: SideModel | None = None,
    changes: tuple[Change, ...] = (),
    limit: float | None = None,
) -> SimulationResult:
    source = grid_source(minutes, interval, limit if limit is not None else error_limit(base))
    legacy = SideModel(p95_ms=P95, p50_ms=P50, error_rate=base)
    traffic = Traffic(rate, legacy, candidate or legacy, changes=changes)
    return simulate(load_plan(source, "grid.yaml"), source, traffic, seed=seed)


def rolled_back(r: SimulationResult) -> str | None:
    backs = [e for e in r.timeline if e.action.startswith("rollback")]
    return f"{backs[0].at / 60:.0f}m {backs[0].summary}" if backs else None


# --- equal sides ---------------------------------------------------------------------------


@pytest.mark.parametrize("interval", [1, 5])
@pytest.mark.parametrize("base", [0.0001, 0.05])
@pytest.mark.parametrize("rate", [1.0, 500.0])
def test_equal_sides_are_not_rolled_back_in_one_hour_plans(
    interval: int, base: float, rate: float
) -> None:
    """25 seeds a corner: 200 one-hour plans, none rolled back.

    At 1 call/s the 1 % phase sees ~9 candidate calls and holds (fewer than
    ``min_samples``): a hold is not a rollback, and a plan with too little traffic should
    not advance on nothing.
    """
    backs = [
        f"seed {seed}: {why}"
        for seed in range(25)
        if (why := rolled_back(run(60, interval, base, rate, seed))) is not None
    ]
    assert backs == []


@pytest.mark.parametrize(
    ("days", "interval", "base", "rate"),
    [(30, 5, 0.0005, 20.0), (7, 1, 0.05, 500.0)],
)
def test_equal_sides_complete_long_plans_judged_thousands_of_times(
    days: int, interval: int, base: float, rate: float
) -> None:
    """8,640 to 10,080 looks, each at every guardrail, gate, matrix row and window: a
    fixed-sample test at 98 % would fail each of these plans many times over."""
    r = run(days * 1440, interval, base, rate, seed=days)
    assert rolled_back(r) is None
    assert (r.state, r.final_percentage) == ("completed", 100), r.timeline[-1].summary
    assert r.verdicts >= days * 1440 // interval


# --- regressions -----------------------------------------------------------------------------


def _caught(results: list[SimulationResult]) -> list[tuple[int, str]]:
    """(candidate calls until the rollback, why) for each run; a miss counts as infinite."""
    out = []
    for r in results:
        backs = [e for e in r.timeline if e.action.startswith("rollback")]
        if backs:
            since = r.changed_at_calls[0] if r.changed_at_calls else 0
            out.append((backs[0].candidate_calls - since, backs[0].summary))
        else:
            out.append((math.inf, f"not rolled back: {r.state}"))  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize(
    ("base", "rate", "multiple", "failures", "seeds", "days", "interval"),
    [
        (0.01, 100.0, 3.0, 150, 100, 1, 1),
        (0.0001, 500.0, 3.0, 150, 20, 7, 5),
        (0.02, 500.0, 1.5, 2000, 30, 1, 1),
    ],
)
def test_a_higher_error_rate_is_rolled_back_within_its_stated_failures(
    base: float, rate: float, multiple: float, failures: int, seeds: int, days: int, interval: int
) -> None:
    """3x legacy's error rate within 150 expected candidate failures, 1.5x within 2,000,
    against ``error_ratio <= 1.2``, whatever the base rate.

    The test asks which side each failure came from, so its evidence is counted in
    failures. Measured (candidate calls x its error rate): 3x, median ~33, 99th
    percentile ~85, most 112 of 300 seeds (at 1 %: 1,100 calls; at 0.01 %: 110,000);
    1.5x, median ~420, 99th percentile ~1,120, most 1,530 of 150 seeds. A seed plan's
    ``error_ratio <= 1.5`` does not fail a 1.5x candidate: that is at its limit.
    """
    cand = SideModel(p95_ms=P95, p50_ms=P50, error_rate=base * multiple)
    runs = [run(days * 1440, interval, base, rate, seed, candidate=cand) for seed in range(seeds)]
    stated = failures / (base * multiple)
    caught = _caught(runs)
    late = [(calls, why) for calls, why in caught if calls > stated]
    assert len(late) <= seeds // 100, late
    for _, why in caught:
        assert "error_ratio <= 1.2 failed" in why or "error_rate <" in why, why


def test_a_p95_at_1_3x_is_rolled_back_at_low_traffic_too() -> None:
    """At 50 calls/s the 1 % phase sees 30 candidate calls a minute: the p95 test needs
    the same ~12,000 candidate calls as at 500 calls/s (test_simulate), over hours."""
    slow = SideModel(p95_ms=P95 * 1.3, p50_ms=P50 * 1.3, error_rate=0.01)
    results = _caught([run(1440, 1, 0.01, 50.0, seed, candidate=slow) for seed in range(5)])
    assert all(calls <= 60_000 for calls, _ in results), results
    assert all("p95_ratio <= 1.2 failed" in why for _, why in results)


def test_a_spike_in_a_long_phase_is_caught_by_a_window_not_diluted_by_days() -> None:
    """Two days into the 10 % phase of a week-long plan, the candidate starts failing 6 %
    of its calls (an absolute guardrail at 5 %, base 1 %). Since the phase began its rate
    creeps up by hundredths of a point a minute; the windows ending now see it whole."""
    spike = SideModel(p95_ms=P95, p50_ms=P50, error_rate=0.06)
    at = (0.1 * 7 + 2) * 86400.0
    results = [
        run(7 * 1440, 5, 0.01, 200.0, seed, changes=(Change(at, spike),), limit=0.05)
        for seed in range(3)
    ]
    for r in results:
        backs = [e for e in r.timeline if e.action.startswith("rollback")]
        assert backs and at < backs[0].at <= at + 30 * 60, r.timeline[-1].summary
        assert "in the last" in backs[0].summary  # a window's check, not the phase's


# --- the issue's reproduction ------------------------------------------------------------------


def test_the_issues_seed_004_run_no_longer_rolls_back_an_identical_candidate() -> None:
    """``plan simulate examples/plans/seed-004-voice-v2.yaml --legacy-errors 0.05%
    --candidate-errors 0.05% --legacy-p95 400ms --candidate-p95 400ms --outcome
    cache_hit=85% --rate 20/s --seed 11`` rolled back in the pilot phase at 5d 13:30
    (``error_ratio <= 1.5 failed ... significant (p=0.0143)``), and so did 6 of seeds 1-7.
    The example as written, through the canary and the pilot (8 days, ~2 s); the whole
    plan, seeds 1 to 7 and 11, is in bench/verdicts.py."""
    path = Path(__file__).resolve().parents[3] / "examples" / "plans" / "seed-004-voice-v2.yaml"
    source = path.read_text(encoding="utf-8")
    side = SideModel(p95_ms=400.0, error_rate=0.0005, outcomes=(("cache_hit", 0.85),))
    r = simulate(
        load_plan(source, path.name),
        source,
        Traffic(20.0, side, side),
        seed=11,
        max_seconds=8 * 86400 + 600,
    )
    assert rolled_back(r) is None
    moves = [(e.action, e.phase) for e in r.timeline if e.action in ("start", "advance")]
    assert moves == [("start", "canary"), ("advance", "pilot"), ("advance", "beta")]

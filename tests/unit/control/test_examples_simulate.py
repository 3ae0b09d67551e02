"""The seed 004 and seed 003 example plans, run by the simulator on a healthy candidate.

Both sides behave identically (20 calls/s, p50 200 ms, p95 400 ms, 0.2 % errors; for seed
004 a cache hit on 90 % of calls), so every gate and guardrail should pass and the plan
should walk its phases in order until it reaches its sign-off: the simulator does not
approve, so a plan whose next phase has ``requires_approval`` ends ``holding`` with the
approval request as its last event. With the sign-off taken out (what ``switchover
approve`` does) the plans complete, which also exercises the 100 % rule: legacy serves
nothing there, so ``p95_ratio`` compares with legacy's last window before the phase.

What is changed in the examples, and why:

- Durations are scaled from days to hours (3d -> 3h, 48h -> 2h); interval, window, recent,
  gates, guardrails and features stay as written. Each simulated day of a 5-minute plan
  costs about 2 s here (one judgement every 5 minutes plus 1440 simulated minutes), so
  the real seed 004 schedule up to its sign-off (15 days) would take ~30 s on its own.
  Measured with hours for days: one run takes 0.4-1.9 s, this file ~8 s in all.
- ``test_unmodified_seed_003_does_not_roll_back_a_healthy_candidate`` runs the file
  exactly as written, ``error_ratio <= 1.5`` included: the ratio gates are tested against
  their limit, so repeated looks at identical sides do not roll them back.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from switchover.control.simulate import (
    OperationTraffic,
    SideModel,
    SimulationResult,
    Traffic,
    simulate,
)
from switchover.core.plan import Plan, load_plan, parse_seconds

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "plans"
SEED_004 = EXAMPLES / "seed-004-voice-v2.yaml"
SEED_003 = EXAMPLES / "seed-003-voice-agent-v2.yaml"

RATE = 20.0
HEALTHY = SideModel(p95_ms=400.0, p50_ms=200.0, error_rate=0.002)
HEALTHY_CACHED = SideModel(
    p95_ms=400.0, p50_ms=200.0, error_rate=0.002, outcomes=(("cache_hit", 0.9),)
)
H = 3600.0


def variant(
    path: Path, *, without_error_ratio: bool = False, approvals: bool = True
) -> tuple[Plan, str]:
    """The example with hours for days (see the module docstring), as (plan, source)."""
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    for phase in data["phases"]:
        phase["duration"] = f"{parse_seconds(phase['duration'], 'duration') / 24:g}s"
        if not approvals:
            phase.pop("requires_approval", None)
    if without_error_ratio:
        data["guardrails"] = [
            g
            for g in data.get("guardrails", [])
            if not str(g["gate"] if isinstance(g, dict) else g).startswith("error_ratio")
        ]
    source = yaml.safe_dump(data, sort_keys=False)
    return load_plan(source, path.name), source


def run(
    plan: Plan, source: str, side: SideModel, *, until: float | None = None, seed: int = 1
) -> SimulationResult:
    return simulate(
        plan, source, Traffic(RATE, legacy=side, candidate=side), seed=seed, max_seconds=until
    )


def moves(result: SimulationResult) -> list[tuple[str, str, int]]:
    return [
        (e.action, e.phase, e.percentage)
        for e in result.timeline
        if e.action in ("start", "advance", "complete", "rollback_partial", "rollback_total")
    ]


def assert_on_schedule(result: SimulationResult, plan: Plan) -> None:
    """Each phase is entered no sooner than the phases before it allow."""
    starts = [e.at for e in result.timeline if e.action in ("start", "advance")]
    elapsed = 0.0
    for at, phase in zip(starts, plan.phases, strict=False):
        assert at >= elapsed, (phase.name, at, elapsed)
        elapsed = at + phase.duration


# --- seed 004 ------------------------------------------------------------------------------


def test_seed_004_healthy_candidate_reaches_the_production_sign_off() -> None:
    plan, source = variant(SEED_004)
    result = run(plan, source, HEALTHY_CACHED, until=(3 + 5 + 7 + 1) * H)
    assert moves(result) == [
        ("start", "canary", 1),
        ("advance", "pilot", 10),
        ("advance", "beta", 30),
    ]
    assert_on_schedule(result, plan)
    assert (result.state, result.final_phase, result.final_percentage) == ("holding", "beta", 30)
    last = result.timeline[-1]
    assert last.action == "hold"
    assert "every gate of beta passed" in last.summary
    assert "waiting for approval to enter 'production' (100%)" in last.summary


def test_seed_004_completes_once_production_is_approved() -> None:
    # The production phase asks error_rate < 0.1 %, stricter than beta's 0.5 %: a
    # candidate that is to complete must be that good.
    plan, source = variant(SEED_004, approvals=False)
    side = SideModel(400.0, 200.0, error_rate=0.0005, outcomes=(("cache_hit", 0.9),))
    result = run(plan, source, side, until=(3 + 5 + 7 + 14 + 2) * H)
    assert result.state == "completed", result.timeline[-1].summary
    assert moves(result) == [
        ("start", "canary", 1),
        ("advance", "pilot", 10),
        ("advance", "beta", 30),
        ("advance", "production", 100),
        ("complete", "production", 100),
    ]
    assert_on_schedule(result, plan)
    assert (result.state, result.final_percentage) == ("completed", 100)
    assert "every gate of production passed" in result.timeline[-1].summary


def test_seed_004_production_rolls_back_a_candidate_at_beta_error_rates() -> None:
    plan, source = variant(SEED_004, approvals=False)
    result = run(plan, source, HEALTHY_CACHED)
    assert moves(result)[-2:] == [
        ("advance", "production", 100),
        ("rollback_partial", "beta", 30),
    ]
    assert (result.state, result.final_phase, result.final_percentage) == (
        "rolled_back",
        "beta",
        30,
    )
    assert result.timeline[-1].severity == "P1"


# --- seed 003 ------------------------------------------------------------------------------


def test_seed_003_healthy_candidate_reaches_the_100_percent_sign_off() -> None:
    plan, source = variant(SEED_003)
    result = run(plan, source, HEALTHY, until=(1 + 1 + 1 + 2 + 2 + 1) * H)
    assert moves(result) == [
        ("start", "p5", 5),
        ("advance", "p10", 10),
        ("advance", "p25", 25),
        ("advance", "p50", 50),
        ("advance", "p75", 75),
    ]
    assert_on_schedule(result, plan)
    assert (result.state, result.final_phase, result.final_percentage) == ("holding", "p75", 75)
    last = result.timeline[-1]
    assert last.action == "hold"
    assert "waiting for approval to enter 'p100' (100%)" in last.summary


def _seed_003_approved(last_phase: str | None = None) -> tuple[Plan, str]:
    plan, source = variant(SEED_003, approvals=False)
    if last_phase is None:
        return plan, source
    data = yaml.safe_load(source)
    data["phases"][-1]["duration"] = last_phase
    source = yaml.safe_dump(data, sort_keys=False)
    return load_plan(source, SEED_003.name), source


def test_seed_003_completes_when_its_100_percent_phase_fits_in_one_window() -> None:
    # At 100 % legacy serves nothing: p95_ratio compares with legacy's last window before
    # the phase, or it would stay inconclusive and the plan would hold instead of completing.
    plan, source = _seed_003_approved(last_phase="1h")
    result = run(plan, source, HEALTHY)
    assert [m[1] for m in moves(result)] == ["p5", "p10", "p25", "p50", "p75", "p100", "p100"]
    assert moves(result)[-1][0] == "complete"
    assert (result.state, result.final_percentage) == ("completed", 100)
    assert not [e for e in result.timeline if e.action == "hold"]


def test_seed_003_completes_once_100_percent_is_approved() -> None:
    plan, source = _seed_003_approved()
    assert plan.phases[-1].duration > plan.window
    result = run(plan, source, HEALTHY, until=(1 + 1 + 1 + 2 + 2 + 2 + 2) * H)
    assert result.state == "completed", result.timeline[-1].summary
    assert [m[1] for m in moves(result)] == ["p5", "p10", "p25", "p50", "p75", "p100", "p100"]
    assert (result.state, result.final_percentage) == ("completed", 100)


# --- the example exactly as written ----------------------------------------------------------


def test_unmodified_seed_003_does_not_roll_back_a_healthy_candidate() -> None:
    """The example exactly as written (5-minute judgements, error_ratio <= 1.5), 4 seeds x 12 h.

    When error_ratio was tested against "the sides are equal", 3 of these 4 runs were
    rolled back (P1, ``error_ratio <= 1.5 failed``) within 12
    simulated hours; seed 004's file is rolled back the same way, later (1 % of traffic
    gives fewer errors to be fooled by).
    """
    source = SEED_003.read_text(encoding="utf-8")
    plan = load_plan(source, SEED_003.name)
    rolled_back = [
        seed
        for seed in range(4)
        if run(plan, source, HEALTHY, until=12 * H, seed=seed).state == "rolled_back"
    ]
    assert rolled_back == []


SEED_001 = EXAMPLES / "seed-001-feature-by-feature.yaml"
SEED_001_SIDE = SideModel(
    p95_ms=400.0,
    p50_ms=200.0,
    error_rate=0.002,
    outcomes=(
        ("tool_call_success", 0.999),
        ("whatsapp_delivered", 0.995),
        ("voice_session_ok", 0.99),
    ),
)


def test_seed_001_gates_on_voice_see_voice_traffic_and_the_plan_completes() -> None:
    """Issue 14 item 5: the simulator generates every operation the plan's gates name
    (``call`` and ``voice`` here); before, the plan held at ai-realtime for ever with "no
    candidate traffic" on ``voice``."""
    plan, source = variant(SEED_001, approvals=False)
    result = run(plan, source, SEED_001_SIDE)
    assert result.state == "completed", moves(result)
    assert not any("no candidate traffic" in e.summary for e in result.timeline)


def test_seed_001_a_voice_only_regression_is_rolled_back_at_ai_realtime() -> None:
    plan, source = variant(SEED_001, approvals=False)
    slow_voice = OperationTraffic(
        "voice", RATE, SEED_001_SIDE, replace(SEED_001_SIDE, p95_ms=1500.0, p50_ms=700.0)
    )
    traffic = Traffic(RATE, SEED_001_SIDE, SEED_001_SIDE, operations=(slow_voice,))
    result = simulate(plan, source, traffic, seed=1)
    assert result.state == "rolled_back", moves(result)
    last = result.timeline[-1]
    assert last.phase == "ai-responses" and "p95 < 800ms on voice" in last.summary

"""The demo's plan: valid, in minutes, and strict enough to roll back a broken candidate."""

from __future__ import annotations

from switchover.control.simulate import SideModel, Traffic, simulate
from switchover.core.plan import check_features, load_plan
from switchover.demo import DEMO_PLAN, EXAMPLE_FEATURES
from switchover.demo.traffic import DEFAULT_RATE

PLAN = load_plan(DEMO_PLAN, "demo plan")


def test_the_demo_plan_parses_and_fits_the_example_migration() -> None:
    check_features(PLAN, list(EXAMPLE_FEATURES))
    assert [(p.name, p.percentage) for p in PLAN.phases] == [
        ("canary", 5),
        ("pilot", 25),
        ("beta", 50),
        ("production", 100),
    ]
    assert not any(p.requires_approval for p in PLAN.phases)


def test_a_newcomer_watches_the_whole_rollout_in_minutes() -> None:
    assert all(60 <= p.duration <= 180 for p in PLAN.phases)
    assert PLAN.total_duration() <= 10 * 60
    assert 10 <= PLAN.interval <= 15
    assert PLAN.window <= 5 * 60 and PLAN.recent == 60


def test_the_canary_gets_min_samples_in_one_minute_at_the_default_rate() -> None:
    per_minute = DEFAULT_RATE * 60 * 3 * PLAN.phases[0].percentage / 100  # stt, llm, tts
    assert per_minute >= 1.5 * PLAN.min_samples


def test_a_candidate_broken_to_30_percent_errors_is_rolled_back_within_two_minutes() -> None:
    """The real controller on a virtual clock (seconds of wall time)."""
    legacy = SideModel(p50_ms=350, p95_ms=1100, error_rate=0.008)
    healthy = SideModel(p50_ms=280, p95_ms=900, error_rate=0.005)
    broken = SideModel(p50_ms=280, p95_ms=900, error_rate=0.3)
    result = simulate(
        PLAN, DEMO_PLAN, Traffic(DEFAULT_RATE * 3, legacy, broken), seed=3, max_seconds=600
    )
    assert result.state == "rolled_back"
    rollback = result.timeline[-1]
    assert (rollback.action, rollback.severity) == ("rollback_partial", "P1")
    assert rollback.at <= 180
    assert "error_rate" in rollback.summary

    # healthy, every guardrail and absolute gate passes: the canary advances on time
    result = simulate(
        PLAN, DEMO_PLAN, Traffic(DEFAULT_RATE * 3, legacy, healthy), seed=3, max_seconds=300
    )
    assert [e.action for e in result.timeline][:2] == ["start", "advance"]

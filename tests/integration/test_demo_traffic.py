"""The demo of ``make run``: simulated voice calls through the real router into a real
SQLite store, and the real controller moving the demo plan on that evidence.

Latencies are scaled down (``latency_scale``) so that hundreds of calls take a second;
the manual clock says which minute they land in, as the system clock does in a demo.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from switchover.bootstrap import App
from switchover.control.controller import Controller
from switchover.core.judge import Action
from switchover.core.plan_state import PlanStatus
from switchover.demo import (
    DEMO_ACTOR,
    DEMO_TENANTS,
    EXAMPLE_NAME,
    demo_active,
    ensure_demo,
    ensure_example,
    restart_demo,
)
from switchover.demo.traffic import DemoTraffic

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

FAST = {"rate": 400.0, "seed": 7, "latency_scale": 0.05}


def window(app: App, minutes: int = 1, operation: str | None = None) -> dict[str, Any]:
    """The last ``minutes`` whole minutes up to the clock's current minute, per side."""
    now = app.clock.now()
    until = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    report = app.metrics.window(
        EXAMPLE_NAME, since=until - timedelta(minutes=minutes), until=until, operation=operation
    )
    return report.to_dict()["sides"]


def run(traffic: DemoTraffic, seconds: float) -> None:
    time.sleep(seconds)
    assert traffic.flush()


def wait_for_percentage(traffic: DemoTraffic, percentage: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        client = traffic.client
        seen = client.migration(EXAMPLE_NAME).snapshot if client is not None else None
        if seen is not None and seen.percentage == percentage:
            return
        time.sleep(0.05)
    raise AssertionError(f"the demo traffic never saw {percentage} %")


@pytest.fixture
def traffic(app: App) -> Any:
    created = []

    def make(**kw: Any) -> DemoTraffic:
        t = DemoTraffic(app, **{**FAST, **kw})
        created.append(t)
        return t

    yield make
    for t in created:
        t.stop()


def test_first_run_creates_the_demo_and_never_takes_over_a_users_migration(app: App) -> None:
    assert not demo_active(app)
    assert ensure_demo(app) is True
    assert demo_active(app)
    assert ensure_demo(app) is False  # a restart on the same store creates nothing
    m = app.rollout.get(EXAMPLE_NAME)
    assert m.percentage == 0 and m.enabled
    assert app.rollout.status(EXAMPLE_NAME).tenants_known == len(DEMO_TENANTS)
    plan = app.plans.get(EXAMPLE_NAME)
    assert (plan.plan.name, plan.applied_by, plan.status) == (
        "voice-v2-demo",
        DEMO_ACTOR,
        PlanStatus.RUNNING,
    )
    assert [a.actor for a in app.rollout.audit(EXAMPLE_NAME)] == [DEMO_ACTOR] * 3


def test_the_example_of_an_earlier_run_is_not_the_demos(app: App) -> None:
    assert ensure_example(app.rollout) is not None  # `make run` before the demo existed
    assert ensure_demo(app) is False
    assert not demo_active(app)
    assert app.plans.find(EXAMPLE_NAME) is None
    with pytest.raises(Exception, match="not the demo's"):
        restart_demo(app)


def test_calls_go_through_the_router_into_the_rollups(app: App, traffic: Any) -> None:
    ensure_demo(app)
    [start] = Controller(app.store, app.clock).tick()
    assert start.verdict.action is Action.START  # canary: 5 %, every pipeline feature on
    t = traffic()
    t.start()
    time.sleep(1.5)
    began = time.perf_counter()
    t.stop()
    assert time.perf_counter() - began < 3  # calls in flight are cancelled, not awaited
    status = t.status()
    assert status["running"] is False and status["calls"] > 200
    assert status["broken"] is False and status["candidate_error_rate"] == pytest.approx(0.005)

    # stop flushed: every operation has both sides in the store
    for operation in ("stt", "llm", "tts"):
        sides = window(app, operation=operation)
        legacy, candidate = sides["legacy"], sides["candidate"]
        assert legacy["calls"] > 200 and candidate["calls"] > 5, operation
        share = candidate["calls"] / (candidate["calls"] + legacy["calls"])
        assert 0.01 < share < 0.12, operation  # the canary's 5 % of callers
        assert set(legacy["tenants"]) <= set(DEMO_TENANTS)
    llm = window(app, operation="llm")
    assert 0.2 < llm["legacy"]["outcome_rates"]["booked"] < 0.5
    assert "empty_transcript" in window(app, operation="stt")["legacy"]["outcomes"]
    assert window(app)["candidate"]["error_rate"] < 0.05


def test_the_controller_advances_on_healthy_calls_and_rolls_back_a_broken_candidate(
    app: App, traffic: Any
) -> None:
    clock = app.clock  # starts at a minute's start
    ensure_demo(app)
    controller = Controller(app.store, clock)
    assert controller.tick()[0].verdict.action is Action.START
    t = traffic()
    t.start()

    clock.advance(60)  # minute 1: healthy canary
    run(t, 1.5)
    healthy = window(app)["candidate"]
    clock.advance(75)  # the canary's 2 minutes are over; minute 1 is judged
    [advance] = controller.tick()
    assert advance.verdict.action is Action.ADVANCE, advance.verdict.reasons
    assert advance.migration_after is not None and advance.migration_after.percentage == 25
    wait_for_percentage(t, 25)  # the traffic's client refreshes every second

    clock.advance(45)  # minute 3: the pilot, and the demo's "break the candidate" button
    t.break_candidate()
    assert t.status()["broken"] and t.status()["candidate_error_rate"] == 0.3
    run(t, 1.5)
    broken = window(app)["candidate"]
    stt = window(app, operation="stt")
    share = stt["candidate"]["calls"] / (stt["candidate"]["calls"] + stt["legacy"]["calls"])
    assert 0.15 < share < 0.35  # the traffic follows the controller: 25 %
    assert healthy["fallback_rate"] < 0.05
    assert broken["error_rate"] > 0.2 and broken["fallback_rate"] > 0.2
    assert broken["error_types"]["ProviderError"] == broken["fallbacks"]
    assert window(app)["legacy"]["error_rate"] < 0.05  # fallbacks served the callers

    clock.advance(75)  # minute 3 is judged
    [rollback] = controller.tick()
    v = rollback.verdict
    assert (v.action, v.severity) == (Action.ROLLBACK_PARTIAL, "P1"), v.reasons
    assert any("error_rate" in r for r in v.reasons)
    assert rollback.migration_after is not None and rollback.migration_after.percentage == 5
    state = app.plans.get(EXAMPLE_NAME)
    assert (state.phase_name, state.status) == ("canary", PlanStatus.ROLLED_BACK)

    t.heal_candidate()
    assert not t.status()["broken"]
    restarted = restart_demo(app)
    assert (restarted.phase_index, restarted.status) == (-1, PlanStatus.RUNNING)
    assert app.rollout.get(EXAMPLE_NAME).percentage == 0

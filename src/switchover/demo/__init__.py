"""The example migration of seed 004, and the demo that ``make run`` starts on an empty store.

On an empty store, :func:`ensure_demo` creates ``voice_v2`` as the demo's own (its
creation is audited with actor :data:`DEMO_ACTOR`), registers the demo's tenants and
applies :data:`DEMO_PLAN`, a plan whose phases last minutes. :class:`DemoTraffic`
(``switchover.demo.traffic``) then drives simulated voice calls through the real router,
and the controller moves the plan on their evidence. :func:`demo_active` tells a later
start on the same store whether ``voice_v2`` is the demo's, so that demo traffic never
lands in a migration someone else created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from switchover.core.migration import Migration
from switchover.core.plan_state import PlanState, PlanStatus
from switchover.errors import ConflictError
from switchover.rollout.service import RolloutService
from switchover.store import tables as t

if TYPE_CHECKING:
    from switchover.bootstrap import App

EXAMPLE_NAME = "voice_v2"
EXAMPLE_FEATURES = ("stt", "tts", "langgraph_integration", "caching")

DEMO_ACTOR = "switchover demo"
DEMO_PLAN_SOURCE = "switchover demo plan"
DEMO_TENANTS = ("clinic-north", "clinic-south", "dental-plus", "spa-central", "vet-east")
LLM_FEATURE = "langgraph_integration"
"""The demo's ``llm`` operation is seed 004's LangGraph integration."""

DEMO_PLAN = """\
# The demo's plan: seed 004's voice_v2 rollout in minutes instead of weeks.
# Simulated traffic at ~15 calls/s (each call: stt, llm, tts) gives the canary about
# 135 candidate calls a minute, enough for min_samples. Data is per minute, a phase's
# window starts at its first whole minute, and a minute is judged 10 s after it ends:
# 2 minutes is the shortest duration whose window always holds a judged minute when it
# ends, and `recent: 1m` the fastest spike window (a candidate broken to 30 % errors is
# rolled back about a minute later).
plan: voice-v2-demo
description: >-
  switchover demo: canary 5% (2m) -> pilot 25% (2m) -> beta 50% (2m) -> production 100% (2m),
  on simulated stt/llm/tts traffic.
interval: 10s
window: 3m
recent: 1m
min_samples: 50

guardrails:
  - error_rate < 3%      # a broken candidate fails this: back to the previous phase (P1)
  - p95 < 2500ms

phases:
  - name: canary
    percentage: 5
    duration: 2m
    features: [stt, tts, langgraph_integration]
    gates: ["p95 < 2000ms"]
  - name: pilot
    percentage: 25
    duration: 2m
    features: [stt, tts, langgraph_integration]
    gates: ["error_rate < 2%", "p95 < 1500ms", "error_ratio <= 1.5"]
  - name: beta
    percentage: 50
    duration: 2m
    features: [stt, tts, langgraph_integration]
    gates:
      - error_rate < 2%
      - p95 < 1500ms
      - error_ratio <= 1.5
      - outcome_drop.booked <= 5% on llm   # the candidate books as many calls as legacy
  - name: production
    percentage: 100
    duration: 2m
    features: [stt, tts, langgraph_integration]
    gates: ["error_rate < 1%", "p95 < 1500ms"]
"""


def ensure_example(
    rollout: RolloutService,
    *,
    actor: str = "switchover",
    reason: str = "example migration created on first run",
) -> Migration | None:
    """Create ``voice_v2`` when the store has no migration at all; None otherwise."""
    if rollout.list():
        return None
    try:
        return rollout.create(
            EXAMPLE_NAME,
            features=EXAMPLE_FEATURES,
            stickiness="user_id",
            description="Legacy voice service to voice_v2 (seed 004): STT/TTS behind a router",
            legacy_label="app/services/voice",
            candidate_label="voice_v2",
            actor=actor,
            reason=reason,
        )
    except ConflictError:  # another process created it between the check and the insert
        return None


def ensure_demo(app: App) -> bool:
    """On an empty store, create the demo's ``voice_v2`` with its tenants and plan.

    True when it created them. On a store where ``voice_v2`` is already the demo's but
    has never had a plan (a first run stopped half-way), the plan is applied again.
    """
    created = ensure_example(
        app.rollout,
        actor=DEMO_ACTOR,
        reason="demo: simulated voice traffic drives the plan voice-v2-demo",
    )
    if created is not None:
        app.rollout.register_tenants(
            EXAMPLE_NAME, DEMO_TENANTS, actor=DEMO_ACTOR, reason="the demo's simulated tenants"
        )
    if (created is not None or demo_active(app)) and app.plans.find(EXAMPLE_NAME) is None:
        _apply_plan(app)
    return created is not None


def demo_active(app: App) -> bool:
    """True when ``voice_v2`` exists and the demo created it."""
    with app.store.read() as tx:
        row = tx.conn.execute(
            sa.select(t.audit_log.c.actor)
            .where(t.audit_log.c.migration == EXAMPLE_NAME, t.audit_log.c.action == "create")
            .order_by(t.audit_log.c.id.desc())
            .limit(1)
        ).first()
    return row is not None and row.actor == DEMO_ACTOR


def restart_demo(app: App) -> PlanState:
    """Start the demo plan again from 0 %: after it completed, aborted or rolled back.

    Only for the demo's migration; every step is audited with actor :data:`DEMO_ACTOR`.
    """
    if not demo_active(app):
        raise ConflictError(f"{EXAMPLE_NAME!r} is not the demo's migration", field="name")
    why = "demo restarted"
    state = app.plans.find(EXAMPLE_NAME)
    if state is not None and state.active:
        app.plans.set_status(
            EXAMPLE_NAME,
            PlanStatus.ABORTED,
            "plan_abort",
            actor=DEMO_ACTOR,
            reason=why,
            touch_migration=False,
        )
    m = app.rollout.get(EXAMPLE_NAME)
    if not m.enabled:
        app.rollout.resume(EXAMPLE_NAME, actor=DEMO_ACTOR, reason=why)
    if m.percentage:
        app.rollout.set_percentage(EXAMPLE_NAME, 0, actor=DEMO_ACTOR, reason=why)
    return _apply_plan(app)


def _apply_plan(app: App) -> PlanState:
    return app.plans.apply(
        EXAMPLE_NAME,
        DEMO_PLAN,
        DEMO_PLAN_SOURCE,
        actor=DEMO_ACTOR,
        reason="the demo's plan: phases of minutes, judged every 10 s",
    )

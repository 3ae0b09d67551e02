"""``rollbacks <= 2``: how many rollbacks the plan has had since it was applied, counted
by the controller from the audit rows and handed to the judge in its Situation."""

from __future__ import annotations

import random

import pytest

from switchover.control.controller import Controller
from switchover.control.plans import PlanService
from switchover.core.clock import ManualClock
from switchover.core.evidence import MinuteStats
from switchover.core.judge import Situation, budget, judge, minutes_by_side
from switchover.core.plan import load_plan, parse_gate
from switchover.core.rollup import Rollup, RollupKey, minute_of
from switchover.core.sketch import LatencySketch
from switchover.core.verdict import Action, Result
from switchover.errors import ValidationError
from switchover.rollout.service import RolloutService
from switchover.store.memory import MemoryStore

SOURCE = """
plan: capped
interval: 1m
min_samples: 50
guardrails: ["error_rate < 5%", "rollbacks <= 2"]
phases:
  - {name: p10, percentage: 10, duration: 1h}
  - {name: p50, percentage: 50, duration: 1h}
"""


def test_rollbacks_parse_hold_by_default_and_refuse_what_cannot_work() -> None:
    gate = parse_gate("rollbacks <= 2", "guardrails[1]")
    assert (gate.kind, gate.value, gate.text, gate.action.value) == (
        "rollbacks",
        2.0,
        "rollbacks <= 2",
        "hold",
    )
    assert parse_gate({"gate": "rollbacks < 3", "action": "abort"}, "g").action.value == "abort"
    assert parse_gate("error_rate < 1%", "g").action.value == "rollback"
    for bad, words in (
        ("rollbacks <= 2.5", "whole number"),
        ("rollbacks <= 2 on tts", "no operation"),
        ("rollback <= 2", "rollbacks"),
        ("rollbacks > 2", "lower-is-better"),
        ("{gate: rollbacks <= 2, action: rollback}", "hold or abort"),
    ):
        quoted = bad if bad.startswith("{") else f"'{bad}'"
        with pytest.raises(ValidationError) as err:
            load_plan(
                f"plan: x\nphases: [{{name: a, percentage: 5, duration: 1h, gates: [{quoted}]}}]",
                "x.yaml",
            )
        text = str(err.value)
        assert "x.yaml" in text and "phases[0].gates[0]" in text and words in text, text


def _minutes(rng: random.Random, calls: int, rate: float, n: int) -> list[MinuteStats]:
    out = []
    for m in range(n):
        errors = sum(rng.random() < rate for _ in range(calls))
        sk = LatencySketch()
        for _ in range(calls):
            sk.add(rng.lognormvariate(5.7, 0.5))
        out.append(MinuteStats(m, calls, errors, 0, 0, {}, sk))
    return out


def test_a_rollback_count_spends_no_budget() -> None:
    plan = load_plan(SOURCE, "x.yaml")
    assert budget(plan, 0).tests == 1 + 2  # error_rate, and the matrix's two


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("base", [0.001, 0.02])
def test_equal_sides_within_the_count_never_fail_and_one_more_holds(seed: int, base: float) -> None:
    plan = load_plan(SOURCE, "x.yaml")
    rng = random.Random(seed)
    evidence = minutes_by_side(_minutes(rng, 20, base, 30), _minutes(rng, 180, base, 30))
    for rollbacks in (0, 1, 2):
        s = Situation(plan, 0, 0.0, 30 * 60.0, rollbacks=rollbacks)
        v = judge(s, evidence)
        assert v.action is Action.CONTINUE, v.reasons
        assert "rollbacks <= 2 (pass)" in v.reasons[-1]
    v = judge(Situation(plan, 0, 0.0, 30 * 60.0, rollbacks=3), evidence)
    assert v.action is Action.HOLD, v.reasons
    [failed] = [c for c in v.checks if c.result is Result.FAIL]
    assert failed.reason == (
        "rollbacks <= 2 failed: 3 rollbacks since the plan was applied, limit 2"
    )


def test_the_controller_counts_the_plans_rollbacks_from_the_audit() -> None:
    store, clock = MemoryStore(), ManualClock()
    rollout, plans = RolloutService(store, clock), PlanService(store, clock)
    rollout.create("voice", features=[], actor="alice", reason="start")
    # a rollback before the plan was applied is not the plan's
    with store.transaction() as tx:
        tx.add_audit(
            migration="voice",
            action="rollback_partial",
            actor="alice",
            at=clock.now(),
            reason="old",
            before=None,
            after=None,
            version=1,
        )
    clock.advance(60)
    plans.apply("voice", SOURCE, "capped.yaml", actor="alice")
    controller = Controller(store, clock, settle=0.0, env={})
    controller.tick()  # starts p10
    rng = random.Random(1)
    for i in range(3):
        clock.advance(60)
        with store.transaction() as tx:
            tx.add_audit(
                migration="voice",
                action="rollback_total" if i == 2 else "rollback_partial",
                actor="bob",
                at=clock.now(),
                reason="by hand",
                before=None,
                after=None,
                version=2 + i,
            )
            r = Rollup()
            for _ in range(60):
                r.add(rng.lognormvariate(5.7, 0.5), True, None, False, None)
            minute = minute_of(clock.now().timestamp())
            tx.insert_rollups(
                [
                    (RollupKey(minute, "voice", "call", "candidate"), r),
                    (RollupKey(minute, "voice", "call", "legacy"), r),
                ]
            )
        v = controller.verdict_for(plans.get("voice"))
        gate = next(c for c in v.checks if c.name == "rollbacks <= 2")
        assert gate.candidate == i + 1
        assert gate.result is (Result.FAIL if i == 2 else Result.PASS)

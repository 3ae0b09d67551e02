"""The controller on the in-memory store: judging, acting, atomicity, leadership, notices.

Everything runs on :class:`~switchover.store.memory.MemoryStore` through the same
services as in production (rollout, plans) and is read back through the store; the
SQLite and PostgreSQL versions of these claims are in
``tests/integration/test_controller_store.py``.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from switchover.control.controller import Controller, Outcome, resolve_targets, start_in_thread
from switchover.control.notify import MemoryNotifier, Webhook
from switchover.control.plans import PlanService
from switchover.core.clock import ManualClock
from switchover.core.migration import State
from switchover.core.plan import load_plan
from switchover.core.plan_state import PlanStatus
from switchover.core.rollup import Rollup, RollupKey, minute_of
from switchover.rollout.service import RolloutService
from switchover.store import control as repo
from switchover.store.memory import MemoryStore, MemoryTx
from switchover.store.records import AuditEntry

NAME = "voice_v2"
SOURCE = """
plan: steady
interval: 1m
window: 10m
min_samples: 50
guardrails: ["error_rate < 5%"]
phases:
  - {name: p10, percentage: 10, duration: 2m, features: [stt]}
  - {name: p50, percentage: 50, duration: 2m, features: [stt, tts]}
  - {name: p100, percentage: 100, duration: 2m}
"""
EXPECTED_MOVES = [("advance", 10), ("advance", 50), ("advance", 100), ("complete", 100)]


# --- helpers ---------------------------------------------------------------------------


class World:
    """A migration with a plan applied, on a memory store, at a manual time."""

    def __init__(self, source: str = SOURCE) -> None:
        self.store = MemoryStore()
        self.clock = ManualClock()
        self.rollout = RolloutService(self.store, self.clock)
        self.plans = PlanService(self.store, self.clock)
        self.rollout.create(NAME, features=["stt", "tts"], actor="alice", reason="start")
        self.plans.apply(NAME, source, "steady.yaml", actor="alice")
        self.rng = random.Random(3)

    def controller(self, **kw: Any) -> Controller:
        kw.setdefault("settle", 0.0)
        kw.setdefault("env", {})
        return Controller(self.store, self.clock, **kw)

    def minute(
        self, calls: int = 400, candidate_errors: float = 0.01, share: int | None = None
    ) -> None:
        """The minute now beginning, split by the migration's percentage (or ``share``,
        e.g. calls still in flight after a kill), then a minute on."""
        m = self.rollout.get(NAME)
        cand = round(calls * m.percentage / 100) if m.enabled else 0
        if share is not None:
            cand = round(calls * share / 100)
        minute = minute_of(self.clock.now().timestamp())
        items = [
            (RollupKey(minute, NAME, "call", side), _rollup(self.rng, n, max(1, round(n * rate))))
            for side, n, rate in (
                ("legacy", calls - cand, 0.01),
                ("candidate", cand, candidate_errors),
            )
            if n
        ]
        with self.store.transaction() as tx:
            tx.insert_rollups(items)
        self.clock.advance(60)

    def audit(self) -> list[AuditEntry]:
        with self.store.read() as tx:
            return list(reversed(tx.list_audit(NAME, limit=1000)))

    def moves(self) -> list[tuple[str, int]]:
        return [(e.action, e.after["percentage"]) for e in self.audit() if e.actor == "controller"]  # type: ignore[index]

    def verdict_intervals(self) -> list[int]:
        with self.store.read() as tx:
            return sorted(v.interval for v in repo.list_verdicts(tx, NAME, limit=1000))


def _rollup(rng: random.Random, calls: int, errors: int) -> Rollup:
    failing = set(rng.sample(range(calls), min(errors, calls)))
    r = Rollup()
    for i in range(calls):
        ok = i not in failing
        r.add(rng.lognormvariate(math.log(300.0), 0.6), ok, None if ok else "Timeout", False, None)
    return r


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


# --- judging and acting ----------------------------------------------------------------


def test_a_healthy_candidate_advances_phase_by_phase_to_completion() -> None:
    w = World()
    controller = w.controller()
    seen: list[Outcome] = []
    controller.on_outcome = seen.append
    for _ in range(20):
        controller.tick()
        if w.plans.get(NAME).status is PlanStatus.COMPLETED:
            break
        w.minute()
    assert w.plans.get(NAME).status is PlanStatus.COMPLETED
    assert w.moves() == EXPECTED_MOVES
    m = w.rollout.get(NAME)
    assert (m.percentage, m.state, m.features) == (100, State.COMPLETED, {"stt": True, "tts": True})
    assert [o.verdict_id for o in seen] == list(range(1, len(seen) + 1))
    intervals = w.verdict_intervals()
    assert intervals == list(range(intervals[0], intervals[0] + len(seen)))  # none skipped
    for entry in (e for e in w.audit() if e.actor == "controller"):
        assert entry.reason  # the verdict's summary says why


def test_an_interval_is_judged_once_however_often_the_controller_ticks() -> None:
    w = World()
    controller = w.controller()
    [start] = controller.tick()
    assert start.verdict.action.value == "start"
    assert controller.tick() == []
    w.clock.advance(59)  # still the same minute
    assert controller.tick() == []
    assert len(w.verdict_intervals()) == 1


def test_two_controllers_ticking_at_once_judge_each_interval_once() -> None:
    w = World()
    controllers = [w.controller(holder=h) for h in ("ctl-a", "ctl-b")]
    for _ in range(20):
        barrier = threading.Barrier(2)
        results: dict[str, list[Outcome]] = {}

        def tick(
            c: Controller,
            barrier: threading.Barrier = barrier,
            results: dict[str, list[Outcome]] = results,
        ) -> None:
            barrier.wait()
            results[c.holder] = c.tick()

        threads = [threading.Thread(target=tick, args=(c,)) for c in controllers]
        for th in threads:
            th.start()
        for th in threads:
            th.join(10)
        assert sum(len(outs) for outs in results.values()) == 1, results
        if w.plans.get(NAME).status is PlanStatus.COMPLETED:
            break
        w.minute()
    assert w.moves() == EXPECTED_MOVES
    intervals = w.verdict_intervals()
    assert len(intervals) == len(set(intervals))


def test_a_verdict_and_its_change_land_together_or_not_at_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = World()
    controller = w.controller()
    controller.tick()
    for _ in range(2):
        w.minute()
        controller.tick()
    assert w.plans.get(NAME).phase_name == "p50"
    for _ in range(2):
        w.minute()

    def state() -> tuple[Any, ...]:
        return w.rollout.get(NAME), w.plans.get(NAME), w.verdict_intervals(), w.audit()

    before = state()
    real_add_audit = MemoryTx.add_audit

    def refuse_the_controller(self: MemoryTx, **row: Any) -> None:
        if row["actor"] == "controller":
            raise RuntimeError("injected fault")
        real_add_audit(self, **row)

    monkeypatch.setattr(MemoryTx, "add_audit", refuse_the_controller)
    with pytest.raises(RuntimeError, match="injected fault"):
        controller.tick()
    assert state() == before  # no verdict, no plan move, no percentage change

    monkeypatch.setattr(MemoryTx, "add_audit", real_add_audit)
    [o] = controller.tick()  # the same interval, judged again, lands whole
    assert o.verdict.action.value == "advance"
    m, plan = w.rollout.get(NAME), w.plans.get(NAME)
    last = w.audit()[-1]
    assert (plan.phase_name, m.percentage) == ("p100", 100)
    assert (last.actor, last.version, last.after) == ("controller", m.version, m.to_dict())
    assert plan.last_interval == w.verdict_intervals()[-1] == int(w.clock.now().timestamp() // 60)


def test_a_plan_changed_since_it_was_read_is_not_acted_on() -> None:
    w = World()
    controller = w.controller()
    stale = w.plans.get(NAME)
    w.plans.pause(NAME, actor="bob")
    interval = int(w.clock.now().timestamp() // 60)
    assert controller.judge_and_apply(stale, interval) is None
    assert w.verdict_intervals() == []
    assert w.rollout.get(NAME).percentage == 0


def test_a_candidate_failing_badly_is_rolled_back_at_once() -> None:
    w = World()
    controller = w.controller()
    controller.tick()
    for _ in range(3):
        w.minute(candidate_errors=0.9)
    [o] = controller.tick()
    assert (o.verdict.action.value, o.verdict.severity) == ("rollback_total", "P0")
    m = w.rollout.get(NAME)
    assert (m.percentage, m.enabled) == (0, False)
    assert w.plans.get(NAME).status is PlanStatus.ABORTED
    with w.store.read() as tx:
        [verdict] = repo.list_verdicts(tx, NAME, limit=1)
    assert verdict.action == "rollback_total" and verdict.data["reasons"]
    w.minute()
    assert controller.tick() == []  # an aborted plan is not judged any more


@pytest.mark.parametrize("operator", ["pause", "kill"])
def test_the_operator_wins_over_a_rollback_on_evidence(operator: str) -> None:
    """A paused plan or a killed migration is never changed by the controller: the
    verdict is a hold that says what it would have done, with its severity kept."""
    w = World()
    controller = w.controller()
    controller.tick()  # into p10
    if operator == "pause":
        w.plans.pause(NAME, actor="alice", reason="hold by hand")
        w.rollout.set_percentage(NAME, 30, actor="alice", reason="by hand")
    else:
        w.rollout.kill(NAME, actor="bob", reason="P0 by hand")
    before = w.rollout.get(NAME)
    for _ in range(3):
        w.minute(candidate_errors=0.9, share=30)  # the last calls before the change
    outcomes = controller.tick()
    assert outcomes, "the interval was judged"
    after = w.rollout.get(NAME)
    assert (after.percentage, after.enabled, after.features) == (
        before.percentage,
        before.enabled,
        before.features,
    )
    for o in outcomes:
        assert o.verdict.action.value == "hold", o.verdict
        assert "the controller changes nothing" in o.verdict.summary()
    assert w.plans.get(NAME).status is not PlanStatus.ABORTED


# --- notifications -----------------------------------------------------------------------


NOTIFYING = """
plan: told
interval: 1m
window: 10m
min_samples: 50
guardrails: ["error_rate < 5%"]
notify:
  - {url_env: ALL_URL}
  - {url_env: ROLLBACK_URL, secret_env: HOOK_SECRET, events: [rollback]}
  - {url_env: UNSET_URL}
phases:
  - {name: p10, percentage: 10, duration: 2m, features: [stt], requires_approval: true}
  - {name: p100, percentage: 100, duration: 2m}
"""
ENV = {
    "ALL_URL": "https://hooks.example.com/all",
    "ROLLBACK_URL": "https://hooks.example.com/rollbacks",
    "HOOK_SECRET": "whsec-1",
}


def test_resolve_targets_reads_urls_and_secrets_from_the_environment() -> None:
    plan = load_plan(NOTIFYING, "n.yaml")
    every, rollbacks = resolve_targets(plan, ENV)  # UNSET_URL is skipped
    assert every == Webhook("https://hooks.example.com/all")
    assert rollbacks == Webhook(
        "https://hooks.example.com/rollbacks", secret="whsec-1", events=frozenset({"rollback"})
    )
    assert resolve_targets(plan, {"ALL_URL": "ftp://nope"}) == []


def test_subscribed_webhooks_hear_approval_start_and_rollback_once_each() -> None:
    w = World(NOTIFYING)
    notifier = MemoryNotifier()
    controller = w.controller(notifier=notifier, env=ENV)
    for _ in range(3):  # waiting for approval: told once, not every interval
        controller.tick()
        w.minute()
    assert [n.event for n in notifier.notifications()] == ["approval_needed"]
    w.plans.approve(NAME, actor="alice")
    [start] = controller.tick()
    assert start.verdict.action.value == "start"
    for _ in range(3):
        w.minute(candidate_errors=0.9)
    [rollback] = controller.tick()
    assert rollback.verdict.action.value == "rollback_total"

    events = [n.event for n in notifier.notifications()]
    assert events == ["approval_needed", "phase_change", "rollback"]
    heard = [(t.url.rsplit("/", 1)[1], n.event) for t, n in notifier.sent]
    assert heard == [
        ("all", "approval_needed"),
        ("all", "phase_change"),
        ("all", "rollback"),
        ("rollbacks", "rollback"),
    ]
    told = notifier.notifications("rollback")[0]
    assert (told.migration, told.severity) == (NAME, "P0")
    assert told.fields["percentage"] == 0 and told.fields["reasons"]


def test_a_failing_notifier_never_stops_the_controller() -> None:
    class Broken:
        def send(self, targets: Any, n: Any) -> None:
            raise RuntimeError("https://hooks.example.com/secret-token")

    w = World(NOTIFYING.replace(", requires_approval: true", ""))
    [start] = w.controller(notifier=Broken(), env=ENV).tick()
    assert start.verdict.action.value == "start"
    assert w.rollout.get(NAME).percentage == 10


# --- leadership ----------------------------------------------------------------------------


def test_only_the_holder_of_the_store_lock_acts() -> None:
    w = World()
    other = w.store.lock("controller", "another-replica", ttl=3600, clock=w.clock)
    assert other.acquire()
    controller = w.controller(holder="ctl-a")
    acted: list[Outcome] = []
    controller.on_outcome = acted.append
    thread, stop = start_in_thread(controller, poll=0.01)
    try:
        time.sleep(0.1)  # several passes, none as leader
        assert acted == [] and w.verdict_intervals() == []
        other.release()
        assert wait_until(lambda: len(acted) == 1)
        assert acted[0].verdict.action.value == "start"
        assert not w.store.lock("controller", "another-replica", clock=w.clock).acquire()
    finally:
        stop.set()
        thread.join(10)
    assert w.store.lock("controller", "another-replica", clock=w.clock).acquire()  # released


def test_replacing_a_plan_applies_the_kept_phase_at_once_with_an_audit_row() -> None:
    w = World()
    w.controller().tick()  # into p10: 10 %, stt
    assert w.rollout.get(NAME).percentage == 10
    replacement = SOURCE.replace(
        "{name: p10, percentage: 10, duration: 2m, features: [stt]}",
        "{name: p10, percentage: 20, duration: 2m, features: [stt, tts]}",
    )
    state = w.plans.replace_plan(NAME, replacement, "new.yaml", actor="alice", reason="retune")
    assert state.phase_name == "p10"
    m = w.rollout.get(NAME)
    assert (m.percentage, m.features) == (20, {"stt": True, "tts": True})
    [row] = [e for e in w.rollout.audit(NAME, limit=10) if e.action == "plan_replace_phase"]
    assert (row.actor, row.reason) == ("alice", "retune")

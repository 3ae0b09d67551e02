"""The controller and manual plan control against the store, on SQLite and PostgreSQL.

Every assertion reads rows back through ``store.read()`` / ``store.transaction()``;
nothing is mocked. Faults are injected in the database itself (a trigger that refuses
the controller's audit row) or by killing a PostgreSQL backend.
"""

from __future__ import annotations

import contextlib
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

import switchover.store.locks as locks_module
from switchover.bootstrap import App
from switchover.control.controller import Controller, Outcome, start_in_thread
from switchover.control.plans import PlanService
from switchover.core.clock import ManualClock
from switchover.core.migration import Override, State
from switchover.core.plan_state import PlanStatus
from switchover.core.rollup import Rollup, RollupKey, minute_of
from switchover.errors import ConflictError, LockHeldError, ValidationError
from switchover.rollout.service import RolloutService
from switchover.store import control as repo
from switchover.store import tables as t
from switchover.store.control import VerdictRecord
from switchover.store.engine import create_store_engine
from switchover.store.locks import NamedLock
from switchover.store.repository import AuditEntry, Store
from switchover.store.schema import upgrade

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
FIVE_PHASES = """
plan: manual
phases:
  - {name: p5, percentage: 5, duration: 1h}
  - {name: p25, percentage: 25, duration: 1h}
  - {name: p50, percentage: 50, duration: 1h}
  - {name: p100, percentage: 100, duration: 1h}
"""


# --- helpers ---------------------------------------------------------------------------


def create(app: App) -> None:
    app.rollout.create(NAME, features=["stt", "tts"], actor="alice", reason="start")


def plans(app: App) -> PlanService:
    return PlanService(app.store, app.clock)


def audit(store: Store) -> list[AuditEntry]:
    """The migration's audit log, oldest first."""
    with store.read() as tx:
        return list(reversed(tx.list_audit(NAME, limit=1000)))


def verdict_counts(store: Store) -> dict[int, int]:
    with store.transaction() as tx:
        rows = tx.conn.execute(
            sa.select(t.verdicts.c.interval, sa.func.count())
            .where(t.verdicts.c.migration == NAME)
            .group_by(t.verdicts.c.interval)
            .order_by(t.verdicts.c.interval)
        ).all()
    return {int(interval): int(n) for interval, n in rows}


def verdict_rows(store: Store) -> list[VerdictRecord]:
    """Every verdict of the migration, oldest first."""
    with store.read() as tx:
        return list(reversed(repo.list_verdicts(tx, NAME, limit=1000)))


def minute_rollup(rng: random.Random, calls: int, errors: int) -> Rollup:
    """``calls`` log-normal latencies around 300 ms, exactly ``errors`` of them failed."""
    failing = set(rng.sample(range(calls), errors))
    r = Rollup()
    for i in range(calls):
        ok = i not in failing
        r.add(rng.lognormvariate(math.log(300.0), 0.6), ok, None if ok else "Timeout", False, None)
    return r


def feed_minute(store: Store, clock: ManualClock, rng: random.Random, calls: int = 400) -> None:
    """The minute now beginning, split by the migration's percentage, as recorders write it.

    Each side fails 1 % of its calls, and at least one a minute: a window in which legacy
    has no error at all makes a verdict that PostgreSQL refuses to store (see
    :func:`test_a_clean_legacy_does_not_stop_a_rollback_on_postgres`).
    """
    with store.read() as tx:
        m = tx.get_migration(NAME)
    cand = round(calls * m.percentage / 100) if m.enabled else 0
    minute = minute_of(clock.now().timestamp())
    items = [
        (RollupKey(minute, NAME, "call", side), minute_rollup(rng, n, max(1, round(n / 100))))
        for side, n in (("legacy", calls - cand), ("candidate", cand))
        if n
    ]
    with store.transaction() as tx:
        tx.insert_rollups(items)


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def controller_moves(store: Store) -> list[tuple[str, int]]:
    return [(e.action, e.after["percentage"]) for e in audit(store) if e.actor == "controller"]  # type: ignore[index]


def tick_together(controllers: list[Controller]) -> dict[str, list[Outcome]]:
    """Every controller ticks at the same moment, each on a thread of its own."""
    barrier = threading.Barrier(len(controllers))
    results: dict[str, list[Outcome]] = {}
    errors: list[BaseException] = []

    def tick(c: Controller) -> None:
        barrier.wait()
        try:
            results[c.holder] = c.tick()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=tick, args=(c,)) for c in controllers]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not errors, errors
    return results


EXPECTED_MOVES = [("advance", 10), ("advance", 50), ("advance", 100), ("complete", 100)]


# --- (a) two controllers on one store ----------------------------------------------------


def test_two_controllers_ticking_at_once_judge_each_interval_once(
    app: App, clock: ManualClock
) -> None:
    create(app)
    plans(app).apply(NAME, SOURCE, "steady.yaml", actor="alice")
    controllers = [
        Controller(app.store, clock, settle=0.0, env={}, holder=h) for h in ("ctl-a", "ctl-b")
    ]
    rng = random.Random(3)
    judged_by: dict[str, int] = {"ctl-a": 0, "ctl-b": 0}
    for _ in range(20):
        results = tick_together(controllers)
        outcomes = [o for outs in results.values() for o in outs]
        assert len(outcomes) == 1, results  # one of the two judged this interval
        assert outcomes[0].verdict_id is not None
        for holder, outs in results.items():
            judged_by[holder] += len(outs)
        if plans(app).get(NAME).status is PlanStatus.COMPLETED:
            break
        feed_minute(app.store, clock, rng)
        clock.advance(60)

    assert plans(app).get(NAME).status is PlanStatus.COMPLETED
    counts = verdict_counts(app.store)
    assert set(counts.values()) == {1}
    first, last = min(counts), max(counts)
    assert sorted(counts) == list(range(first, last + 1))  # no interval skipped either
    assert sum(judged_by.values()) == len(counts)
    assert controller_moves(app.store) == EXPECTED_MOVES
    m = app.rollout.get(NAME)
    assert (m.percentage, m.state, m.features) == (100, State.COMPLETED, {"stt": True, "tts": True})


@pytest.mark.postgres
def test_with_two_controller_loops_only_the_leader_acts(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    locks: list[NamedLock] = []

    class TrackedLock(NamedLock):
        """The real lock, remembered so the test can ask who holds it."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            locks.append(self)

    monkeypatch.setattr(locks_module, "NamedLock", TrackedLock)  # what Store.lock builds
    clock = ManualClock()
    store = Store.from_url(pg_url)
    RolloutService(store, clock).create(NAME, features=["stt", "tts"], actor="alice")
    service = PlanService(store, clock)
    service.apply(NAME, SOURCE, "steady.yaml", actor="alice")
    acted: dict[str, list[Outcome]] = {"ctl-a": [], "ctl-b": []}
    controllers = [
        Controller(store, clock, settle=0.0, env={}, holder=h) for h in ("ctl-a", "ctl-b")
    ]
    for c in controllers:
        c.on_outcome = acted[c.holder].append
    loops = [start_in_thread(c, poll=0.02) for c in controllers]
    rng = random.Random(4)
    try:
        assert wait_until(lambda: len(locks) == 2 and sum(lk.held for lk in locks) == 1)
        leader = next(lk.holder for lk in locks if lk.held)
        for _ in range(20):
            interval = int(clock.now().timestamp() // 60)
            assert wait_until(lambda i=interval: i in verdict_counts(store)), interval
            assert [lk.holder for lk in locks if lk.held] == [leader]
            if service.get(NAME).status is PlanStatus.COMPLETED:
                break
            feed_minute(store, clock, rng)
            clock.advance(60)
        with store.read() as tx:
            row = tx.conn.execute(sa.select(t.locks).where(t.locks.c.name == "controller")).one()
        assert row.holder == leader
    finally:
        for _, stop in loops:
            stop.set()
        for thread, _ in loops:
            thread.join(10)
    follower = "ctl-b" if leader == "ctl-a" else "ctl-a"
    assert acted[follower] == []
    assert len(acted[leader]) == len(verdict_counts(store))
    assert set(verdict_counts(store).values()) == {1}
    assert controller_moves(store) == EXPECTED_MOVES
    assert not any(lk.held for lk in locks)  # both released when stopped
    with store.read() as tx:
        assert tx.conn.execute(sa.select(sa.func.count()).select_from(t.locks)).scalar() == 0
    store.dispose()


# --- (b) NamedLock ---------------------------------------------------------------------


def test_a_second_holder_is_refused_while_the_first_holds(db_url: str) -> None:
    store = Store.from_url(db_url)
    clock = ManualClock()
    first = NamedLock(store, "data-migration", "host-a:101", ttl=30, clock=clock)
    second = NamedLock(store, "data-migration", "host-b:202", ttl=30, clock=clock)
    try:
        assert first.acquire()
        assert first.held
        assert not second.acquire()
        assert not second.held
        with pytest.raises(LockHeldError) as err:
            second.require("the data migration")
        assert "the data migration is already running" in err.value.message
        assert "host-a:101" in err.value.message
        assert first.holder_info()["holder"] == "host-a:101"  # type: ignore[index]
        assert first.acquire()  # already ours: renewed
        first.release()
        assert not first.held
        assert first.holder_info() is None
        second.require("the data migration")
        assert second.holder_info()["holder"] == "host-b:202"  # type: ignore[index]
    finally:
        first.release()
        second.release()
        store.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Any) -> Iterator[Store]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'locks.db'}")
    upgrade(engine)
    store = Store(engine)
    yield store
    store.dispose()


def test_sqlite_lease_is_taken_over_after_it_expires(sqlite_store: Store) -> None:
    clock = ManualClock()
    first = NamedLock(sqlite_store, "controller", "host-a", ttl=30, clock=clock)
    second = NamedLock(sqlite_store, "controller", "host-b", ttl=30, clock=clock)
    assert first.acquire()
    clock.advance(20)
    assert first.renew()  # the lease now runs to 50 s
    clock.advance(25)
    assert not second.acquire()  # 45 s: renewed, not expired
    clock.advance(6)
    assert second.acquire()  # 51 s: expired, taken over
    assert second.holder_info()["holder"] == "host-b"  # type: ignore[index]
    assert not first.renew()
    assert not first.held
    assert not first.acquire()
    with pytest.raises(LockHeldError, match="host-b"):
        first.require("the controller")
    first.release()  # not held: must not delete the new holder's row
    assert second.holder_info()["holder"] == "host-b"  # type: ignore[index]
    second.release()
    assert first.acquire()


def _advisory_pids(store: Store) -> list[int]:
    with store.read() as tx:
        return list(
            tx.conn.execute(
                sa.text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = "
                    "current_database())"
                )
            ).scalars()
        )


@pytest.mark.postgres
def test_postgres_lock_is_freed_when_the_holders_connection_closes(pg_url: str) -> None:
    store = Store.from_url(pg_url)
    clock = ManualClock()
    first = NamedLock(store, "controller", "host-a", ttl=30, clock=clock)
    second = NamedLock(store, "controller", "host-b", ttl=30, clock=clock)
    try:
        assert first.acquire()
        clock.advance(3600)  # on PostgreSQL the advisory lock, not the row's expiry, decides
        assert not second.acquire()
        [pid] = _advisory_pids(store)
        with store.read() as tx:  # the holder's process dies: its connection goes away
            assert tx.conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
        assert wait_until(lambda: not _advisory_pids(store), timeout=5)
        assert second.acquire()
        assert second.holder_info()["holder"] == "host-b"  # type: ignore[index]
        assert not first.renew()  # the old holder finds out at its next renewal
        assert not first.held
        second.release()
        assert _advisory_pids(store) == []
        assert first.acquire()
    finally:
        first.release()
        second.release()
        store.dispose()


@pytest.mark.postgres
def test_postgres_lock_is_not_leaked_when_its_row_cannot_be_written(pg_url: str) -> None:
    store = Store.from_url(pg_url)
    clock = ManualClock()
    broken = NamedLock(store, "controller", "h" * 201, clock=clock)  # too long for locks.holder
    other = NamedLock(store, "controller", "host-b", clock=clock)
    try:
        with contextlib.suppress(Exception):
            assert not broken.acquire()
        broken.release()
        assert other.acquire()
    finally:
        other.release()
        store.dispose()


# --- (c) PlanService ---------------------------------------------------------------------


def test_apply_validates_features_and_writes_nothing_on_error(app: App) -> None:
    create(app)
    version = app.store.store_version()
    bad = SOURCE.replace("features: [stt, tts]", "features: [stt, llm]")
    with pytest.raises(ValidationError) as err:
        plans(app).apply(NAME, bad, "bad.yaml", actor="alice")
    assert err.value.field == "phases[1].features[1]"
    assert err.value.message.startswith("phases[1].features[1]")
    assert "the migration has no feature 'llm'" in err.value.message
    assert "its features are stt, tts" in err.value.message
    with pytest.raises(ValidationError) as err:
        plans(app).apply(
            NAME, SOURCE.replace("duration: 2m}", "duration: soon}"), "x.yaml", actor="a"
        )
    assert err.value.message.startswith("x.yaml: phases[2].duration:")
    assert err.value.field == "phases[2].duration"
    assert plans(app).find(NAME) is None
    assert [e.action for e in audit(app.store)] == ["create"]
    assert app.rollout.get(NAME).version == 1
    assert app.store.store_version() == version


def test_apply_twice_is_refused_while_the_plan_is_active(app: App, clock: ManualClock) -> None:
    create(app)
    svc = plans(app)
    state = svc.apply(NAME, SOURCE, "steady.yaml", actor="alice")
    assert (state.status, state.phase_index, state.version) == (PlanStatus.RUNNING, -1, 1)
    with pytest.raises(ConflictError, match="already runs plan 'steady'"):
        svc.apply(NAME, FIVE_PHASES, "manual.yaml", actor="bob")
    svc.pause(NAME, actor="bob")
    with pytest.raises(ConflictError, match="already runs plan"):
        svc.apply(NAME, FIVE_PHASES, "manual.yaml", actor="bob")
    assert svc.get(NAME).plan.name == "steady"
    assert [e.action for e in audit(app.store)] == ["create", "plan_apply", "plan_pause"]
    svc.abort(NAME, actor="bob")  # the master switch is off now: resume it first
    with pytest.raises(ConflictError, match="killed"):
        svc.apply(NAME, FIVE_PHASES, "manual.yaml", actor="bob")
    app.rollout.resume(NAME, actor="bob")
    again = svc.apply(NAME, FIVE_PHASES, "manual.yaml", actor="bob")
    assert (again.plan.name, again.status, again.version) == ("manual", PlanStatus.RUNNING, 4)


def test_each_manual_action_writes_its_audit_row_with_the_actor(
    app: App, clock: ManualClock
) -> None:
    create(app)
    svc = plans(app)
    svc.apply(NAME, FIVE_PHASES, "manual.yaml", actor="alice")

    def step(action: Callable[[], object]) -> list[AuditEntry]:
        before = len(audit(app.store))
        clock.advance(60)
        action()
        return audit(app.store)[before:]

    rows = step(lambda: svc.approve(NAME, actor="carol", reason="go"))
    assert [(e.action, e.actor, e.reason) for e in rows] == [("plan_approve", "carol", "go")]
    assert svc.get(NAME).approved_index == 0

    rows = step(lambda: svc.promote(NAME, actor="bob"))
    assert [(e.action, e.actor) for e in rows] == [("promote", "bob"), ("plan_promote", "bob")]
    m = app.rollout.get(NAME)
    assert m.percentage == 5 and rows[0].version == rows[1].version == m.version
    assert rows[1].before["phase_index"] == -1 and rows[1].after["phase"] == "p5"  # type: ignore[index]

    rows = step(lambda: svc.pause(NAME, actor="dave"))
    assert [(e.action, e.actor) for e in rows] == [("plan_pause", "dave")]
    assert rows[0].after["status"] == "paused"  # type: ignore[index]

    rows = step(lambda: svc.resume(NAME, actor="erin"))
    assert [(e.action, e.actor) for e in rows] == [("plan_resume", "erin")]
    resumed = svc.get(NAME)
    assert resumed.status is PlanStatus.RUNNING
    assert resumed.phase_started_at == clock.now()  # a fresh window after the pause

    rows = step(lambda: svc.abort(NAME, actor="frank", reason="enough"))
    assert [(e.action, e.actor) for e in rows] == [
        ("rollback_total", "frank"),
        ("plan_abort", "frank"),
    ]
    m = app.rollout.get(NAME)
    assert (m.percentage, m.enabled, m.state) == (0, False, State.ROLLED_BACK)
    assert (svc.get(NAME).status, svc.get(NAME).phase_index) == (PlanStatus.ABORTED, -1)
    assert rows[1].version == m.version
    with pytest.raises(ConflictError, match="nothing to pause"):
        svc.pause(NAME, actor="dave")
    assert len(step(lambda: None)) == 0


def test_rollback_tenant_adds_a_deny_override(app: App) -> None:
    create(app)
    svc = plans(app)
    svc.apply(NAME, FIVE_PHASES, "manual.yaml", actor="alice")
    svc.promote(NAME, actor="alice")
    plan_before = svc.get(NAME)
    with pytest.raises(ValidationError) as missing:
        svc.rollback(NAME, "tenant", actor="oncall")
    assert missing.value.field == "tenant_id"
    out = svc.rollback(NAME, "tenant", actor="oncall", tenant_id="acme", reason="acme complains")
    assert out["level"] == "tenant" and out["plan"] is None
    m = app.rollout.get(NAME)
    assert m.tenants == {"acme": Override.DENY}
    assert m.percentage == 5  # everyone else stays where they were
    last = audit(app.store)[-1]
    assert (last.action, last.actor, last.reason) == ("rollback_tenant", "oncall", "acme complains")
    assert svc.get(NAME) == plan_before
    with app.store.read() as tx:
        assert tx.known_tenants(NAME) == ["acme"]


def test_rollback_partial_moves_to_the_highest_phase_not_above_the_percentage(
    app: App,
) -> None:
    create(app)
    svc = plans(app)
    svc.apply(NAME, FIVE_PHASES, "manual.yaml", actor="alice")
    for _ in range(3):
        svc.promote(NAME, actor="alice")
    assert app.rollout.get(NAME).percentage == 50
    with pytest.raises(ValidationError, match="not below the current 50") as above:
        svc.rollback(NAME, "partial", actor="oncall", target_percentage=60)
    assert above.value.field == "target_percentage"
    with pytest.raises(ValidationError) as missing:
        svc.rollback(NAME, "partial", actor="oncall")
    assert missing.value.field == "target_percentage"
    count = len(audit(app.store))
    out = svc.rollback(NAME, "partial", actor="oncall", target_percentage=30)
    m = app.rollout.get(NAME)
    assert (m.percentage, m.state, m.enabled) == (30, State.ROLLED_BACK, True)
    state = svc.get(NAME)
    assert (state.phase_index, state.phase_name, state.status) == (1, "p25", PlanStatus.ROLLED_BACK)
    assert out["plan"]["phase"] == "p25"
    rows = audit(app.store)[count:]
    assert [(e.action, e.actor) for e in rows] == [
        ("rollback_partial", "oncall"),
        ("plan_rollback", "oncall"),
    ]
    svc.rollback(NAME, "partial", actor="oncall", target_percentage="2")
    state = svc.get(NAME)
    assert (state.phase_index, app.rollout.get(NAME).percentage) == (-1, 2)
    with pytest.raises(ValidationError, match="tenant, partial, total"):
        svc.rollback(NAME, "everything", actor="oncall")


def test_rollback_total_sets_zero_and_switches_the_master_off(app: App) -> None:
    create(app)
    svc = plans(app)
    svc.apply(NAME, FIVE_PHASES, "manual.yaml", actor="alice")
    svc.promote(NAME, actor="alice")
    svc.promote(NAME, actor="alice")
    count = len(audit(app.store))
    out = svc.rollback(NAME, "total", actor="oncall", reason="P0")
    m = app.rollout.get(NAME)
    assert (m.percentage, m.enabled, m.state) == (0, False, State.ROLLED_BACK)
    state = svc.get(NAME)
    assert (state.status, state.phase_index) == (PlanStatus.ABORTED, -1)
    assert out["migration"]["enabled"] is False
    rows = audit(app.store)[count:]
    assert [(e.action, e.actor, e.reason) for e in rows] == [
        ("rollback_total", "oncall", "P0"),
        ("plan_abort", "oncall", "P0"),
    ]
    controller = Controller(app.store, app.clock, settle=0.0, env={})
    assert controller.tick() == []  # an aborted plan is not judged any more


def _install_audit_fault(store: Store) -> None:
    """Make the database refuse the controller's audit rows (and only those)."""
    with store.transaction() as tx:
        if store.is_postgres:
            tx.conn.execute(
                sa.text(
                    "CREATE OR REPLACE FUNCTION refuse_controller_audit() RETURNS trigger AS $$ "
                    "BEGIN IF NEW.actor = 'controller' THEN RAISE EXCEPTION 'injected fault'; "
                    "END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            tx.conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse_controller_audit BEFORE INSERT ON audit_log "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_controller_audit()"
                )
            )
        else:
            tx.conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse_controller_audit BEFORE INSERT ON audit_log "
                    "WHEN NEW.actor = 'controller' "
                    "BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
                )
            )


def _remove_audit_fault(store: Store) -> None:
    with store.transaction() as tx:
        tx.conn.execute(
            sa.text("DROP TRIGGER IF EXISTS refuse_controller_audit ON audit_log")
            if store.is_postgres
            else sa.text("DROP TRIGGER IF EXISTS refuse_controller_audit")
        )
        if store.is_postgres:
            tx.conn.execute(sa.text("DROP FUNCTION IF EXISTS refuse_controller_audit()"))


def test_a_verdict_and_its_change_land_together_or_not_at_all(app: App, clock: ManualClock) -> None:
    create(app)
    svc = plans(app)
    svc.apply(NAME, SOURCE, "steady.yaml", actor="alice")
    controller = Controller(app.store, clock, settle=0.0, env={})
    rng = random.Random(9)

    def agree() -> None:
        """The migration, its last controller audit row, the plan and the verdict agree."""
        m = app.rollout.get(NAME)
        state = svc.get(NAME)
        last = [e for e in audit(app.store) if e.actor == "controller"][-1]
        verdict = verdict_rows(app.store)[-1]
        assert last.version == m.version
        assert last.after == m.to_dict()
        assert m.percentage == state.plan.phases[state.phase_index].percentage
        assert m.updated_by == "controller"
        assert verdict.action == state.last_action
        assert verdict.interval == state.last_interval
        assert verdict.actor == "controller"
        assert verdict.at == last.at == state.updated_at

    [start] = controller.tick()
    assert start.verdict.action.value == "start"
    agree()
    for _ in range(2):
        feed_minute(app.store, clock, rng)
        clock.advance(60)
        [o] = controller.tick()
    assert o.verdict.action.value == "advance"
    agree()
    assert svc.get(NAME).phase_name == "p50"

    # the next advance is due, but the database refuses the controller's audit row
    for _ in range(2):
        feed_minute(app.store, clock, rng)
        clock.advance(60)
    before = (app.rollout.get(NAME), svc.get(NAME), verdict_counts(app.store), audit(app.store))
    _install_audit_fault(app.store)
    try:
        try:
            outcomes = controller.tick()
        except Exception:  # PostgreSQL's error surfaces; SQLite's is a constraint conflict
            outcomes = []
        assert outcomes == []
        after = (app.rollout.get(NAME), svc.get(NAME), verdict_counts(app.store), audit(app.store))
        assert after == before  # no verdict, no plan move, no percentage change
    finally:
        _remove_audit_fault(app.store)

    # the same interval is judged again, and this time everything lands at once
    [o] = controller.tick()
    assert o.verdict.action.value == "advance"
    agree()
    state = svc.get(NAME)
    assert (state.phase_name, app.rollout.get(NAME).percentage) == ("p100", 100)
    assert state.last_interval == int(clock.now().timestamp() // 60)


# --- a candidate failing while legacy is clean -------------------------------------------


def _candidate_fails_while_legacy_is_clean(store: Store) -> list[Outcome]:
    """90 % of the candidate's calls fail, none of legacy's: seed 001's P0 (50 %), shown on
    300 calls (60 % would not be: always-valid evidence of more than 50 % takes more)."""
    clock = ManualClock()
    RolloutService(store, clock).create(NAME, features=["stt", "tts"], actor="alice")
    PlanService(store, clock).apply(NAME, SOURCE, "steady.yaml", actor="alice")
    controller = Controller(store, clock, settle=0.0, env={})
    [start] = controller.tick()
    assert start.verdict.action.value == "start"
    rng = random.Random(11)
    for _ in range(3):
        minute = minute_of(clock.now().timestamp())
        with store.transaction() as tx:
            tx.insert_rollups(
                [
                    (RollupKey(minute, NAME, "call", "candidate"), minute_rollup(rng, 100, 90)),
                    (RollupKey(minute, NAME, "call", "legacy"), minute_rollup(rng, 900, 0)),
                ]
            )
        clock.advance(60)
    return controller.tick()


def _assert_total_rollback(store: Store, outcomes: list[Outcome]) -> None:
    [o] = outcomes
    assert (o.verdict.action.value, o.verdict.severity) == ("rollback_total", "P0")
    with store.read() as tx:
        m = tx.get_migration(NAME)
        [verdict] = repo.list_verdicts(tx, NAME, limit=1)
    assert (m.percentage, m.enabled) == (0, False)
    assert verdict.action == "rollback_total"
    error_rate = next(r for r in verdict.data["metrics"] if r["name"] == "error_rate")
    assert error_rate["legacy"] == 0.0 and error_rate["classification"] == "high"


def test_a_clean_legacy_does_not_stop_a_rollback_on_sqlite(sqlite_store: Store) -> None:
    _assert_total_rollback(sqlite_store, _candidate_fails_while_legacy_is_clean(sqlite_store))


@pytest.mark.postgres
def test_a_clean_legacy_does_not_stop_a_rollback_on_postgres(pg_url: str) -> None:
    store = Store.from_url(pg_url)
    try:
        _assert_total_rollback(store, _candidate_fails_while_legacy_is_clean(store))
    finally:
        store.dispose()

"""The store on SQLite, PostgreSQL and in memory: writes, audit, optimistic concurrency,
atomicity. The tests at the end run each through the Repository Protocol on all three."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from switchover.bootstrap import App
from switchover.core.clock import ManualClock
from switchover.core.migration import Migration, Override, State, new_migration
from switchover.core.plan import load_plan
from switchover.core.plan_state import PlanState, PlanStatus
from switchover.core.rollup import Rollup, RollupKey
from switchover.errors import ConflictError, LockHeldError, NotFoundError, ValidationError
from switchover.rollout.service import RolloutService
from switchover.store import control as repo_control
from switchover.store.engine import create_store_engine
from switchover.store.memory import MemoryStore
from switchover.store.ports import Repository, Transaction
from switchover.store.records import TokenRecord
from switchover.store.repository import Store
from switchover.store.schema import current_revision, head_revision, upgrade


def _create(app: App) -> None:
    app.rollout.create(
        "voice_v2", features=["stt", "tts"], stickiness="user_id", actor="alice", reason="start"
    )


def test_schema_is_at_head_and_upgrade_is_idempotent(app: App) -> None:
    assert current_revision(app.store.engine) == head_revision()
    upgrade(app.store.engine)
    assert current_revision(app.store.engine) == head_revision()


def test_every_mutation_writes_one_audit_row(app: App, clock: ManualClock) -> None:
    r = app.rollout
    _create(app)
    steps = [
        ("set_percentage", lambda: r.set_percentage("voice_v2", 25, actor="bob", reason="r1")),
        ("enable_feature", lambda: r.set_feature("voice_v2", "stt", True, actor="bob")),
        ("disable_feature", lambda: r.set_feature("voice_v2", "stt", False, actor="bob")),
        ("tenant_allow", lambda: r.set_tenant("voice_v2", "t1", Override.ALLOW, actor="c")),
        ("tenant_deny", lambda: r.set_tenant("voice_v2", "t2", Override.DENY, actor="c")),
        ("tenant_clear", lambda: r.set_tenant("voice_v2", "t2", None, actor="c")),
        ("kill", lambda: r.kill("voice_v2", actor="oncall", reason="P0")),
        ("resume", lambda: r.resume("voice_v2", actor="oncall", reason="fixed")),
    ]
    for _, step in steps:
        clock.advance(60)
        step()
    entries = list(reversed(r.audit("voice_v2")))
    assert [e.action for e in entries] == ["create"] + [a for a, _ in steps]
    assert [e.version for e in entries] == list(range(1, len(steps) + 2))
    times = [e.at for e in entries]
    assert times == sorted(times) and len(set(times)) == len(times)
    pct = entries[1]
    assert (pct.actor, pct.reason) == ("bob", "r1")
    assert (pct.before["percentage"], pct.after["percentage"]) == (0, 25)
    kill = entries[7]
    assert (kill.before["enabled"], kill.after["enabled"], kill.after["state"]) == (
        True,
        False,
        "rolled_back",
    )


def test_state_and_values_survive_a_round_trip(app: App) -> None:
    _create(app)
    app.rollout.set_percentage("voice_v2", 40, actor="a")
    app.rollout.set_tenant("voice_v2", "tenant-ü", Override.ALLOW, actor="a")
    m = app.rollout.get("voice_v2")
    assert (m.percentage, m.state, m.version) == (40, State.ROLLING, 3)
    assert m.tenants == {"tenant-ü": Override.ALLOW}
    assert m.created_at is not None and m.created_at.tzinfo is not None


@pytest.mark.parametrize("bad", [101, -1, "abc"])
def test_bad_percentage_writes_nothing(app: App, bad: object) -> None:
    _create(app)
    before_version = app.store.store_version()
    with pytest.raises(ValidationError):
        app.rollout.set_percentage("voice_v2", bad, actor="a")
    assert app.rollout.get("voice_v2").version == 1
    assert len(app.rollout.audit("voice_v2")) == 1
    assert app.store.store_version() == before_version


def test_unknown_things_write_nothing(app: App) -> None:
    _create(app)
    with pytest.raises(NotFoundError, match="voice_v2"):
        app.rollout.set_percentage("voice_v3", 10, actor="a")
    with pytest.raises(ValidationError):
        app.rollout.set_feature("voice_v2", "llm", True, actor="a")
    with pytest.raises(ValidationError):
        app.rollout.set_tenant("voice_v2", "  ", Override.ALLOW, actor="a")
    with pytest.raises(ValidationError):
        app.rollout.set_percentage("voice_v2", 10, actor=" ")
    assert app.rollout.get("voice_v2").version == 1
    assert len(app.rollout.audit("voice_v2")) == 1


def test_duplicate_create_is_a_conflict(app: App) -> None:
    _create(app)
    with pytest.raises(ConflictError, match="already exists"):
        _create(app)


def test_stale_expected_version_is_refused_with_the_current_version(app: App) -> None:
    _create(app)
    app.rollout.set_percentage("voice_v2", 10, actor="a")
    with pytest.raises(ConflictError) as info:
        app.rollout.set_percentage("voice_v2", 20, actor="b", expected_version=1)
    assert info.value.current_version == 2
    assert "version 2" in info.value.message
    assert app.rollout.get("voice_v2").percentage == 10


def test_racing_writers_on_the_same_version_one_wins(db_url: str) -> None:
    """Two processes' worth of services read version 1 and write at once."""
    stores = [Store.from_url(db_url) for _ in range(2)]
    services = [RolloutService(s, ManualClock()) for s in stores]
    services[0].create("voice_v2", features=["stt"], actor="a")
    barrier = threading.Barrier(2)
    results: list[object] = [None, None]

    def write(i: int) -> None:
        barrier.wait()
        try:
            results[i] = services[i].set_percentage(
                "voice_v2", 10 * (i + 1), actor=f"w{i}", expected_version=1
            )
        except ConflictError as exc:
            results[i] = exc

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conflicts = [r for r in results if isinstance(r, ConflictError)]
    assert len(conflicts) == 1, results
    assert conflicts[0].current_version == 2
    final = services[0].get("voice_v2")
    assert final.version == 2
    assert len(services[0].audit("voice_v2")) == 2
    for s in stores:
        s.dispose()


def test_concurrent_unversioned_writes_lose_nothing(db_url: str) -> None:
    """Without --expect-version a lost race is retried: every write lands, none is lost."""
    store = Store.from_url(db_url)
    svc = RolloutService(store, ManualClock())
    svc.create("voice_v2", features=["stt"], actor="a")
    landed: list[int] = []
    lock = threading.Lock()

    def write(i: int) -> None:
        for n in range(10):
            svc.set_tenant("voice_v2", f"t{i}-{n}", Override.ALLOW, actor=f"w{i}")
            with lock:
                landed.append(1)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    m = svc.get("voice_v2")
    assert len(m.tenants) == len(landed) == m.version - 1 == 40
    assert len(svc.audit("voice_v2", limit=100)) == 41
    store.dispose()


def test_status_counts_known_tenants(app: App) -> None:
    app.rollout.create("seed003", stickiness="tenant_id", actor="a")
    app.rollout.register_tenants("seed003", [f"t{i}" for i in range(100)], actor="a")
    app.rollout.set_tenant("seed003", "premium", Override.ALLOW, actor="a")
    app.rollout.set_percentage("seed003", 100, actor="a")
    s = app.rollout.status("seed003")
    assert (s.tenants_on_candidate, s.tenants_known) == (101, 101)
    app.rollout.set_percentage("seed003", 0, actor="a")
    s = app.rollout.status("seed003")
    assert (s.tenants_on_candidate, s.tenants_known) == (1, 101)
    assert s.last_change is not None and s.last_change["action"] == "set_percentage"


# --- one store interface: the same semantics in SQL and in memory -------------------------


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repository]:
    """An empty store of each kind, used only through the Repository Protocol."""
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        engine = create_store_engine(url)
        upgrade(engine)
        engine.dispose()
    else:
        url = request.getfixturevalue("pg_url")
    store = Store.from_url(url)
    yield store
    store.dispose()


AT = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
PLAN_SOURCE = """
plan: steady
phases:
  - {name: p10, percentage: 10, duration: 2m}
  - {name: p100, percentage: 100, duration: 2m}
"""


def _migration(name: str = "voice_v2", **changes: Any) -> Migration:
    m = new_migration(name, features=["stt"], now=AT, actor="alice")
    return replace(m, **changes)


def _plan_state(version: int = 1, **changes: Any) -> PlanState:
    state = PlanState(
        migration="voice_v2",
        plan=load_plan(PLAN_SOURCE, "steady.yaml"),
        source=PLAN_SOURCE,
        source_name="steady.yaml",
        status=PlanStatus.RUNNING,
        phase_index=-1,
        phase_started_at=AT,
        applied_at=AT,
        applied_by="alice",
        updated_at=AT,
        version=version,
    )
    return replace(state, **changes)


def _verdict(tx: Transaction, interval: int, **changes: Any) -> int | None:
    values: dict[str, Any] = {
        "migration": "voice_v2",
        "interval": interval,
        "at": AT,
        "phase_index": 0,
        "phase": "p10",
        "action": "continue",
        "severity": "P3",
        "summary": "fine",
        "data": {"reasons": ["fine"]},
        "actor": "controller",
    }
    return tx.insert_verdict(**{**values, **changes})


def _rollup(calls: int, errors: int = 0) -> Rollup:
    r = Rollup()
    for i in range(calls):
        r.add(100.0 + i, i >= errors, None if i >= errors else "Timeout", False, None)
    return r


def _everything(repo: Repository) -> dict[str, Any]:
    """What a reader can see of the store, for before/after comparisons."""
    with repo.read() as tx:
        return {
            "version": tx.store_version(),
            "migrations": tx.list_migrations(),
            "audit": tx.list_audit("voice_v2"),
            "tenants": tx.known_tenants("voice_v2"),
            "tokens": tx.list_tokens(),
            "rollups": tx.rollups("voice_v2", 0, 10**9),
            "max_rollup_id": tx.max_rollup_id(),
            "samples": tx.shadow_samples("voice_v2"),
            "plans": tx.list_plans(),
            "verdicts": tx.list_verdicts("voice_v2"),
        }


def _write_one_of_each(tx: Transaction) -> None:
    tx.add_audit(
        migration="voice_v2",
        action="test",
        actor="alice",
        at=AT,
        reason="",
        before=None,
        after={"n": 1},
        version=1,
    )
    tx.add_known_tenants("voice_v2", ["acme"], AT)
    tx.insert_token(TokenRecord("ci", "operator", "h" * 64, AT, "alice", None))
    tx.insert_rollups([(RollupKey(100, "voice_v2", "call", "legacy"), _rollup(3))])
    tx.add_shadow_samples(
        [
            {
                "migration": "voice_v2",
                "operation": "call",
                "at": AT,
                "kind": "mismatch",
                "sample": {"a": 1},
            }
        ],
        keep_per_migration=10,
    )
    tx.put_plan(_plan_state())
    _verdict(tx, 1)


def test_a_unit_of_work_that_raises_leaves_nothing_changed(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.insert_migration(_migration())
    before = _everything(repo)
    with pytest.raises(RuntimeError, match="boom"), repo.transaction() as tx:
        tx.replace_migration(_migration(percentage=50, version=2), expected_version=1)
        tx.insert_migration(_migration("voice_v3"))
        _write_one_of_each(tx)
        assert tx.get_migration("voice_v2").percentage == 50  # seen inside the unit of work
        raise RuntimeError("boom")
    assert _everything(repo) == before
    with repo.transaction() as tx:  # and the same writes land when nothing raises
        _write_one_of_each(tx)
    after = _everything(repo)
    assert len(after["audit"]) == 1 and after["tenants"] == ["acme"]
    assert [p.migration for p in after["plans"]] == ["voice_v2"]
    assert len(after["verdicts"]) == len(after["rollups"]) == len(after["samples"]) == 1


def test_what_is_written_in_a_read_is_not_kept(repo: Repository) -> None:
    with repo.read() as tx:
        tx.insert_migration(_migration())
        _write_one_of_each(tx)
    assert _everything(repo) == _everything(MemoryStore())


def test_migrations_are_written_with_compare_and_swap(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.insert_migration(_migration())
    assert repo.store_version() == 1
    with pytest.raises(ConflictError, match="already exists") as dup, repo.transaction() as tx:
        tx.insert_migration(_migration())
    assert dup.value.current_version == 1
    with repo.transaction() as tx:
        tx.replace_migration(_migration(percentage=10, version=2), expected_version=1)
    stale_write = _migration(percentage=20, version=2)
    with (
        pytest.raises(ConflictError, match="at version 2, not 1") as stale,
        repo.transaction() as tx,
    ):
        tx.replace_migration(stale_write, expected_version=1)
    assert (stale.value.current_version, stale.value.field) == (2, "version")
    with pytest.raises(NotFoundError, match="'nope' does not exist"), repo.transaction() as tx:
        tx.replace_migration(_migration("nope"), expected_version=1)
    with pytest.raises(NotFoundError, match="known migrations: voice_v2"), repo.read() as tx:
        tx.get_migration("voice_v3")
    with pytest.raises(ConflictError, match="broken constraint"), repo.transaction() as tx:
        tx.insert_migration(_migration("voice_v3", percentage=101))
    version, migrations = repo.snapshot()
    assert version == 2
    [m] = migrations
    assert (m.percentage, m.version, m.created_at, m.features) == (10, 2, AT, {"stt": False})


def test_rows_come_back_as_plain_json_and_fresh(repo: Repository) -> None:
    with repo.transaction() as tx:
        tx.insert_migration(_migration(tenants={"b": Override.DENY, "a": Override.ALLOW}))
        for i in range(3):
            tx.add_audit(
                migration="voice_v2",
                action=f"step{i}",
                actor="alice",
                at=AT,
                reason="",
                before={1: (1, 2)},
                after=None,
                version=i,
            )
    with repo.read() as tx:
        m = tx.get_migration("voice_v2")
        entries = tx.list_audit("voice_v2", limit=2)
        entries[0].before["x"] = 1  # type: ignore[index]
        again = tx.list_audit("voice_v2", limit=2)
    assert m.tenants == {"a": Override.ALLOW, "b": Override.DENY}
    assert [e.action for e in entries] == ["step2", "step1"]
    assert again[0].before == {"1": [1, 2]}


def test_known_tenants_and_tokens(repo: Repository) -> None:
    with repo.transaction() as tx:
        assert tx.add_known_tenants("voice_v2", ["b", "a", "b"], AT) == 2
        assert tx.add_known_tenants("voice_v2", ["a", "c"], AT) == 1
        tx.insert_token(TokenRecord("ci", "operator", "h" * 64, AT, "alice", None))
    with pytest.raises(ConflictError, match="already exists"), repo.transaction() as tx:
        tx.insert_token(TokenRecord("ci", "viewer", "g" * 64, AT, "alice", None))
    with pytest.raises(ConflictError), repo.transaction() as tx:
        tx.insert_token(TokenRecord("other", "viewer", "h" * 64, AT, "alice", None))
    with repo.transaction() as tx:
        tx.revoke_token("ci", AT)
    with pytest.raises(NotFoundError, match="no active token"), repo.transaction() as tx:
        tx.revoke_token("ci", AT)
    with repo.read() as tx:
        assert tx.known_tenants("voice_v2") == ["a", "b", "c"]
        token = tx.token_by_hash("h" * 64)
        assert token is not None and token.revoked_at == AT
        assert tx.token_by_hash("x") is None
        assert [t.name for t in tx.list_tokens()] == ["ci"]


def test_rollups_are_appended_read_by_range_and_followed_by_id(repo: Repository) -> None:
    key = RollupKey(100, "voice_v2", "call", "legacy")
    with repo.transaction() as tx:
        tx.insert_rollups([(key, _rollup(4, 1)), (key._replace(side="candidate"), _rollup(2))])
        tx.insert_rollups([(key._replace(minute=101, operation="tts"), _rollup(1))])
        tx.insert_rollups([(key._replace(minute=102, migration="other"), _rollup(1))])
    with repo.read() as tx:
        assert tx.max_rollup_id() == 4
        rows = tx.rollups("voice_v2", 100, 102)
        assert [(r.key.minute, r.key.side) for r in rows] == [
            (100, "legacy"),
            (100, "candidate"),
            (101, "legacy"),
        ]
        assert rows[0].rollup == _rollup(4, 1)
        rows[0].rollup.merge(_rollup(10))  # the caller's copy
        assert tx.rollups("voice_v2", 100, 101, "call")[0].rollup == _rollup(4, 1)
        assert len(tx.rollups("voice_v2", 100, 102, max_id=1)) == 1
        feed = tx.rollups_after(1, limit=2)
        assert [i for i, _ in feed] == [2, 3]
        assert [i for i, _ in tx.rollups_after(3)] == [4]
        parts = sorted(tx.rollup_parts("voice_v2", 100, 102, max_id=4))
        assert [(p.key.minute, p.count, p.errors) for p in parts] == [
            (100, 2, 0),
            (100, 4, 1),
            (101, 1, 0),
        ]
        assert parts[1].sketch == _rollup(4, 1).sketch.to_dict()
    with repo.transaction() as tx:
        assert tx.prune_rollups(101) == 2
    with repo.read() as tx:
        assert [i for i, _ in tx.rollups_after(0)] == [3, 4]


def test_shadow_samples_keep_the_newest_per_migration(repo: Repository) -> None:
    def sample(migration: str, n: int) -> dict[str, Any]:
        return {
            "migration": migration,
            "operation": "llm",
            "at": AT,
            "kind": "k",
            "sample": {"n": n},
        }

    with repo.transaction() as tx:
        tx.add_shadow_samples([sample("voice_v2", n) for n in range(5)], keep_per_migration=3)
        tx.add_shadow_samples([sample("other", 9)], keep_per_migration=3)
        tx.add_shadow_samples([sample("voice_v2", 5)], keep_per_migration=3)
    with repo.read() as tx:
        got = tx.shadow_samples("voice_v2")
        assert [s["n"] for s in got] == [5, 4, 3]
        assert got[0] == {
            "migration": "voice_v2",
            "operation": "llm",
            "at": AT.isoformat(),
            "kind": "k",
            "n": 5,
        }
        assert [s["n"] for s in tx.shadow_samples("voice_v2", limit=1)] == [5]
        assert [s["n"] for s in tx.shadow_samples("other")] == [9]


def test_plans_swap_on_version_and_a_verdict_is_kept_once_per_interval(
    repo: Repository,
) -> None:
    with repo.transaction() as tx:
        tx.put_plan(_plan_state())
        assert _verdict(tx, 7, summary="x" * 3000, data={"reasons": ("a", "b")}) is not None
    with repo.transaction() as tx:
        assert _verdict(tx, 7, action="advance") is None  # another leader's interval
        second = _verdict(tx, 8, action="advance")
        moved = _plan_state(version=2, phase_index=0, last_interval=8, last_action="advance")
        tx.update_plan(moved, expected_version=1)
    with pytest.raises(ConflictError, match="changed meanwhile"), repo.transaction() as tx:
        tx.update_plan(_plan_state(version=3), expected_version=1)
    with pytest.raises(ConflictError), repo.transaction() as tx:
        tx.update_plan(replace(_plan_state(), migration="nope"), expected_version=1)
    with repo.transaction() as tx:
        tx.put_plan(_plan_state(version=5))  # a new apply replaces the plan
    with repo.read() as tx:
        state = tx.find_plan("voice_v2")
        assert state is not None and (state.version, state.phase_index) == (5, -1)
        assert tx.find_plan("nope") is None
        assert repo_control.get_plan(tx, "voice_v2") == state
        with pytest.raises(NotFoundError, match="has no plan"):
            repo_control.get_plan(tx, "nope")
        newest, oldest = tx.list_verdicts("voice_v2")
    assert (newest.id, newest.action, newest.interval) == (second, "advance", 8)
    assert len(oldest.summary) == 2000 and oldest.data == {"reasons": ["a", "b"]}
    assert oldest.at == AT and oldest.to_dict()["reasons"] == ["a", "b"]


def test_a_lock_has_one_holder_at_a_time(repo: Repository) -> None:
    clock = ManualClock(AT)
    first = repo.lock("data-migration", "host-a", ttl=30, clock=clock)
    second = repo.lock("data-migration", "host-b", ttl=30, clock=clock)
    assert first.acquire() and first.acquire()  # ours already
    assert not second.acquire()
    with pytest.raises(LockHeldError, match="'data-migration' is held by host-a"):
        second.require("the data migration")
    first.release()
    second.require("the data migration")
    assert not first.acquire()
    second.release()


def test_an_expired_lease_is_taken_over(repo: Repository) -> None:
    if getattr(repo, "is_postgres", False):
        pytest.skip("PostgreSQL's advisory lock lives as long as its holder's connection")
    clock = ManualClock(AT)
    first = repo.lock("controller", "host-a", ttl=30, clock=clock)
    second = repo.lock("controller", "host-b", ttl=30, clock=clock)
    assert first.acquire()
    clock.advance(20)
    assert first.renew() and not second.acquire()
    clock.advance(31)
    assert second.acquire()
    assert not first.renew()
    second.release()

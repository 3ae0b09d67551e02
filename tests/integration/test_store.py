"""The store on SQLite and PostgreSQL: writes, audit, optimistic concurrency, atomicity."""

from __future__ import annotations

import threading

import pytest

from switchover.bootstrap import App
from switchover.core.clock import ManualClock
from switchover.core.migration import Override, State
from switchover.errors import ConflictError, NotFoundError, ValidationError
from switchover.rollout.service import RolloutService
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

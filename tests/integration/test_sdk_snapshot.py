"""The in-app client: fresh snapshots, cross-process refresh, and a store that goes away."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
import sqlalchemy as sa

import switchover
from switchover.core.clock import ManualClock
from switchover.core.decision import Reason, Side
from switchover.rollout.service import RolloutService
from switchover.store.repository import Store

from .tcp_proxy import TcpProxy


def _service(url: str) -> tuple[Store, RolloutService]:
    store = Store.from_url(url)
    return store, RolloutService(store, ManualClock())


def _wait(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_client_follows_changes_by_polling(db_url: str) -> None:
    store, svc = _service(db_url)
    svc.create("voice_v2", features=["stt"], actor="a")
    with switchover.connect(db_url, refresh_interval=0.05) as client:
        m = client.migration("voice_v2")
        ctx = {"user_id": "42", "tenant_id": "t1"}
        assert m.decide("stt", ctx).reason is Reason.FEATURE_OFF
        svc.set_feature("voice_v2", "stt", True, actor="a")
        svc.set_percentage("voice_v2", 100, actor="a")
        assert _wait(lambda: m.decide("stt", ctx).side is Side.CANDIDATE)
        svc.kill("voice_v2", actor="a")
        assert _wait(lambda: m.decide("stt", ctx).reason is Reason.KILL_SWITCH)
        assert client.health()["stale"] is False
        assert m.status()["enabled"] is False
        assert client.migration("nope").decide("stt", ctx).reason is Reason.UNKNOWN_MIGRATION
    store.dispose()


_CHILD = textwrap.dedent(
    """
    import json, sys, time
    import switchover
    client = switchover.connect(sys.argv[1], refresh_interval=60)
    m = client.migration("voice_v2")
    print(json.dumps({"ready": m.decide("stt", {"user_id": "7"}).side.value}), flush=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        d = m.decide("stt", {"user_id": "7"})
        if d.side.value == "candidate":
            print(json.dumps({"seen": time.time()}), flush=True)
            break
        time.sleep(0.001)
    client.close()
    """
)


@pytest.mark.postgres
def test_listen_notify_reaches_another_process_without_waiting_for_a_poll(pg_url: str) -> None:
    """The child polls only every 60 s, so only NOTIFY can bring the change in time."""
    store, svc = _service(pg_url)
    svc.create("voice_v2", features=["stt"], actor="a")
    svc.set_feature("voice_v2", "stt", True, actor="a")
    env = dict(os.environ)
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, pg_url], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None
        assert json.loads(child.stdout.readline()) == {"ready": "legacy"}
        time.sleep(0.3)  # the child is listening
        changed_at = time.time()
        svc.set_percentage("voice_v2", 100, actor="a")
        line = child.stdout.readline()
        assert line, "the child never saw the change"
        delay = json.loads(line)["seen"] - changed_at
        assert delay < 5, f"change took {delay:.3f}s to reach the other process"
        assert child.wait(timeout=10) == 0
    finally:
        child.kill()
        store.dispose()


@pytest.mark.postgres
def test_store_going_away_keeps_the_last_snapshot_serving(pg_url: str) -> None:
    url = sa.engine.make_url(pg_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    store, svc = _service(pg_url)
    svc.create("voice_v2", features=["stt"], actor="a")
    svc.set_feature("voice_v2", "stt", True, actor="a")
    svc.set_percentage("voice_v2", 100, actor="a")
    client = switchover.connect(proxied, refresh_interval=0.05)
    try:
        m = client.migration("voice_v2")
        assert m.decide("stt", {"user_id": "1"}).side is Side.CANDIDATE
        proxy.stop()
        svc.set_percentage("voice_v2", 0, actor="a")  # the client cannot see this
        assert _wait(lambda: client.health()["stale"], timeout=10)
        for i in range(1000):
            d = m.decide("stt", {"user_id": str(i)})
            assert (d.side, d.reason) == (Side.CANDIDATE, Reason.BUCKET_IN)
        first = client.staleness()
        time.sleep(0.2)
        assert client.staleness() > first  # type: ignore[operator]
        health = client.health()
        assert health["failed_refreshes"] >= 1 and health["last_error"]
        assert "password" not in health["last_error"].lower()
        proxy.start()
        assert _wait(lambda: m.decide("stt", {"user_id": "1"}).side is Side.LEGACY, timeout=15)
        assert client.health()["stale"] is False
    finally:
        client.close()
        proxy.stop()
        store.dispose()


def test_no_snapshot_at_all_decides_legacy_and_never_raises(tmp_path) -> None:  # type: ignore[no-untyped-def]
    dead = "postgresql+psycopg://postgres@127.0.0.1:1/none"
    started = time.monotonic()
    with switchover.connect(dead, refresh_interval=0.05) as client:
        d = client.migration("voice_v2").decide("stt", {"user_id": "1"})
        assert (d.side, d.reason) == (Side.LEGACY, Reason.STORE_UNREACHABLE)
        assert client.health()["loaded"] is False
        assert client.staleness() is None
    assert time.monotonic() - started < 15


def test_uninitialised_sqlite_store_is_unreachable_not_an_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with switchover.connect(f"sqlite:///{tmp_path / 'empty.db'}", background=False) as client:
        d = client.migration("voice_v2").decide("stt", {"user_id": "1"})
        assert d.reason is Reason.STORE_UNREACHABLE
        assert "switchover init" in client.health()["last_error"]

"""The in-memory backend through the real client and router: no database anywhere.

Every test builds ``Client(MemoryBackend([...]))``, decides and routes through the
client's handles, and reads back what the recorder flushed into the backend, through
``window`` and ``status`` as a user would.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

import switchover
from switchover.core.clock import ManualClock
from switchover.core.decision import Reason, Side
from switchover.core.migration import Migration, Override
from switchover.errors import NotFoundError, ValidationError
from switchover.sdk import Backend, Client, MemoryBackend
from switchover.sdk.backends import SourceBackend, as_backend

NAME = "voice_v2"
CTX = {"user_id": "u1", "tenant_id": "t1"}
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _migration(**changes: object) -> Migration:
    fields: dict[str, object] = {
        "name": NAME,
        "percentage": 100,
        "features": {"tts": True, "stt": False},
    }
    fields.update(changes)
    return Migration(**fields)  # type: ignore[arg-type]


class Boom(Exception):
    pass


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def backend(clock: ManualClock) -> MemoryBackend:
    return MemoryBackend([_migration()], clock=clock)


@pytest.fixture
def client(backend: MemoryBackend, clock: ManualClock) -> Iterator[Client]:
    c = Client(backend, background=False, clock=clock)
    yield c
    c.close()


def test_a_memory_backend_is_a_backend_and_is_used_as_is(backend: MemoryBackend) -> None:
    assert isinstance(backend, Backend)
    assert as_backend(backend) is backend


# --- decide ---------------------------------------------------------------------------


def test_decisions_come_from_the_migrations_it_holds(client: Client) -> None:
    m = client.migration(NAME)
    assert m.decide("tts", CTX).side is Side.CANDIDATE
    assert m.decide("stt", CTX).reason is Reason.FEATURE_OFF
    assert m.snapshot is not None and m.snapshot.percentage == 100
    assert client.migration("nope").decide("tts", CTX).reason is Reason.UNKNOWN_MIGRATION
    assert client.health()["loaded"] is True
    assert client.health()["migrations"] == [NAME]


def test_put_and_remove_move_the_version_and_reach_the_client_at_refresh(
    backend: MemoryBackend, client: Client
) -> None:
    m = client.migration(NAME)
    before = client.version
    backend.put(_migration(enabled=False))
    assert m.decide("tts", CTX).side is Side.CANDIDATE  # not refreshed yet
    assert client.refresh() is True
    assert client.version == backend.version() != before
    assert m.decide("tts", CTX).reason is Reason.KILL_SWITCH
    backend.remove(NAME)
    client.refresh()
    assert m.decide("tts", CTX).reason is Reason.UNKNOWN_MIGRATION
    assert client.health()["migrations"] == []


def test_a_background_client_sees_a_put_without_waiting_for_its_interval() -> None:
    backend = MemoryBackend([_migration()])
    with Client(backend, refresh_interval=60) as client:
        m = client.migration(NAME)
        backend.put(_migration(percentage=0))
        deadline = time.monotonic() + 5
        while m.decide("tts", CTX).side is Side.CANDIDATE and time.monotonic() < deadline:
            time.sleep(0.005)
        assert m.decide("tts", CTX).reason is Reason.BUCKET_OUT


def test_wait_for_change_returns_at_the_timeout_or_when_stopped() -> None:
    backend = MemoryBackend()
    stop = threading.Event()
    started = time.monotonic()
    backend.wait_for_change(0.05, stop)
    assert 0.04 <= time.monotonic() - started < 1
    stop.set()
    started = time.monotonic()
    backend.wait_for_change(30, stop)
    assert time.monotonic() - started < 1


def test_connect_takes_a_backend_instead_of_a_url(backend: MemoryBackend) -> None:
    with switchover.connect(backend=backend, background=False) as client:
        assert client.backend is backend
        assert client.migration(NAME).is_candidate("tts", CTX)
    with pytest.raises(ValueError, match="not both"):
        switchover.connect("sqlite:///x.db", backend=backend)


# --- route, recorded into the backend -------------------------------------------------


def test_a_candidate_failure_falls_back_and_the_fallback_is_recorded(
    backend: MemoryBackend, client: Client, clock: ManualClock
) -> None:
    async def candidate(text: str) -> str:
        raise Boom("candidate broke")

    async def legacy(text: str) -> str:
        return f"legacy:{text}"

    m = client.migration(NAME)
    assert asyncio.run(m.route("tts", CTX, "hi", legacy=legacy, candidate=candidate)) == (
        "legacy:hi"
    )
    assert backend.rollups == []  # nothing flushed yet
    assert client.recorder.flush() is True
    [(key, rollup)] = backend.rollups
    assert (key.migration, key.operation, key.side) == (NAME, "tts", "candidate")
    assert key.minute == int(clock.now().timestamp() // 60)
    assert (rollup.count, rollup.errors, rollup.fallbacks, rollup.total_failures) == (1, 1, 1, 0)
    assert rollup.error_types == {"Boom": 1}
    assert rollup.tenants == {"t1": [1, 1]}


def test_route_sync_and_outcomes_reach_the_window(
    backend: MemoryBackend, client: Client, clock: ManualClock
) -> None:
    m = client.migration(NAME)
    for i in range(4):
        ctx = {"user_id": f"u{i}", "tenant_id": "t1"}
        fails = i == 0

        def candidate(fails: bool = fails) -> str:
            if fails:
                raise Boom("no")
            return "c"

        m.route_sync("tts", ctx, legacy=lambda: "l", candidate=candidate, outcome={"booked": 1})
    backend.put(_migration(percentage=0))
    client.refresh()
    m.route_sync("tts", CTX, legacy=lambda: "l", candidate=lambda: "c")
    client.recorder.flush()

    report = m.window()
    assert report["migration"] == NAME and report["percentage"] == 0
    cand, leg = report["sides"]["candidate"], report["sides"]["legacy"]
    assert (cand["calls"], cand["errors"], cand["fallbacks"]) == (4, 1, 1)
    assert cand["fallback_rate"] == 0.25
    assert cand["outcomes"] == {"booked": 4.0}
    assert leg["calls"] == 1 and leg["errors"] == 0
    assert report["comparison"]["candidate_share"] == 0.8
    assert m.window(operation="stt")["sides"]["candidate"]["calls"] == 0

    clock.advance(3600)
    assert m.window(last=timedelta(minutes=5))["sides"]["candidate"]["calls"] == 0
    assert m.window(last=timedelta(hours=2))["sides"]["candidate"]["calls"] == 4


def test_record_outcome_after_the_call_counts_for_the_decided_side(
    backend: MemoryBackend, client: Client
) -> None:
    m = client.migration(NAME)
    m.route_sync("tts", CTX, legacy=lambda: "l", candidate=lambda: "c")
    m.record_outcome("tts", {"booked": 1}, context=CTX)
    client.recorder.flush()
    assert m.window()["sides"]["candidate"]["outcome_rates"] == {"booked": 1.0}


def test_shadow_samples_are_kept(backend: MemoryBackend, client: Client) -> None:
    m = client.migration(NAME)

    async def run() -> str:
        result = await m.shadow("tts", CTX, legacy=lambda: "l", candidate=lambda: "c")
        await m.drain()
        return result

    assert asyncio.run(run()) == "l"
    client.close()  # flushes what is left into the backend
    [sample] = backend.samples
    assert (sample["migration"], sample["kind"], sample["legacy"], sample["candidate"]) == (
        NAME,
        "mismatch",
        "l",
        "c",
    )


def test_window_and_status_refuse_what_the_store_refuses(client: Client) -> None:
    with pytest.raises(NotFoundError, match="known migrations: voice_v2"):
        client.migration("nope").window()
    with pytest.raises(NotFoundError):
        client.migration("nope").status()
    until = START
    with pytest.raises(ValidationError):
        client.migration(NAME).window(since=until, until=until)


def test_status_counts_the_tenants_on_the_candidate(backend: MemoryBackend, client: Client) -> None:
    backend.put(_migration(percentage=0, tenants={"acme": Override.ALLOW, "evil": Override.DENY}))
    client.refresh()
    status = client.migration(NAME).status()
    assert status["name"] == NAME
    assert (status["tenants_on_candidate"], status["tenants_known"], status["overrides"]) == (
        1,
        2,
        2,
    )
    assert status["last_change"] is None


# --- a bare snapshot source -----------------------------------------------------------


class FixedSource:
    def __init__(self, migrations: list[Migration]) -> None:
        self.migrations = migrations

    def version(self) -> int:
        return 1

    def load(self) -> tuple[int, list[Migration]]:
        return 1, list(self.migrations)

    def wait_for_change(self, timeout: float, stop: threading.Event) -> None:
        stop.wait(timeout)

    def close(self) -> None:
        return None


def test_a_bare_source_decides_and_keeps_nothing() -> None:
    source = FixedSource([_migration()])
    with Client(source, background=False) as client:
        assert isinstance(client.backend, SourceBackend)
        m = client.migration(NAME)
        assert m.route_sync("tts", CTX, legacy=lambda: "l", candidate=lambda: "c") == "c"
        assert client.recorder.flush() is True
        with pytest.raises(NotImplementedError):
            m.window()
        with pytest.raises(NotImplementedError):
            m.status()


def test_readers_given_to_the_client_replace_the_backend_reads(backend: MemoryBackend) -> None:
    seen: list[tuple[object, ...]] = []

    def window(*args: object) -> dict[str, object]:
        seen.append(args)
        return {"window": True}

    with Client(
        backend,
        background=False,
        window_reader=window,
        status_reader=lambda name: {"status": name},
    ) as client:
        m = client.migration(NAME)
        assert m.window(operation="tts") == {"window": True}
        assert seen == [(NAME, None, None, "tts", None)]
        assert m.status() == {"status": NAME}

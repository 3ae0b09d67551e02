"""Observations through the recorder into the real store, on both engines, and back.

Covers the window read by an app and by the metrics service, several processes adding
up exactly, the store going away during flushes (PostgreSQL behind a TCP proxy), the
memory bound, retention, and the all-or-nothing ingest of observations.
"""

from __future__ import annotations

import json
import logging
import math
import random
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

import switchover
from switchover.core.clock import ManualClock
from switchover.core.rollup import Rollup, RollupKey
from switchover.core.sketch import LatencySketch
from switchover.errors import ValidationError
from switchover.metrics.service import MetricsService
from switchover.rollout.service import RolloutService
from switchover.sdk.recorder import Recorder
from switchover.store.repository import Store
from switchover.store.rollup_sink import StoreSink

from .tcp_proxy import TcpProxy

NAME = "voice_v2"


def _create(url: str, percentage: int = 100) -> Store:
    store = Store.from_url(url)
    svc = RolloutService(store, ManualClock())
    svc.create(NAME, features=["tts"], actor="a")
    svc.set_feature(NAME, "tts", True, actor="a")
    svc.set_percentage(NAME, percentage, actor="a")
    return store


def _latencies(n: int, seed: int) -> list[float]:
    """Lognormal latencies on a 1/64 ms grid, so that every sum is exact."""
    rng = random.Random(seed)
    return [round(rng.lognormvariate(5.0, 0.7) * 64) / 64 for _ in range(n)]


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def _stored(store: Store, minute_from: int = 0, minute_to: int = 2**40) -> dict[str, Rollup]:
    with store.read() as tx:
        rows = tx.rollups(NAME, minute_from, minute_to)
    merged: dict[str, Rollup] = {}
    for row in rows:
        merged.setdefault(row.key.side, Rollup()).merge(row.rollup)
    return merged


# --- flushed and read back --------------------------------------------------------------


def test_flushed_observations_read_back_through_the_window(db_url: str) -> None:
    store = _create(db_url)
    clock = ManualClock()
    client = switchover.connect(db_url, background=False, clock=clock)
    try:
        m = client.migration(NAME)
        m.configure("greet", feature="tts")

        def candidate(i: int) -> str:
            if i % 3 == 0:
                raise ValueError("candidate broke")
            return f"c{i}"

        def booked(result: str) -> dict[str, float]:
            return {"booked": 1.0 if result.startswith("c") else 0.0}

        for i in range(30):
            served = m.route_sync(
                "greet",
                {"user_id": f"u{i}"},
                i,
                legacy=lambda i: f"l{i}",
                candidate=candidate,
                outcome=booked,
            )
            assert served == (f"l{i}" if i % 3 == 0 else f"c{i}")

        values = _latencies(5000, seed=1)
        for i, v in enumerate(values):
            client.recorder.record(
                NAME,
                "tts",
                "legacy",
                v,
                ok=i % 10 != 0,
                error_type=None if i % 10 else "timeout",
                outcome={"booked": 1} if i % 4 == 0 else None,
            )
        assert client.recorder.flush() is True
        assert client.recorder.stats().pending_observations == 0
        assert client.recorder.stats().flushed_observations == 5030

        tts = m.window(operation="tts")["sides"]
        legacy = tts["legacy"]
        assert legacy["calls"] == 5000
        assert legacy["error_rate"] == pytest.approx(0.1)
        assert legacy["error_types"] == {"timeout": 500}
        assert legacy["fallback_rate"] == 0.0
        assert legacy["outcome_rates"] == {"booked": pytest.approx(0.25)}
        for q, key in ((0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
            exact = _p(values, q)
            assert abs(legacy[key] - exact) <= 0.01 * exact, (key, legacy[key], exact)
        assert tts["candidate"]["calls"] == 0

        greet = m.window(operation="greet")["sides"]["candidate"]
        assert greet["calls"] == 30
        assert greet["error_rate"] == pytest.approx(1 / 3)
        assert greet["fallback_rate"] == pytest.approx(1 / 3)
        assert greet["error_types"] == {"ValueError": 10}
        assert greet["outcome_rates"] == {"booked": pytest.approx(20 / 30)}

        report = MetricsService(store, clock).window(NAME, last=timedelta(minutes=5))
        assert report.sides["legacy"].calls == 5000
        assert report.sides["candidate"].calls == 30
        assert report.sides["legacy"].p95_ms == pytest.approx(_p(values, 0.95), rel=0.01)
        assert report.comparison()["candidate_share"] == pytest.approx(30 / 5030)
        assert report.percentage == 100 and report.enabled is True

        clock.advance(20 * 60)  # the default window is the last 15 minutes
        assert m.window()["sides"]["legacy"]["calls"] == 0
    finally:
        client.close()
        store.dispose()


# --- several processes add up exactly ------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import json, sys
    import switchover

    job = json.load(sys.stdin)
    client = switchover.connect(job["url"], background=False)
    for i, v in enumerate(job["values"]):
        n = job["offset"] + i
        client.recorder.record(
            "voice_v2", "tts", "candidate", v,
            ok=n % 5 != 0,
            error_type=None if n % 5 else ("timeout" if n % 10 == 0 else "ValueError"),
            fallback=n % 7 == 0,
            outcome={"booked": 1} if n % 2 else None,
            at=job["at"],
            total_failure=n % 50 == 0,
        )
    ok = client.recorder.flush()
    client.close()
    print(json.dumps({"ok": ok}))
    """
)


def _expected(values: list[float]) -> Rollup:
    r = Rollup()
    for n, v in enumerate(values):
        r.add(
            v,
            n % 5 != 0,
            None if n % 5 else ("timeout" if n % 10 == 0 else "ValueError"),
            n % 7 == 0,
            {"booked": 1.0} if n % 2 else None,
            n % 50 == 0,
        )
    return r


def test_two_processes_recording_the_same_minute_add_up_exactly(db_url: str) -> None:
    store = _create(db_url)
    at = time.time()
    minute = int(at // 60)
    values = _latencies(3000, seed=2)
    shards = [(0, values[:1300]), (1300, values[1300:])]
    children: list[subprocess.Popen[str]] = []
    try:
        children += [
            subprocess.Popen(
                [sys.executable, "-c", _CHILD],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in shards
        ]
        for child, (offset, shard) in zip(children, shards, strict=True):
            assert child.stdin is not None
            child.stdin.write(
                json.dumps({"url": db_url, "values": shard, "offset": offset, "at": at})
            )
            child.stdin.close()
        for child in children:
            assert child.stdout is not None and child.stderr is not None
            assert child.wait(timeout=60) == 0, child.stderr.read()
            out = child.stdout.read()
            assert json.loads(out.strip().splitlines()[-1]) == {"ok": True}

        with store.read() as tx:
            rows = tx.rollups(NAME, minute, minute + 1)
        assert len(rows) == 2  # one partial rollup per process, appended
        assert {r.key for r in rows} == {RollupKey(minute, NAME, "tts", "candidate")}

        merged = _stored(store, minute, minute + 1)["candidate"]
        expected = _expected(values)
        assert merged.count == 3000
        assert merged.errors == expected.errors == 600
        assert merged.error_types == expected.error_types
        assert merged.fallbacks == expected.fallbacks
        assert merged.total_failures == expected.total_failures == 60
        assert merged.outcomes == expected.outcomes == {"booked": 1500.0}

        single = LatencySketch()
        for v in values:
            single.add(v)
        assert merged.sketch == single
        assert merged.sketch.to_dict() == single.to_dict()
        assert merged == expected

        report = MetricsService(store).window(NAME, last=timedelta(minutes=15))
        cand = report.sides["candidate"]
        assert cand.calls == 3000
        assert cand.error_rate == pytest.approx(0.2)
        assert cand.p95_ms == single.quantile(0.95)
        assert cand.p95_ms == pytest.approx(_p(values, 0.95), rel=0.01)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
        store.dispose()


# --- the store going away --------------------------------------------------------------


def _cut(proxy: TcpProxy) -> None:
    """Stop the proxy and wait until its port refuses connections.

    ``TcpProxy.stop`` closes the listener while its accept thread is still blocked in
    ``accept()``, so one more connection can get through after it; take that one here.
    """
    proxy.stop()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", proxy.port), timeout=0.5).close()
        except OSError:
            return
        time.sleep(0.02)
    raise AssertionError("the proxy still accepts connections")


@pytest.fixture
def proxied(pg_url: str) -> Iterator[tuple[str, TcpProxy]]:
    url = sa.engine.make_url(pg_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        yield through, proxy
    finally:
        proxy.stop()


@pytest.mark.postgres
def test_store_down_during_flushes_loses_nothing(
    pg_url: str, proxied: tuple[str, TcpProxy]
) -> None:
    through, proxy = proxied
    store = _create(pg_url)
    clock = ManualClock()
    client = switchover.connect(through, background=False, clock=clock)
    try:
        m = client.migration(NAME)

        def candidate(i: int) -> str:
            if i % 5 == 0:
                raise ValueError("candidate broke")
            return "c"

        def call(i: int) -> None:
            m.route_sync("tts", {"user_id": f"u{i}"}, i, legacy=lambda i: "l", candidate=candidate)

        for i in range(50):
            call(i)
        _cut(proxy)
        assert client.recorder.flush() is False
        stats = client.recorder.stats()
        assert stats.failed_flushes >= 1
        assert stats.pending_observations == 50
        assert stats.flushed_observations == 0
        assert stats.last_error and "StoreError" in stats.last_error

        for i in range(50, 80):  # calls keep being served and recorded meanwhile
            started = time.perf_counter()
            call(i)
            assert time.perf_counter() - started < 0.5
        assert client.recorder.flush() is False
        stats = client.recorder.stats()
        assert stats.failed_flushes >= 2
        assert stats.pending_observations == 80
        assert stats.dropped_observations == 0

        proxy.start()
        assert client.recorder.flush() is True
        stats = client.recorder.stats()
        assert (stats.pending_observations, stats.flushed_observations) == (0, 80)
        assert stats.last_error is None

        cand = m.window(operation="tts")["sides"]["candidate"]
        assert cand["calls"] == 80
        assert cand["fallbacks"] == 16
        assert cand["error_types"] == {"ValueError": 16}
        stored = _stored(store)["candidate"]
        assert (stored.count, stored.fallbacks) == (80, 16)
    finally:
        client.close()
        store.dispose()


@pytest.mark.postgres
def test_the_memory_bound_drops_the_oldest_minutes_and_says_so(
    pg_url: str, proxied: tuple[str, TcpProxy], caplog: pytest.LogCaptureFixture
) -> None:
    through, proxy = proxied
    store = _create(pg_url)
    down_store = Store.from_url(through)
    base = 1_800_000_000 // 60 * 60  # a minute boundary in 2027
    recorder = Recorder(
        StoreSink(down_store, time_fn=lambda: float(base)),
        max_keys=3,
        background=False,
        time_fn=lambda: float(base),
    )
    try:
        recorded = 0
        for minute in range(5):  # minute i holds i + 1 calls
            for _ in range(minute + 1):
                recorder.record(NAME, "tts", "candidate", 10.0, at=base + 60 * minute)
                recorded += 1
        _cut(proxy)
        with caplog.at_level(logging.WARNING, logger="switchover.recorder"):
            assert recorder.flush() is False
        stats = recorder.stats()
        assert stats.pending_keys == 3
        assert stats.dropped_observations == 1 + 2  # the two oldest minutes
        assert stats.pending_observations == recorded - stats.dropped_observations == 12
        warnings = [r.getMessage() for r in caplog.records if r.name == "switchover.recorder"]
        assert any("dropped 3 observations" in w for w in warnings), warnings

        for _ in range(4):  # a sixth minute: the oldest kept one goes too
            recorder.record(NAME, "tts", "candidate", 10.0, at=base + 60 * 5)
            recorded += 1
        assert recorder.flush() is False
        stats = recorder.stats()
        assert stats.dropped_observations == 3 + 3
        assert stats.pending_observations == recorded - stats.dropped_observations

        proxy.start()
        assert recorder.flush() is True
        with store.read() as tx:
            rows = tx.rollups(NAME, 0, 2**40)
        per_minute: dict[int, int] = {}
        for row in rows:
            per_minute[row.key.minute] = per_minute.get(row.key.minute, 0) + row.rollup.count
        first = base // 60
        assert per_minute == {first + 3: 4, first + 4: 5, first + 5: 4}
        assert sum(per_minute.values()) + recorder.stats().dropped_observations == recorded
    finally:
        recorder.close()
        down_store.dispose()
        store.dispose()


# --- retention ------------------------------------------------------------------------------


def test_rollups_older_than_the_retention_are_pruned(db_url: str) -> None:
    store = _create(db_url)
    future = (time.time() + 400 * 86400) // 60 * 60
    now_minute = int(future // 60)
    cutoff = now_minute - 7 * 24 * 60  # the first minute still kept

    def rollup(n: int) -> Rollup:
        r = Rollup()
        for _ in range(n):
            r.add(5.0, True, None, False, None)
        return r

    try:
        with store.transaction() as tx:
            tx.insert_rollups(
                [
                    (RollupKey(cutoff - 1440, NAME, "tts", "legacy"), rollup(1)),
                    (RollupKey(cutoff - 1, NAME, "tts", "legacy"), rollup(2)),
                    (RollupKey(cutoff, NAME, "tts", "legacy"), rollup(3)),
                    (RollupKey(now_minute - 60, NAME, "tts", "candidate"), rollup(4)),
                ]
            )
        sink = StoreSink(store, time_fn=lambda: future)
        sink.write(
            [
                (RollupKey(cutoff - 3 * 1440, NAME, "tts", "legacy"), rollup(5)),
                (RollupKey(now_minute, NAME, "tts", "candidate"), rollup(6)),
            ],
            [],
        )
        with store.read() as tx:
            rows = tx.rollups(NAME, 0, 2**40)
        kept = sorted((r.key.minute, r.rollup.count) for r in rows)
        assert kept == [(cutoff, 3), (now_minute - 60, 4), (now_minute, 6)]
    finally:
        store.dispose()


def test_shadow_samples_are_kept_per_migration_up_to_a_bound(db_url: str) -> None:
    store = _create(db_url)
    try:
        sink = StoreSink(store, keep_samples=3)
        samples = [
            {"migration": NAME, "operation": "tts", "kind": "mismatch", "at": time.time(), "n": i}
            for i in range(5)
        ]
        sink.write([], samples[:2])
        sink.write([], samples[2:])
        kept = MetricsService(store).shadow_samples(NAME)
        assert [s["n"] for s in kept] == [4, 3, 2]
        assert all(s["kind"] == "mismatch" and s["operation"] == "tts" for s in kept)
    finally:
        store.dispose()


# --- ingest: all or nothing ----------------------------------------------------------------


def _obs(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "migration": NAME,
        "operation": "tts",
        "side": "candidate",
        "latency_ms": 20.0,
    }
    base.update(kw)
    return base


def test_ingest_validates_the_whole_batch_before_writing_anything(db_url: str) -> None:
    store = _create(db_url)
    clock = ManualClock()
    service = MetricsService(store, clock)
    try:
        batch = [_obs(), _obs(side="legacy"), _obs(latency_ms=-3), _obs()]
        with pytest.raises(ValidationError) as info:
            service.ingest(batch)
        assert info.value.field == "observations[2].latency_ms"
        assert "observations[2]" in info.value.message
        assert _stored(store) == {}

        with pytest.raises(ValidationError) as info:
            service.ingest([_obs(), _obs(migration="ghost_v1")])
        assert info.value.field == "migration"
        assert "ghost_v1" in info.value.message
        assert _stored(store) == {}

        with pytest.raises(ValidationError) as info:
            service.ingest({"observations": []})  # type: ignore[arg-type]
        assert info.value.field == "observations"

        good = [
            _obs(latency_ms=10.0, outcome={"booked": 1}),
            _obs(latency_ms=30.0, ok=False, error_type="timeout", fallback=True),
            _obs(latency_ms=20.0, outcome={"booked": 1}),
            _obs(side="legacy", latency_ms=15.0),
        ]
        assert service.ingest(good) == 4
        report = service.window(NAME, last=timedelta(minutes=5))
        cand = report.sides["candidate"]
        assert (cand.calls, cand.errors, cand.fallbacks) == (3, 1, 1)
        assert cand.error_types == {"timeout": 1}
        assert cand.outcome_rates == {"booked": pytest.approx(2 / 3)}
        assert report.sides["legacy"].calls == 1
    finally:
        store.dispose()

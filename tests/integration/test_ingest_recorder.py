"""Issue 21 on both engines: one bad call no longer poisons a recorder, a row the store
refuses is skipped and counted, and a batch's idempotency key is stored with it.

"On PostgreSQL, one SDK call with an operation name over 63 characters made every later
flush of that process fail (StringDataRightTruncation). 1,001 calls were recorded and 0
stored."
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

import switchover
from switchover.core.clock import ManualClock
from switchover.core.rollup import Batch, Rollup, RollupKey
from switchover.rollout.service import RolloutService
from switchover.sdk.recorder import Recorder
from switchover.store import ingest_keys
from switchover.store import tables as t
from switchover.store.repository import Store
from switchover.store.rollup_sink import StoreSink

NAME = "voice_v2"


def _create(url: str) -> Store:
    store = Store.from_url(url)
    svc = RolloutService(store, ManualClock())
    svc.create(NAME, features=["tts"], actor="a")
    svc.set_feature(NAME, "tts", True, actor="a")
    svc.set_percentage(NAME, 100, actor="a")
    return store


def _calls(store: Store, operation: str | None = None) -> int:
    with store.read() as tx:
        rows = tx.rollups(NAME, 0, 2**40, operation)
    return sum(r.rollup.count for r in rows)


def _rollup(n: int) -> Rollup:
    r = Rollup()
    for _ in range(n):
        r.add(10.0, True, None, False, None)
    return r


def test_a_long_operation_name_among_1000_good_calls_stores_them_all(db_url: str) -> None:
    store = _create(db_url)
    clock = ManualClock()
    client = switchover.connect(db_url, background=False, clock=clock)
    long_op = "synthesize_the_greeting_for_the_premium_tenant_with_the_new_voice_v2"
    assert len(long_op) > 63
    try:
        m = client.migration(NAME)
        for i in range(1000):
            m.route_sync("tts", {"user_id": f"u{i}"}, legacy=lambda: "l", candidate=lambda: "c")
            if i == 10:
                m.route_sync(long_op, {"user_id": "u"}, legacy=lambda: "l", candidate=lambda: "c")
        assert client.recorder.flush() is True
        for i in range(5):  # and the flushes after it
            m.route_sync("tts", {"user_id": f"v{i}"}, legacy=lambda: "l", candidate=lambda: "c")
        assert client.recorder.flush() is True
        stats = client.recorder.stats()
        assert stats.failed_flushes == 0 and stats.pending_observations == 0
        assert stats.flushed_observations == 1006 and stats.invalid_fields == 1
        assert _calls(store, "tts") == 1005
        assert _calls(store) == 1006  # the long one too, under its repaired name
        with store.read() as tx:
            ops = {r.key.operation for r in tx.rollups(NAME, 0, 2**40)}
        [repaired] = ops - {"tts"}
        assert repaired.startswith(long_op[:40]) and len(repaired) <= 63
    finally:
        client.close()
        store.dispose()


def test_a_row_the_store_refuses_is_skipped_and_the_rest_stored(db_url: str) -> None:
    """A row no recorder makes (a count past any integer column) reaches the sink: the
    sink skips it, row by row in savepoints, and stores the other 1,000."""
    store = _create(db_url)
    minute = int(time.time() // 60)
    try:
        bad = _rollup(1)
        bad.count = 2**70
        good = [(RollupKey(minute, NAME, f"op{i}", "candidate"), _rollup(1)) for i in range(1000)]
        sample = {"migration": NAME, "operation": "tts", "at": time.time(), "n": 1}
        broken_sample = {"migration": NAME, "operation": "tts", "at": float("nan")}
        batch = Batch(
            [*good[:500], (RollupKey(minute, NAME, "bad", "legacy"), bad), *good[500:]], "k"
        )
        report = StoreSink(store).write(batch, [sample, broken_sample])
        assert report is not None
        assert [k.operation for k, _ in report.refused] == ["bad"]
        assert report.refused_samples == 1 and report.reason
        assert _calls(store) == 1000
        with store.read() as tx:
            assert [s["n"] for s in tx.shadow_samples(NAME)] == [1]
    finally:
        store.dispose()


def test_a_recorder_counts_the_rows_its_sink_refuses_and_keeps_flushing(db_url: str) -> None:
    store = _create(db_url)
    now = time.time()
    recorder = Recorder(StoreSink(store), background=False, time_fn=lambda: now)
    try:
        for i in range(300):
            recorder.record(NAME, "tts", "candidate", 10.0 + i)
        bad = _rollup(3)
        bad.count = 2**70  # as a bug elsewhere could make it
        recorder._pending[(int(now // 60), NAME, "stt", "candidate")] = bad
        assert recorder.flush() is True
        stats = recorder.stats()
        assert (stats.refused_rollups, stats.refused_observations) == (1, 2**70)
        assert stats.flushed_observations == 300 and stats.pending_observations == 0
        recorder.record(NAME, "tts", "candidate", 1.0)
        assert recorder.flush() is True
        assert _calls(store, "tts") == 301
    finally:
        recorder.close()
        store.dispose()


def test_a_batch_retried_with_its_key_is_stored_once(db_url: str) -> None:
    store = _create(db_url)
    minute = int(time.time() // 60)
    sink = StoreSink(store)
    try:
        batch = Batch([(RollupKey(minute, NAME, "tts", "candidate"), _rollup(7))], uuid.uuid4().hex)
        assert sink.write(batch, []) is None
        again = sink.write(batch, [])
        assert again is not None and again.replay and not again.refused
        assert _calls(store) == 7
        other = Batch(list(batch), uuid.uuid4().hex)  # the same rows, another batch
        assert sink.write(other, []) is None
        assert _calls(store) == 14
    finally:
        store.dispose()


def test_a_key_is_kept_only_with_its_batch(db_url: str) -> None:
    """Stored in the batch's transaction: when that rolls back, the key goes with it."""
    store = _create(db_url)
    at = datetime.now(UTC)
    try:
        with pytest.raises(RuntimeError), store.transaction() as tx:
            assert ingest_keys.claim(tx, "rollups", "k-crash", 5, at) is None
            raise RuntimeError("the process died before the commit")
        with store.transaction() as tx:
            assert ingest_keys.claim(tx, "rollups", "k-crash", 5, at) is None
        with store.transaction() as tx:
            assert ingest_keys.claim(tx, "rollups", "k-crash", 9, at) == 5
            assert ingest_keys.claim(tx, "observations", "k-crash", 9, at) is None
    finally:
        store.dispose()


def test_a_concurrent_retry_waits_for_the_first_and_is_a_replay(db_url: str) -> None:
    store = _create(db_url)
    at = datetime.now(UTC)
    key = uuid.uuid4().hex
    answers: list[int | None] = []
    try:
        with store.transaction() as tx:
            assert ingest_keys.claim(tx, "observations", key, 3, at) is None

            def retry() -> None:
                with store.transaction() as tx2:
                    answers.append(ingest_keys.claim(tx2, "observations", key, 3, at))

            thread = threading.Thread(target=retry)
            thread.start()
            time.sleep(0.5)
            assert thread.is_alive()  # waits for the first transaction
        thread.join(timeout=20)
        assert answers == [3]
    finally:
        store.dispose()


def test_keys_are_pruned_after_a_day(db_url: str) -> None:
    store = _create(db_url)
    now = [time.time()]
    sink = StoreSink(store, time_fn=lambda: now[0])
    minute = int(now[0] // 60)
    try:
        batch = Batch([(RollupKey(minute, NAME, "tts", "candidate"), _rollup(1))], "k-old")
        sink.write(batch, [])
        now[0] += 23 * 3600
        sink.prune_if_due()
        assert sink.write(batch, []) is not None  # still a replay after 23 h
        now[0] += 2 * 3600
        sink.prune_if_due()
        with store.read() as tx:
            keys = tx.conn.execute(sa.select(t.ingest_keys.c.key)).scalars().all()
        assert "k-old" not in keys
        assert sink.write(batch, []) is None  # a day later the key is gone
    finally:
        store.dispose()

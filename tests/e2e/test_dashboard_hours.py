"""Hourly rollups for long charts, on both engines: the 7-day chart reads them and says
exactly what it said from minutes; late rows and a second settle count once."""

from __future__ import annotations

import random
from typing import Any

import sqlalchemy as sa

from switchover.bootstrap import App
from switchover.core.clock import ManualClock
from switchover.core.rollup import Rollup, RollupKey, minute_of
from switchover.metrics.charts import ChartCache
from switchover.store import rollup_hours
from switchover.store import tables as t
from switchover.store.rollup_sink import StoreSink

NAME = "voice_v2"


def _rollup(rng: random.Random, calls: int, streams: bool = False) -> Rollup:
    r = Rollup()
    for i in range(calls):
        ok = rng.random() > 0.05
        r.add(
            rng.lognormvariate(5.5, 0.5),
            ok,
            None if ok else "Timeout",
            not ok and rng.random() < 0.5,
            {"booked": 1.0} if rng.random() < 0.2 else None,
            first_chunk_ms=rng.uniform(100, 400) if streams and i % 2 == 0 else None,
        )
    return r


def _seed(app: App, clock: ManualClock, hours: int) -> int:
    rng = random.Random(7)
    now = minute_of(clock.now().timestamp())
    items = [
        (RollupKey(minute, NAME, op, side), _rollup(rng, rng.randint(1, 6), op == "llm"))
        for minute in range(now - hours * 60, now + 1, 3)
        for op in ("stt", "llm")
        for side in ("legacy", "candidate")
    ]
    with app.store.transaction() as tx:
        tx.insert_rollups(items)
    return now


def _chart(app: App, clock: ManualClock) -> tuple[dict[str, Any], dict[str, Any]]:
    cache = ChartCache(app.store, clock)
    return cache.charts(NAME, "7d"), cache.info()["migrations"][NAME]


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["t"] == b["t"]
    for key in ("error_rate", "fallback_rate", "calls", "ttfb_p95_ms"):
        assert a["series"][key] == b["series"][key], key
    assert a["series"]["outcomes"] == b["series"]["outcomes"]
    # p95 from merged sketches: the same bins in another order, the same quantile
    for side in ("legacy", "candidate"):
        for x, y in zip(a["series"]["p95_ms"][side], b["series"]["p95_ms"][side], strict=True):
            assert (x is None and y is None) or abs(x - y) < 1e-6 * max(1.0, x)
    assert a["totals"]["legacy"]["calls"] == b["totals"]["legacy"]["calls"]
    assert a["totals"]["candidate"]["errors"] == b["totals"]["candidate"]["errors"]


def test_the_week_chart_reads_hours_and_draws_the_same(app: App, clock: ManualClock) -> None:
    app.rollout.create(NAME, features=["stt"], actor="seed")
    now = _seed(app, clock, hours=30)
    from_minutes, info = _chart(app, clock)
    assert info["hours_from_minute"] is None

    merged = rollup_hours.settle_all(app.store, now)["hours"]
    with app.store.read() as tx:
        hours = tx.conn.execute(sa.select(sa.func.count()).select_from(t.rollup_hours)).scalar()
        rows = tx.conn.execute(sa.select(sa.func.count()).select_from(t.rollups)).scalar()
    assert merged > 0.9 * rows and hours and hours < rows / 10

    from_hours, info = _chart(app, clock)
    assert info["hours_from_minute"] is not None  # the hours were read
    _same(from_minutes, from_hours)

    # a row that comes late for a settled hour is read from the rollups, then settled
    late = Rollup()
    late.add(300.0, False, "Timeout", True, None)
    with app.store.transaction() as tx:
        tx.insert_rollups([(RollupKey(now - 20 * 60, NAME, "stt", "candidate"), late)])
    with_late, _ = _chart(app, clock)
    assert (
        with_late["totals"]["candidate"]["errors"]
        == from_hours["totals"]["candidate"]["errors"] + 1
    )
    for _ in range(2):  # settling again adds the late row once, and nothing after that
        rollup_hours.settle_all(app.store, now)
    again, info = _chart(app, clock)
    assert info["hours_from_minute"] is not None
    _same(with_late, again)

    # the shorter windows of the same cache still read minutes, each counted once
    cache = ChartCache(app.store, clock)
    week = cache.charts(NAME, "7d")
    day = cache.charts(NAME, "24h")
    fresh_day = ChartCache(app.store, clock).charts(NAME, "24h")
    assert day["series"]["calls"] == fresh_day["series"]["calls"]
    assert cache.charts(NAME, "7d")["series"]["calls"] == week["series"]["calls"]


def test_the_pruning_job_settles_the_hours(app: App, clock: ManualClock) -> None:
    app.rollout.create(NAME, features=["stt"], actor="seed")
    now = _seed(app, clock, hours=3)
    sink = StoreSink(app.store, time_fn=lambda: clock.now().timestamp())
    sink.write([(RollupKey(now, NAME, "stt", "legacy"), _rollup(random.Random(1), 3))], [])
    with app.store.read() as tx:
        mark = rollup_hours.settled(tx.conn)
        hours = tx.conn.execute(sa.select(t.rollup_hours.c.hour).distinct()).scalars().all()
    assert mark is not None and mark.before_minute == (now - rollup_hours.LAG_MINUTES) // 60 * 60
    assert hours and max(hours) < mark.before_minute


def _day_and_six_hours(cache: ChartCache) -> tuple[dict[str, Any], dict[str, Any]]:
    return cache.charts(NAME, "24h"), cache.charts(NAME, "6h")


def test_the_day_chart_reads_five_minute_rows_and_draws_the_same(
    app: App, clock: ManualClock
) -> None:
    app.rollout.create(NAME, features=["stt"], actor="seed")
    now = _seed(app, clock, hours=30)
    day_minutes, six_minutes = _day_and_six_hours(ChartCache(app.store, clock))

    merged = rollup_hours.settle_all(app.store, now)
    with app.store.read() as tx:
        fives = tx.conn.execute(sa.select(sa.func.count()).select_from(t.rollup_fives)).scalar()
        mark = rollup_hours.settled(tx.conn, level=rollup_hours.FIVES)
    assert merged["fives"] == merged["hours"] and fives
    assert mark is not None and mark.before_minute == (now - rollup_hours.LAG_MINUTES) // 60 * 60

    cache = ChartCache(app.store, clock)
    day, six = _day_and_six_hours(cache)
    info = cache.info()["migrations"][NAME]
    assert info["fives_from_minute"] is not None and info["hours_from_minute"] is not None
    _same(day_minutes, day)
    # the 6h chart after it reads the minutes the day chart did not, into the minute tier
    _same(six_minutes, six)
    _same(six_minutes, ChartCache(app.store, clock).charts(NAME, "6h"))
    _same(day_minutes, cache.charts(NAME, "24h"))  # those minutes skipped the stored tiers


def test_a_cache_that_drew_before_the_settle_reads_the_hours_after_it(
    app: App, clock: ManualClock
) -> None:
    """A server whose page drew the 1h chart, then the pruning job settled: its first 7d
    chart reads hours (not a week of minutes), and counts every row once."""
    app.rollout.create(NAME, features=["stt"], actor="seed")
    now = _seed(app, clock, hours=30)
    cache = ChartCache(app.store, clock)
    hour = cache.charts(NAME, "1h")
    rollup_hours.settle_all(app.store, now)
    newer = Rollup()
    newer.add(250.0, True, None, False, None)
    with app.store.transaction() as tx:
        tx.insert_rollups([(RollupKey(now, NAME, "stt", "legacy"), newer)])

    week = cache.charts(NAME, "7d")
    assert cache.info()["migrations"][NAME]["hours_from_minute"] is not None
    _same(week, ChartCache(app.store, clock).charts(NAME, "7d"))
    again = cache.charts(NAME, "1h")
    assert sum(again["series"]["calls"]["legacy"]) == sum(hour["series"]["calls"]["legacy"]) + 1


def test_charts_by_operation_read_the_stored_rows_when_asked(app: App, clock: ManualClock) -> None:
    """A chart of all operations reads the stored "every operation" rows; one operation's
    chart then reads that operation's rows, each counted once, late rows included."""
    app.rollout.create(NAME, features=["stt"], actor="seed")
    now = _seed(app, clock, hours=30)
    minutes = ChartCache(app.store, clock)
    by_minutes = {
        (op, w): minutes.charts(NAME, w, op) for op in (None, "llm") for w in ("7d", "24h")
    }
    rollup_hours.settle_all(app.store, now)
    late = Rollup()
    late.add(900.0, False, "Timeout", True, None, first_chunk_ms=120.0)
    with app.store.transaction() as tx:
        tx.insert_rollups([(RollupKey(now - 20 * 60, NAME, "llm", "candidate"), late)])

    cache = ChartCache(app.store, clock)
    for w in ("7d", "24h"):
        everything = cache.charts(NAME, w)
        assert everything["operations"] == ["llm", "stt"]
        one = cache.charts(NAME, w, "llm")
        for got, before in ((everything, by_minutes[(None, w)]), (one, by_minutes[("llm", w)])):
            assert sum(got["series"]["calls"]["candidate"]) == (
                sum(before["series"]["calls"]["candidate"]) + 1
            )
            assert (
                got["totals"]["candidate"]["errors"] == before["totals"]["candidate"]["errors"] + 1
            )
            assert got["series"]["calls"]["legacy"] == before["series"]["calls"]["legacy"]
    # and a fresh cache asked for one operation first agrees
    _same(one, ChartCache(app.store, clock).charts(NAME, "24h", "llm"))

    # a row the feed brings for a stored hour: once in every chart of a fresh cache's
    # stored buckets, whichever is asked first
    cache = ChartCache(app.store, clock)
    week = cache.charts(NAME, "7d")
    with app.store.transaction() as tx:
        tx.insert_rollups([(RollupKey(now - 25 * 60, NAME, "stt", "legacy"), late)])
    again = cache.charts(NAME, "7d")
    assert again["totals"]["legacy"]["errors"] == week["totals"]["legacy"]["errors"] + 1
    assert sum(again["series"]["calls"]["legacy"]) == sum(week["series"]["calls"]["legacy"]) + 1
    _same(cache.charts(NAME, "7d", "stt"), ChartCache(app.store, clock).charts(NAME, "7d", "stt"))
    _same(again, ChartCache(app.store, clock).charts(NAME, "7d"))

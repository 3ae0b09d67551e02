"""The dashboard's chart cache on real stores (SQLite and PostgreSQL).

Every expected number is computed another way from the same rows: per bucket with
``MetricsService.window`` (which re-reads the store), or by a fresh cache that loads
everything at once, which the incremental cache must agree with exactly.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from switchover.bootstrap import App
from switchover.core.chart import WINDOWS
from switchover.core.clock import ManualClock
from switchover.core.rollup import Rollup, RollupKey, minute_of
from switchover.errors import NotFoundError, ValidationError
from switchover.metrics.charts import ChartCache
from switchover.store import tables as t
from switchover.store.engine import create_store_engine

NAME = "voice_v2"
OPS = ("stt", "llm")
SIDES = ("legacy", "candidate")
NOW = datetime(2026, 1, 9, 12, 34, 30, tzinfo=UTC)
DENSE_MINUTES = 6 * 60 + 15
"""Every minute of the last 6 hours has rows (but for the holes below)."""
SPARSE_EVERY = 53
"""Before that, one minute in 53, back to 7 days."""
HOLE = range(100, 110)
"""Minutes before now with no row at all: empty buckets."""


def _template(seed: int, op: str, side: str) -> Rollup:
    rng = random.Random(seed)
    r = Rollup()
    for _ in range(rng.randint(3, 15)):
        ok = rng.random() > 0.08
        outcome = {"booked": 1.0} if op == "llm" and rng.random() < 0.3 else None
        if op == "stt" and rng.random() < 0.1:
            outcome = {"empty_transcript": 1.0}
        latency = rng.lognormvariate(math.log(250 if side == "legacy" else 300), 0.6)
        fallback = side == "candidate" and rng.random() < 0.05
        r.add(latency, ok, None if ok else "Timeout", fallback, outcome, tenant=f"t{seed % 3}")
    return r


TEMPLATES = {
    (op, side): [_template(100 * i + 10 * o + s, op, side) for i in range(8)]
    for o, op in enumerate(OPS)
    for s, side in enumerate(SIDES)
}


def _rows(now_minute: int) -> list[tuple[RollupKey, Rollup]]:
    items = []
    first = now_minute - 7 * 1440 + 1
    for minute in range(first, now_minute + 1):
        age = now_minute - minute
        if age in HOLE:
            continue
        if age >= DENSE_MINUTES and minute % SPARSE_EVERY:
            continue
        for op in OPS:
            for side in SIDES:
                if side == "candidate" and minute % 17 == 0:
                    continue  # legacy-only minutes: the candidate's rates are gaps there
                items.append((RollupKey(minute, NAME, op, side), TEMPLATES[(op, side)][minute % 8]))
    return items


def _insert(app: App, items: list[tuple[RollupKey, Rollup]]) -> None:
    with app.store.transaction() as tx:
        tx.insert_rollups(items)


@pytest.fixture
def seeded(app: App, clock: ManualClock) -> Iterator[App]:
    clock.advance((NOW - clock.now()).total_seconds())
    app.rollout.create(NAME, features=["stt"], actor="alice", reason="charts")
    _insert(app, _rows(minute_of(NOW.timestamp())))
    yield app


def _cache(app: App, **kw: Any) -> ChartCache:
    return ChartCache(app.store, app.clock, **kw)


def _at(minute: int) -> datetime:
    return datetime.fromtimestamp(minute * 60, tz=UTC)


def _expected(app: App, start: int, end: int, op: str | None) -> dict[str, Any]:
    """Per side, what MetricsService says about the minutes [start, end)."""
    report = app.metrics.window(
        NAME, since=_at(start), until=_at(end) - timedelta(seconds=1), operation=op
    )
    return report.sides


def _check_bucket(answer: dict[str, Any], i: int, app: App, op: str | None) -> None:
    step = answer["step_s"] // 60
    start = answer["t"][i] // 60
    sides = _expected(app, start, start + step, op)
    s = answer["series"]
    for side in SIDES:
        want = sides[side]
        assert s["calls"][side][i] == want.calls
        assert s["error_rate"][side][i] == want.error_rate
        assert s["fallback_rate"][side][i] == want.fallback_rate
        if want.p95_ms is None:
            assert s["p95_ms"][side][i] is None
        else:
            assert s["p95_ms"][side][i] == pytest.approx(want.p95_ms, rel=0.01)
        for name, per_side in s["outcomes"].items():
            got = per_side[side][i]
            if want.calls == 0:
                assert got is None
            else:
                assert got == pytest.approx(want.outcome_rates.get(name, 0.0), abs=1e-12)


def _check_totals(answer: dict[str, Any], app: App, op: str | None) -> None:
    sides = _expected(app, answer["since"] // 60, answer["until"] // 60, op)
    for side in SIDES:
        got, want = answer["totals"][side], sides[side]
        assert (got["calls"], got["errors"], got["fallbacks"]) == (
            want.calls,
            want.errors,
            want.fallbacks,
        )
        assert got["error_rate"] == want.error_rate
        assert got["fallback_rate"] == want.fallback_rate
        assert got["p95_ms"] == pytest.approx(want.p95_ms, rel=0.01)


def _strip(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without its p95s, which float summation order may move by an ulp."""
    out = {k: v for k, v in answer.items() if k not in ("series", "totals")}
    out["series"] = {k: v for k, v in answer["series"].items() if k != "p95_ms"}
    out["totals"] = {
        side: {k: v for k, v in tot.items() if k != "p95_ms"}
        for side, tot in answer["totals"].items()
    }
    out["p95"] = {
        side: [None if v is None else round(v, 6) for v in answer["series"]["p95_ms"][side]]
        for side in SIDES
    }
    return out


# --- the answer ----------------------------------------------------------------------


@pytest.mark.parametrize("op", [None, "llm"])
def test_points_and_totals_are_what_the_metrics_service_computes(
    seeded: App, op: str | None
) -> None:
    cache = _cache(seeded)
    now_minute = minute_of(NOW.timestamp())
    for name, w in WINDOWS.items():
        answer = cache.charts(NAME, name, op)
        assert answer["migration"] == NAME and answer["operation"] == op
        assert answer["window"] == name and answer["step_s"] == w.step_minutes * 60
        assert len(answer["t"]) == w.points
        assert answer["t"][-1] <= NOW.timestamp() < answer["t"][-1] + answer["step_s"]
        assert answer["since"] == answer["t"][0]
        assert answer["until"] == answer["t"][-1] + answer["step_s"]
        assert answer["operations"] == sorted(OPS)
        for series in (*answer["series"].values(), *answer["series"]["outcomes"].values()):
            if "legacy" in series:
                assert [len(series[s]) for s in SIDES] == [w.points, w.points]
        assert set(answer["series"]["outcomes"]) == (
            {"booked"} if op == "llm" else {"booked", "empty_transcript"}
        )
        # the first, the last, the hole, a legacy-only minute, and a few more
        picks = {0, 1, w.points - 1, w.points // 2}
        for i, b in enumerate(answer["t"]):
            age = now_minute - b // 60
            if age in HOLE or (b // 60) % 17 == 0:
                picks.add(i)
        for i in sorted(picks)[:8]:
            _check_bucket(answer, i, seeded, op)
        _check_totals(answer, seeded, op)


def test_empty_buckets_have_zero_calls_and_no_rates(seeded: App) -> None:
    answer = _cache(seeded).charts(NAME, "6h")
    now_minute = minute_of(NOW.timestamp())
    s = answer["series"]
    index = {b // 60: i for i, b in enumerate(answer["t"])}
    for age in HOLE:
        i = index[now_minute - age]
        for side in SIDES:
            assert s["calls"][side][i] == 0
            assert s["error_rate"][side][i] is None
            assert s["fallback_rate"][side][i] is None
            assert s["p95_ms"][side][i] is None
            assert all(per_side[side][i] is None for per_side in s["outcomes"].values())
    legacy_only = [i for m, i in index.items() if m % 17 == 0 and now_minute - m not in HOLE]
    assert legacy_only
    for i in legacy_only:
        assert s["calls"]["legacy"][i] > 0 and s["error_rate"]["legacy"][i] is not None
        assert s["calls"]["candidate"][i] == 0 and s["error_rate"]["candidate"][i] is None


def test_the_hour_and_five_minute_tiers_agree_with_the_minute_data(seeded: App) -> None:
    cache = _cache(seeded)
    minutes = cache.charts(NAME, "6h")
    fives = cache.charts(NAME, "24h")
    hours = cache.charts(NAME, "7d")
    by_minute = dict(zip(minutes["t"], range(len(minutes["t"])), strict=True))
    for coarse, step in ((fives, 300), (hours, 3600)):
        checked = 0
        for i, b in enumerate(coarse["t"]):
            inside = [by_minute.get(b + k) for k in range(0, step, 60)]
            if None in inside:
                continue  # not all of it is in the 6h window
            for side in SIDES:
                calls = sum(minutes["series"]["calls"][side][j] for j in inside)  # type: ignore[index]
                assert coarse["series"]["calls"][side][i] == calls
            checked += 1
        assert checked >= (4 if step == 3600 else 60)
    # and the coarse points' p95 is the one of all their minutes' calls
    for i in (-1, -2, -5):
        _check_bucket(hours, len(hours["t"]) + i, seeded, None)
        _check_bucket(fives, len(fives["t"]) + i, seeded, None)


def test_bad_window_and_unknown_migration(seeded: App) -> None:
    cache = _cache(seeded)
    for bad in ("2h", "", "7D"):
        with pytest.raises(ValidationError) as exc:
            cache.charts(NAME, bad)
        assert exc.value.field == "window"
        assert "15m, 1h, 6h, 24h, 7d" in exc.value.message
    with pytest.raises(NotFoundError):
        cache.charts("nope", "1h")
    empty = cache.charts(NAME, "1h", "no-such-operation")
    assert all(c == 0 for side in SIDES for c in empty["series"]["calls"][side])
    assert empty["totals"]["legacy"]["error_rate"] is None


# --- following the table -------------------------------------------------------------


def _extra(calls: int, outcome: str | None = None) -> Rollup:
    r = Rollup()
    for i in range(calls):
        r.add(5000.0 + i, i % 2 == 0, "Boom", False, {outcome: 1.0} if outcome else None)
    return r


def test_new_rows_appear_on_the_next_call(seeded: App, clock: ManualClock) -> None:
    cache = _cache(seeded)
    before = cache.charts(NAME, "1h")
    assert cache.charts(NAME, "1h") is before  # nothing new: the same answer
    now_minute = minute_of(NOW.timestamp())
    _insert(seeded, [(RollupKey(now_minute, NAME, "tts", "candidate"), _extra(40, "hangup"))])
    after = cache.charts(NAME, "1h")
    assert after["series"]["calls"]["candidate"][-1] == (
        before["series"]["calls"]["candidate"][-1] + 40
    )
    assert after["series"]["calls"]["legacy"] == before["series"]["calls"]["legacy"]
    assert after["series"]["calls"]["candidate"][:-1] == before["series"]["calls"]["candidate"][:-1]
    assert after["operations"] == ["llm", "stt", "tts"]
    assert "hangup" in after["series"]["outcomes"]
    assert after["totals"]["candidate"]["calls"] == before["totals"]["candidate"]["calls"] + 40
    _check_bucket(after, len(after["t"]) - 1, seeded, None)
    assert cache.charts(NAME, "1h", "tts")["series"]["calls"]["candidate"][-1] == 40

    # the clock moves on: a new bucket opens, the window slides, old minutes go
    clock.advance(60)
    slid = cache.charts(NAME, "1h")
    assert slid["t"] == [*after["t"][1:], after["t"][-1] + 60]
    assert slid["series"]["calls"]["candidate"][-2] == after["series"]["calls"]["candidate"][-1]
    assert slid["series"]["calls"]["candidate"][-1] == 0
    assert _strip(slid) == _strip(_cache(seeded).charts(NAME, "1h"))


def test_a_late_row_for_an_old_minute_changes_that_bucket(seeded: App) -> None:
    cache = _cache(seeded)
    now_minute = minute_of(NOW.timestamp())
    windows = ("6h", "24h", "7d")
    before = {w: cache.charts(NAME, w) for w in windows}
    late = now_minute - 185  # three hours ago: in all three windows
    old = now_minute - 5 * 1440 - 7  # five days ago: 7d only, and never loaded at minutes
    _insert(
        seeded,
        [
            (RollupKey(late, NAME, "llm", "legacy"), _extra(30)),
            (RollupKey(old, NAME, "stt", "candidate"), _extra(20)),
        ],
    )
    for w in windows:
        after = cache.charts(NAME, w)
        step = after["step_s"]
        changed = {
            (side, i)
            for side in SIDES
            for i, (a, b) in enumerate(
                zip(before[w]["series"]["calls"][side], after["series"]["calls"][side], strict=True)
            )
            if a != b
        }
        want = {("legacy", after["t"].index(late * 60 - late * 60 % step))}
        if w == "7d":
            want.add(("candidate", after["t"].index(old * 60 - old * 60 % step)))
        assert changed == want
        for _side, i in changed:
            _check_bucket(after, i, seeded, None)
        _check_totals(after, seeded, None)
        assert _strip(after) == _strip(_cache(seeded).charts(NAME, w))


def test_a_row_written_after_the_first_call_for_minutes_not_loaded_yet_counts_once(
    seeded: App,
) -> None:
    cache = _cache(seeded)
    cache.charts(NAME, "15m")  # loads 15 minutes; the id boundary is taken now
    now_minute = minute_of(NOW.timestamp())
    old = now_minute - 3 * 1440 - 11
    _insert(seeded, [(RollupKey(old, NAME, "llm", "candidate"), _extra(25))])
    cache.charts(NAME, "1h")  # the feed merges the row into the hour tier
    answer = cache.charts(NAME, "7d")  # then the load reads that hour's older rows
    i = answer["t"].index(old * 60 - old * 60 % 3600)
    _check_bucket(answer, i, seeded, None)
    assert _strip(answer) == _strip(_cache(seeded).charts(NAME, "7d"))


def test_rows_beyond_the_retention_are_left_out(seeded: App, clock: ManualClock) -> None:
    cache = _cache(seeded, retention=timedelta(days=2))
    answer = cache.charts(NAME, "7d")
    cutoff = minute_of(NOW.timestamp()) - 2 * 1440
    for i, b in enumerate(answer["t"]):
        if b // 60 + 60 <= cutoff:
            assert answer["series"]["calls"]["legacy"][i] == 0
    assert sum(answer["series"]["calls"]["legacy"]) > 0
    clock.advance(3 * 86400)  # everything is now beyond the retention
    later = cache.charts(NAME, "7d")
    assert sum(later["series"]["calls"]["legacy"]) == 0
    info = cache.info()["migrations"][NAME]
    assert info["buckets"] == {"1m": 0, "5m": 0, "60m": 0}


def test_concurrent_callers_and_writers_agree_with_a_fresh_cache(seeded: App) -> None:
    cache = _cache(seeded)
    now_minute = minute_of(NOW.timestamp())
    errors: list[BaseException] = []
    start = threading.Barrier(5)

    def reader(window: str, op: str | None) -> None:
        try:
            start.wait()
            for _ in range(3):
                cache.charts(NAME, window, op)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def writer() -> None:
        try:
            start.wait()
            for k in range(6):
                minute = now_minute - k * 97
                _insert(seeded, [(RollupKey(minute, NAME, "stt", "legacy"), _extra(3))])
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [
        threading.Thread(target=reader, args=args)
        for args in (("7d", None), ("7d", "llm"), ("6h", None), ("1h", "stt"))
    ]
    threads.append(threading.Thread(target=writer))
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors
    for window in ("6h", "7d"):
        for op in (None, "stt"):
            assert _strip(cache.charts(NAME, window, op)) == _strip(
                _cache(seeded).charts(NAME, window, op)
            )


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_rows_committed_out_of_id_order_are_not_lost(seeded: App) -> None:
    """PostgreSQL hands ids out at insert time: a transaction holding lower ids can commit
    after the feed has read higher ones. The cache looks for the skipped ids again.
    (SQLite serialises writers, so there ids become visible in order.)"""
    assert seeded.store.is_postgres
    cache = _cache(seeded)
    now_minute = minute_of(NOW.timestamp())
    before = cache.charts(NAME, "1h")
    slow = create_store_engine(seeded.settings.database_url)
    try:
        with slow.begin() as conn:
            r = _extra(11)
            conn.execute(
                t.rollups.insert(),
                [
                    {
                        "minute": now_minute,
                        "migration": NAME,
                        "operation": "llm",
                        "side": "candidate",
                        "count": r.count,
                        "errors": r.errors,
                        "fallbacks": r.fallbacks,
                        "data": r.to_dict(),
                    }
                ],
            )  # lower id, not committed yet
            _insert(seeded, [(RollupKey(now_minute, NAME, "llm", "candidate"), _extra(7))])
            mid = cache.charts(NAME, "1h")
            assert mid["series"]["calls"]["candidate"][-1] == (
                before["series"]["calls"]["candidate"][-1] + 7
            )
            assert cache.info()["gaps"] == 1
        after = cache.charts(NAME, "1h")
        assert after["series"]["calls"]["candidate"][-1] == (
            before["series"]["calls"]["candidate"][-1] + 18
        )
        assert cache.info()["gaps"] == 0
        with seeded.store.read() as tx:
            assert tx.conn.execute(sa.select(sa.func.count()).select_from(t.rollups)).scalar()
    finally:
        slow.dispose()

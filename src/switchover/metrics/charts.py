"""Chart data for a migration's dashboard page, from an incremental in-memory cache.

Re-reading and re-decoding 7 days of per-minute rollups on each refresh takes seconds;
the page refreshes every few seconds. So, as the controller's EvidenceCache does, the
cache reads each migration's rows once and then follows the rollups table by id
(``rollups_after``): a call reads only the rows appended since the previous one.

Rows are merged into three tiers of buckets per (operation, side): minutes (kept 7 h,
for the 15m, 1h and 6h windows), five minutes (kept 25 h, for 24h) and hours (kept
for the retention, for 7d). A chart point is exactly one tier bucket, and its numbers
(rates, p95) are memoised per bucket until a row for one of its minutes arrives, late
or not; "all operations" buckets are merged from the per-operation ones when first
read, and memoised the same way. Window totals merge the fewest aligned buckets
covering the window (hours inside it, finer buckets at its edges) but for the last
bucket, once, and then only add the last bucket to that: rows for the current minute
do not make a refresh merge a week of sketches again. A whole answer is kept until
the migration's data or the window's last bucket changes.

Loading is lazy and backwards: a call loads only the minutes its window needs that are
not loaded yet, newest page first, so the first 1h chart reads an hour of rows. The 7d
and 24h windows read the store's down-sampled rows (:mod:`switchover.store.rollup_hours`:
hours, five minutes) as far as they are settled, and minutes only after them; a chart
of all operations parses only the stored "every operation" rows, and one operation's
rows are merged when its chart or a late row needs them (what that costs:
``bench/dashboard.py``). Rows with
an id up to the one the table had when the migration was first asked for come from
these loads; later rows come from the feed, whatever their minute, so nothing is
counted twice. The feed is the store's :class:`~switchover.store.follower.RollupFollower`,
the controller's too: on PostgreSQL ids can become visible out of order (a transaction
that took lower ids commits after one that took higher ids), and the ids it skipped are
looked for again until those rows arrive.

One cache per server process, shared by the threads serving requests: one lock guards
the memory, another serialises the feed, and each migration has one lock for loads.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from itertools import islice
from typing import Any

from switchover.core.chart import (
    EMPTY,
    TIER_STEPS,
    ChartPoint,
    ChartWindow,
    absorb,
    absorb_parts,
    bucket_start,
    chart_point,
    chart_window,
    cover,
    merged,
    series,
    totals,
)
from switchover.core.clock import Clock
from switchover.core.rollup import Rollup, RollupKey, minute_of
from switchover.core.window import SIDES
from switchover.store import rollup_hours
from switchover.store.follower import RollupFollower
from switchover.store.records import RollupParts
from switchover.store.repository import Store

MINUTE_HORIZON = 7 * 60
"""Minutes the one-minute tier keeps: the 6h window and a margin."""
FIVE_MINUTE_HORIZON = 25 * 60
"""Minutes the five-minute tier keeps: the 24h window and a margin."""
LOAD_PAGE_MINUTES = 360
"""Minutes read per query when loading, newest first: while a long window loads, the
minutes already in serve the shorter windows."""
APPLY_CHUNK = 20
"""Rows decoded, then merged under the lock, at a time while loading: concurrent calls
get a turn, and few decoded rows are alive at once (thousands would live long enough
for the garbage collector to promote and scan them again and again: a page of 3,000
decoded rows at once made the load twice as slow)."""
_END = 2**62
"""A minute after every row: the first load reads rows stamped in the future too."""

_Key = tuple[str, str]  # (operation, side)


class _Tier:
    """Buckets of ``step`` minutes; those starting before ``evicted`` are gone."""

    __slots__ = (
        "all",
        "evicted",
        "horizon",
        "pending",
        "pending_buckets",
        "points",
        "rollups",
        "step",
    )

    def __init__(self, step: int, horizon: int, now_minute: int) -> None:
        self.step = step
        self.horizon = horizon
        self.rollups: dict[_Key, dict[int, Rollup]] = {}
        self.all: dict[str, dict[int, Rollup]] = {side: {} for side in SIDES}
        """side -> bucket -> every operation merged (derived, memoised)"""
        self.points: dict[tuple[str | None, str], dict[int, ChartPoint]] = {}
        self.pending: list[rollup_hours.RawParts] = []
        """Stored per-operation rows not parsed yet (a chart of all operations reads the
        stored "every operation" rows): merged into ``rollups`` by ``_materialize`` when
        one of ``pending_buckets`` is read by operation, or changes."""
        self.pending_buckets: set[int] = set()
        self.evicted = self.cutoff(now_minute)

    def cutoff(self, now_minute: int) -> int:
        return bucket_start(now_minute - self.horizon, self.step)

    def evict(self, now_minute: int) -> bool:
        cut = self.cutoff(now_minute)
        if cut <= self.evicted:
            return False
        gone = range(self.evicted, cut, self.step)
        self.evicted = cut
        maps: list[dict[int, Any]] = [
            *self.rollups.values(),
            *self.all.values(),
            *self.points.values(),
        ]
        for buckets in maps:
            if len(gone) <= len(buckets):
                for b in gone:
                    buckets.pop(b, None)
            else:
                for b in [b for b in buckets if b < cut]:
                    del buckets[b]
        return True


class _Migration:
    __slots__ = (
        "answers",
        "closed",
        "last_used",
        "load_lock",
        "loaded_from",
        "max_id",
        "name",
        "operations",
        "stored",
        "tiers",
        "version",
    )

    def __init__(
        self, name: str, max_id: int, now_minute: int, retention: int, used: float
    ) -> None:
        self.name = name
        self.max_id = max_id
        """Rows with ids up to this one are read by loads; later ones arrive by the feed."""
        self.loaded_from = _END
        """Every row of this migration with a minute from here on (and id <= max_id) is in."""
        self.stored: dict[int, tuple[int, int]] = {
            level.step: (_END, _END) for level in rollup_hours.LEVELS
        }
        """step -> [from, below): that tier's buckets there came from the store's
        down-sampled rows (:mod:`switchover.store.rollup_hours`); minute rows there
        skip that tier."""
        self.tiers = {
            1: _Tier(1, min(MINUTE_HORIZON, retention), now_minute),
            5: _Tier(5, min(FIVE_MINUTE_HORIZON, retention), now_minute),
            60: _Tier(60, retention, now_minute),
        }
        assert tuple(self.tiers) == TIER_STEPS
        self.operations: set[str] = set()
        self.version = 0
        self.answers: dict[tuple[str | None, str], tuple[int, int, dict[str, Any]]] = {}
        self.closed: dict[tuple[str | None, str], tuple[int, int, dict[str, Rollup]]] = {}
        """(operation, window) -> (since, end, side -> merged): a window's totals but for
        its last bucket, kept until the window slides or a row for those minutes arrives"""
        self.load_lock = threading.Lock()
        self.last_used = used


class ChartCache:
    """Chart series for the dashboard, legacy and candidate on the same buckets.

    ``charts()`` answers are shared between callers: treat them as read-only.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        retention: timedelta = timedelta(days=7),
        idle: timedelta = timedelta(hours=1),
    ) -> None:
        self.store = store
        self.clock = clock
        self.retention_minutes = max(1, int(retention.total_seconds() // 60))
        self.idle_seconds = idle.total_seconds()
        self._lock = threading.Lock()
        self._feed_lock = threading.Lock()
        self._migrations: dict[str, _Migration] = {}
        self._follower = RollupFollower(store, monotonic=clock.monotonic)
        """Guarded by ``_feed_lock``."""

    # the API ------------------------------------------------------------------------

    def charts(
        self, migration: str, window: str = "1h", operation: str | None = None
    ) -> dict[str, Any]:
        """The chart data of one window (see ``switchover.core.chart`` for the buckets).

        Raises ValidationError (field ``window``) for an unknown window and NotFoundError
        for an unknown migration.
        """
        w = chart_window(window)
        now_minute = minute_of(self.clock.now().timestamp())
        with self.store.read() as tx:
            tx.get_migration(migration)
        m = self._tracked(migration, now_minute)
        self._follow()
        since = max(w.starts(now_minute)[0], now_minute - self.retention_minutes)
        levels = _LEVELS_FOR.get(w.step_minutes, ())
        if levels:
            m = self._caught_up(m, levels, since, now_minute)
            since = min(self._load_level(m, level, since) for level in levels)
        self._load(m, since, now_minute)
        with self._lock:
            self._evict(m, now_minute)
            return self._answer(m, w, operation, now_minute)

    def preload(self, migration: str) -> None:
        """Load the whole retention now (a server may call this in a background thread
        at start-up, so that the first 7d chart does not wait for it)."""
        self.charts(migration, "7d")

    def info(self) -> dict[str, Any]:
        """What the cache holds: for benchmarks and debugging."""
        with self._lock:
            return {
                "last_id": self._follower.last_id,
                "gaps": self._follower.gaps,
                "migrations": {
                    name: {
                        "loaded_from_minute": None if m.loaded_from == _END else m.loaded_from,
                        "hours_from_minute": _minute(m.stored[60][0]),
                        "fives_from_minute": _minute(m.stored[5][0]),
                        "operations": sorted(m.operations),
                        "buckets": {
                            f"{step}m": sum(len(b) for b in t.rollups.values())
                            for step, t in m.tiers.items()
                        },
                    }
                    for name, m in self._migrations.items()
                },
            }

    # following the table ------------------------------------------------------------

    def _tracked(self, name: str, now_minute: int) -> _Migration:
        used = self.clock.monotonic()
        with self._lock:
            m = self._migrations.get(name)
            if m is not None:
                m.last_used = used
                return m
        with self._feed_lock:  # no feed runs while the id boundary is taken
            with self._lock:
                m = self._migrations.get(name)
                if m is not None:
                    return m
            last_id = self._follower.start()
            with self._lock:
                m = _Migration(name, last_id, now_minute, self.retention_minutes, used)
                self._migrations[name] = m
                return m

    def _follow(self) -> None:
        """Merge the rows appended since the last call (and skipped ids now visible)."""
        with self._feed_lock:
            with self._lock:
                self._drop_idle(self.clock.monotonic())
                if not self._migrations:
                    return
            rows = self._follower.poll()
            with self._lock:
                for row_id, row in rows:
                    self._apply(row_id, row.key, row.rollup)

    def _apply(self, row_id: int, key: RollupKey, rollup: Rollup) -> None:
        m = self._migrations.get(key.migration)
        if m is not None and row_id > m.max_id:
            self._add(m, key, rollup)

    def _drop_idle(self, now: float) -> None:
        for name in [
            n for n, m in self._migrations.items() if now - m.last_used > self.idle_seconds
        ]:
            del self._migrations[name]
        if not self._migrations:
            # nobody to follow for: stop reading the table
            self._follower = RollupFollower(self.store, monotonic=self.clock.monotonic)

    # loading and merging ------------------------------------------------------------

    def _load(self, m: _Migration, since: int, now_minute: int) -> None:
        """Read the rows with minutes in [since, loaded_from) and ids up to max_id."""
        with self._lock:
            if m.loaded_from <= since:
                return
        with m.load_lock:
            while True:
                with self._lock:
                    end = m.loaded_from
                if end <= since:
                    return
                start = max(since, min(end, now_minute + 1) - LOAD_PAGE_MINUTES)
                with self.store.read() as tx:
                    rows = tx.rollup_parts(m.name, start, end, max_id=m.max_id)
                    while chunk := list(islice(rows, APPLY_CHUNK)):
                        with self._lock:
                            for key, count, errors, fallbacks, outcomes, sketch, first in chunk:
                                skip = _skipped(m.stored, key.minute)
                                for into in self._targets(m, key, skip=skip):
                                    absorb_parts(
                                        into, count, errors, fallbacks, outcomes, sketch, first
                                    )
                with self._lock:
                    m.loaded_from = start

    def _caught_up(
        self, m: _Migration, levels: tuple[rollup_hours.Level, ...], since: int, now_minute: int
    ) -> _Migration:
        """``m``, or a fresh state for it when the store's down-sampled rows it still has
        to read hold rows the feed brings (settled after ``m`` was first asked for):
        reading them would count those rows twice, and reading minutes instead costs
        seconds. The fresh state reads the levels and then the minutes since them."""
        if all(m.stored[level.step][0] <= since for level in levels):
            return m
        with self.store.read() as tx:
            marks = [rollup_hours.settled(tx.conn, level=level) for level in levels]
        through = max((mark.through_id for mark in marks if mark is not None), default=0)
        if through <= m.max_id:
            return m
        with self._feed_lock:
            if (self._follower.last_id or 0) < through:
                return m  # the feed has not reached the settle yet: read minutes
            with self._lock:
                if self._migrations.get(m.name) is not m:
                    return self._migrations.get(m.name) or m
                fresh = _Migration(
                    m.name,
                    self._follower.last_id or 0,
                    now_minute,
                    self.retention_minutes,
                    self.clock.monotonic(),
                )
                self._migrations[m.name] = fresh
                return fresh

    def _load_level(self, m: _Migration, level: rollup_hours.Level, since: int) -> int:
        """Fill the tier of ``level``'s step for ``[since, ...)`` from the store's
        down-sampled rows, as far as they reach; returns the minute from which minute
        rows must still be read for that tier.

        Only when those rows hold no row the feed brings (their ``through_id`` is at most
        the migration's ``max_id``); otherwise minute rows are read."""
        step = level.step
        with m.load_lock:
            with self._lock:
                stored_from, stored_below = m.stored[step]
                if stored_from <= since:
                    return max(since, stored_below)
                loaded_from = m.loaded_from
            with self.store.read() as tx:
                mark = rollup_hours.settled(tx.conn, level=level)
                if mark is None or mark.through_id > m.max_id:
                    return since
                first = since - since % step
                upper = min(mark.before_minute, loaded_from, stored_from)
                upper -= upper % step
                if upper <= first:
                    return since
                rows = list(rollup_hours.level_rows(tx.conn, level, m.name, first, upper))
                late_rows = list(
                    rollup_hours.late_parts(
                        tx.conn, m.name, first, upper, mark.through_id, m.max_id
                    )
                )
            with self._lock:
                tier = m.tiers[step]
                late: dict[tuple[str, int], list[RollupParts]] = {}
                for part in late_rows:
                    key = part.key
                    for into in self._targets(m, key, only=tier):
                        absorb_parts(into, *part[1:])
                    late.setdefault((key.side, key.minute - key.minute % step), []).append(part)
                for raw in rows:
                    key = raw.key
                    if key.minute < tier.evicted:
                        continue
                    if key.operation != rollup_hours.ALL_OPERATIONS:
                        m.operations.add(key.operation)
                        tier.pending.append(raw)
                        tier.pending_buckets.add(key.minute)
                        continue
                    # every operation of a bucket as stored (and the late rows not in it
                    # yet): no merge of its operations' sketches
                    derived = tier.all.setdefault(key.side, {})
                    derived[key.minute] = into = Rollup()
                    absorb_parts(into, *rollup_hours.parsed(raw)[1:])
                    for part in late.get((key.side, key.minute), ()):
                        absorb_parts(into, *part[1:])
                    tier.points.get((None, key.side), {}).pop(key.minute, None)
                m.version += 1
                for k in [k for k, (lo, hi, _) in m.closed.items() if lo < upper and first < hi]:
                    del m.closed[k]
                # contiguous with what was stored before, or (the minutes below that were
                # read already) the rows read now are all that minute rows must skip
                m.stored[step] = (first, stored_below if upper == stored_from else upper)
            return max(since, upper)

    def _add(self, m: _Migration, key: RollupKey, rollup: Rollup) -> None:
        for into in self._targets(m, key):
            absorb(into, rollup)

    def _targets(
        self,
        m: _Migration,
        key: RollupKey,
        *,
        skip: tuple[int, ...] = (),
        only: _Tier | None = None,
    ) -> list[Rollup]:
        """The buckets a row for ``key`` merges into (one per tier that still keeps its
        minute; not the tiers whose step is in ``skip``; ``only`` one tier), with every
        memo those buckets feed dropped."""
        op, side, minute = key.operation, key.side, key.minute
        out = []
        m.operations.add(op)
        m.version += 1
        if m.closed:
            for k in [k for k, (lo, hi, _) in m.closed.items() if lo <= minute < hi]:
                del m.closed[k]
        for tier in m.tiers.values():
            if (only is not None and tier is not only) or tier.step in skip:
                continue
            b = minute - minute % tier.step
            if b < tier.evicted:
                continue
            buckets = tier.rollups.get((op, side))
            if buckets is None:
                buckets = tier.rollups[(op, side)] = {}
            into = buckets.get(b)
            if into is None:
                into = buckets[b] = Rollup()
            out.append(into)
            derived = tier.all.get(side)
            if derived is not None:
                derived.pop(b, None)
            for memo_key in ((op, side), (None, side)):
                points = tier.points.get(memo_key)
                if points is not None:
                    points.pop(b, None)
        return out

    def _materialize(self, m: _Migration, tier: _Tier) -> None:
        """Merge the tier's pending per-operation rows into its buckets. The "every
        operation" buckets already hold them (they came from the stored rows)."""
        pending, tier.pending, tier.pending_buckets = tier.pending, [], set()
        for raw in pending:
            key = raw.key
            b = key.minute
            if b < tier.evicted:
                continue
            buckets = tier.rollups.setdefault((key.operation, key.side), {})
            into = buckets.get(b)
            if into is None:
                into = buckets[b] = Rollup()
            absorb_parts(into, *rollup_hours.parsed(raw)[1:])
            memo = tier.points.get((key.operation, key.side))
            if memo is not None:
                memo.pop(b, None)
        m.version += 1
        for k in [k for k in m.closed if k[0] is not None]:
            del m.closed[k]

    def _evict(self, m: _Migration, now_minute: int) -> None:
        for tier in m.tiers.values():
            if tier.evict(now_minute):
                m.version += 1

    # answering ----------------------------------------------------------------------

    def _rollup(
        self, m: _Migration, tier: _Tier, operation: str | None, side: str, b: int
    ) -> Rollup | None:
        if b in tier.pending_buckets and (operation is not None or b not in tier.all.get(side, {})):
            self._materialize(m, tier)
        if operation is not None:
            return tier.rollups.get((operation, side), {}).get(b)
        derived = tier.all.setdefault(side, {})
        r = derived.get(b)
        if r is None:
            parts = [
                buckets[b] for (_, s), buckets in tier.rollups.items() if s == side and b in buckets
            ]
            if not parts:
                return None
            r = derived[b] = merged(parts)
        return r

    def _point(
        self, m: _Migration, tier: _Tier, operation: str | None, side: str, b: int
    ) -> ChartPoint:
        memo = tier.points.get((operation, side))
        if memo is None:
            memo = tier.points[(operation, side)] = {}
        p = memo.get(b)
        if p is None:
            r = self._rollup(m, tier, operation, side, b)
            p = EMPTY if r is None else chart_point(r)
            memo[b] = p
        return p

    def _answer(
        self, m: _Migration, w: ChartWindow, operation: str | None, now_minute: int
    ) -> dict[str, Any]:
        starts = w.starts(now_minute)
        kept = m.answers.get((operation, w.name))
        if kept is not None and kept[0] == m.version and kept[1] == starts[-1]:
            return kept[2]
        tier = m.tiers[w.step_minutes]
        points = {
            side: [self._point(m, tier, operation, side, b) for b in starts] for side in SIDES
        }
        until = starts[-1] + w.step_minutes
        closed = m.closed.get((operation, w.name))
        if closed is None or closed[:2] != (starts[0], starts[-1]):
            pieces = cover(starts[0], starts[-1])
            closed = (
                starts[0],
                starts[-1],
                {
                    side: merged(
                        self._rollup(m, m.tiers[step], operation, side, b) for step, b in pieces
                    )
                    for side in SIDES
                },
            )
            m.closed[(operation, w.name)] = closed

        def window_total(side: str) -> dict[str, Any]:
            last = self._rollup(m, tier, operation, side, starts[-1])
            return totals(merged((closed[2][side], last)))

        answer: dict[str, Any] = {
            "migration": m.name,
            "operation": operation,
            "window": w.name,
            "step_s": w.step_minutes * 60,
            "since": starts[0] * 60,
            "until": until * 60,
            "t": [b * 60 for b in starts],
            "series": series(points),
            "operations": sorted(m.operations),
            "totals": {side: window_total(side) for side in SIDES},
        }
        m.answers[(operation, w.name)] = (m.version, starts[-1], answer)
        return answer


_LEVELS_FOR: dict[int, tuple[rollup_hours.Level, ...]] = {
    60: (rollup_hours.HOURS,),
    5: (rollup_hours.FIVES, rollup_hours.HOURS),
}
"""The stored levels a window of that step reads: its points' tier, and the hours its
totals merge (:func:`switchover.core.chart.cover`)."""


def _skipped(stored: dict[int, tuple[int, int]], minute: int) -> tuple[int, ...]:
    """The tiers whose buckets for ``minute`` came from stored down-sampled rows."""
    return tuple(step for step, (lo, hi) in stored.items() if lo <= minute < hi)


def _minute(value: int) -> int | None:
    return None if value == _END else value

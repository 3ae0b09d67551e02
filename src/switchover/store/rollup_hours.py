"""Rollups down-sampled to hours and to five minutes, for charts over days.

A 7-day chart of one migration spans 80,000 per-minute rows, a 24-hour chart 11,500;
decoding them took seconds. :func:`settle_all` (run by the pruning job, see
:mod:`switchover.store.rollup_sink`) merges the minutes of every complete hour older than
:data:`LAG_MINUTES` into one row per (migration, bucket, operation, side) of each
:class:`Level`: ``rollup_hours`` (kept :data:`HOUR_RETENTION_DAYS`) and ``rollup_fives``
(kept :data:`FIVE_RETENTION_DAYS`). A row holds what a chart reads (counts, outcomes,
the latency and first-chunk sketches), not tenants nor error types.

One watermark row per level says what its rows hold: every rollup with a minute before
``before_minute`` and an id up to ``through_id``. A row appended later for an old minute
(a recorder retrying a flush after an outage) has a higher id: a reader takes it from
``rollups`` itself (:func:`late_parts`), and the next settle folds it into its bucket.
Settling locks the watermark row, so two processes pruning at once never merge a minute
twice. Each level settles on its own, so a level added by an upgrade starts from its
own retention while the other goes on where it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import sqlalchemy as sa

from switchover.core.chart import absorb_parts, compact_sketch
from switchover.core.rollup import Rollup, RollupKey
from switchover.store import tables as t
from switchover.store.records import RollupParts
from switchover.store.repository import Store
from switchover.store.rollup_parts import json_or_none, read_parts

LAG_MINUTES = 10
"""An hour is settled once it ended this long ago (recorders flush every few seconds)."""
HOUR_RETENTION_DAYS = 90.0
FIVE_RETENTION_DAYS = 2.0
"""Five-minute rows serve the 24h chart (and the edges of a 7d chart's totals)."""
MAX_HOURS = 12
"""Hours settled per transaction: PostgreSQL ends a session idle in a transaction."""
ALL_OPERATIONS = "*"
"""The operation of the rows that merge every operation of a bucket (an observation's
operation name cannot hold ``*``): a chart of all operations reads them as they are."""


class Level(NamedTuple):
    """One down-sampled table: its watermark's name, bucket size and retention."""

    name: str
    step: int
    """Minutes per row."""
    table: sa.Table
    start: str
    """The column holding a row's first minute."""
    retention_days: float

    @property
    def column(self) -> sa.Column[Any]:
        return self.table.c[self.start]


HOURS = Level("hours", 60, t.rollup_hours, "hour", HOUR_RETENTION_DAYS)
FIVES = Level("fives", 5, t.rollup_fives, "minute", FIVE_RETENTION_DAYS)
LEVELS = (HOURS, FIVES)
_Key = tuple[str, int, str, str]  # migration, bucket start, operation, side


class Settled(NamedTuple):
    before_minute: int
    """Minutes before this one are in the level's rows (for rows up to ``through_id``)."""
    through_id: int


def settled(
    conn: sa.Connection, *, for_update: bool = False, level: Level = HOURS
) -> Settled | None:
    query = sa.select(t.rollup_settled).where(t.rollup_settled.c.name == level.name)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else Settled(int(row.before_minute), int(row.through_id))


def settle_all(store: Store, now_minute: int, *, lag: int = LAG_MINUTES) -> dict[str, int]:
    """Settle everything due in every level, :data:`MAX_HOURS` hours per transaction (a
    first settle of a week of minutes must not hold one transaction open for long);
    returns the number of minute rows merged, per level name."""
    out: dict[str, int] = {}
    for level in LEVELS:
        total = 0
        while True:
            with store.transaction() as tx:
                rows, done = settle(tx.conn, now_minute, lag=lag, level=level)
            total += rows
            if done:
                break
        out[level.name] = total
    return out


def settle(
    conn: sa.Connection,
    now_minute: int,
    *,
    lag: int = LAG_MINUTES,
    max_hours: int = MAX_HOURS,
    level: Level = HOURS,
) -> tuple[int, bool]:
    """Merge up to ``max_hours`` hours settled since the last call (and the rows that came
    late for earlier ones) into the rows of ``level``. Returns the number of minute rows
    merged, and whether every hour due is settled. Call inside a transaction."""
    target = (now_minute - lag) // 60 * 60
    if conn.dialect.name != "postgresql":
        # SQLite: take the write lock now, so that a concurrent settle waits here
        conn.execute(t.rollup_settled.delete().where(t.rollup_settled.c.name == "-"))
    mark = settled(conn, for_update=True, level=level)
    if mark is None:
        oldest = conn.execute(sa.select(sa.func.min(t.rollups.c.minute))).scalar()
        kept = int(now_minute - level.retention_days * 1440)
        start = target if oldest is None else max(int(oldest), kept) // 60 * 60
    else:
        start = mark.before_minute
    before = max(start, min(target, start + max_hours * 60))
    through = int(conn.execute(sa.select(sa.func.max(t.rollups.c.id))).scalar() or 0)
    if mark is not None and (before, through) == tuple(mark):
        return 0, True
    r = t.rollups.c
    fresh = sa.and_(r.minute < before, r.id <= through)
    if mark is None:
        fresh = sa.and_(fresh, r.minute >= start)
    else:
        # minutes newly settled (any id), and rows that came late for earlier minutes
        fresh = sa.and_(
            fresh,
            sa.or_(r.minute >= mark.before_minute, r.id > mark.through_id),
        )
    merged: dict[_Key, Rollup] = {}
    rows = 0
    step = level.step
    for p in read_parts(conn, fresh):
        k = p.key
        bucket = k.minute - k.minute % step
        for op in (k.operation, ALL_OPERATIONS):
            key = (k.migration, bucket, op, k.side)
            into = merged.get(key)
            if into is None:
                into = merged[key] = Rollup()
            absorb_parts(into, p.count, p.errors, p.fallbacks, p.outcomes, p.sketch, p.first_chunk)
        rows += 1
    _store(conn, merged, level)
    values = {"before_minute": before, "through_id": through}
    if mark is None:
        conn.execute(t.rollup_settled.insert().values(name=level.name, **values))
    else:
        conn.execute(
            t.rollup_settled.update().where(t.rollup_settled.c.name == level.name).values(**values)
        )
    return rows, before >= target


def _store(conn: sa.Connection, merged: dict[_Key, Rollup], level: Level) -> None:
    """Add ``merged`` to the rows already stored (one read per migration)."""
    table, start = level.table, level.column
    for migration in {k[0] for k in merged}:
        buckets = [k[1] for k in merged if k[0] == migration]
        existing = {
            (row.migration, int(row[0]), row.operation, row.side): row
            for row in conn.execute(
                sa.select(start, table)
                .where(table.c.migration == migration)
                .where(start >= min(buckets))
                .where(start <= max(buckets))
            )
        }
        inserts = []
        for key, rollup in merged.items():
            if key[0] != migration:
                continue
            row = existing.get(key)
            if row is not None:
                absorb_parts(
                    rollup,
                    int(row.count),
                    int(row.errors),
                    int(row.fallbacks),
                    row.outcomes or {},
                    row.sketch or {},
                    row.first_chunk or None,
                )
                conn.execute(
                    table.update().where(table.c.id == row.id).values(**_values(key, rollup, level))
                )
            else:
                inserts.append(_values(key, rollup, level))
        if inserts:
            conn.execute(table.insert(), inserts)


def _values(key: _Key, r: Rollup, level: Level) -> dict[str, Any]:
    migration, bucket, operation, side = key
    return {
        "migration": migration,
        level.start: bucket,
        "operation": operation,
        "side": side,
        "count": r.count,
        "errors": r.errors,
        "fallbacks": r.fallbacks,
        "outcomes": dict(sorted(r.outcomes.items())),
        "sketch": compact_sketch(r.sketch),
        "first_chunk": compact_sketch(r.first_chunk) if r.first_chunk.count else None,
    }


class RawParts(NamedTuple):
    """A stored row with its JSON members still text: parsed only when read
    (:func:`parsed`), so a chart of all operations never parses the per-operation rows."""

    key: RollupKey
    count: int
    errors: int
    fallbacks: int
    outcomes: str | None
    sketch: str | None
    first_chunk: str | None


def level_rows(
    conn: sa.Connection, level: Level, migration: str, since_minute: int, until_minute: int
) -> Iterator[RawParts]:
    """The stored rows of ``level`` starting in ``[since_minute, until_minute)``, keyed by
    their first minute."""
    table, start = level.table, level.column
    query = (
        sa.select(
            start,
            table.c.migration,
            table.c.operation,
            table.c.side,
            table.c.count,
            table.c.errors,
            table.c.fallbacks,
            sa.cast(table.c.outcomes, sa.Text).label("outcomes"),
            sa.cast(table.c.sketch, sa.Text).label("sketch"),
            sa.cast(table.c.first_chunk, sa.Text).label("first_chunk"),
        )
        .where(table.c.migration == migration)
        .where(start >= since_minute)
        .where(start < until_minute)
    )
    for r in conn.execute(query):
        yield RawParts(
            RollupKey(int(r[0]), r.migration, r.operation, r.side),
            int(r.count),
            int(r.errors),
            int(r.fallbacks),
            r.outcomes,
            r.sketch,
            r.first_chunk,
        )


def parsed(raw: RawParts) -> RollupParts:
    return RollupParts(
        raw.key,
        raw.count,
        raw.errors,
        raw.fallbacks,
        json_or_none(raw.outcomes) or {},
        json_or_none(raw.sketch) or {},
        json_or_none(raw.first_chunk) or None,
    )


def late_parts(
    conn: sa.Connection,
    migration: str,
    since_minute: int,
    until_minute: int,
    after_id: int,
    max_id: int,
) -> Iterator[RollupParts]:
    """Rows for minutes in ``[since_minute, until_minute)`` with an id in
    ``(after_id, max_id]``: those the stored levels do not hold yet."""
    if after_id >= max_id:
        # the levels hold every row there is: no query (on a table not analyzed yet,
        # PostgreSQL plans this one over the migration's index, a week of rows)
        return
    c = t.rollups.c
    yield from read_parts(
        conn,
        sa.and_(
            c.id > after_id,
            c.id <= max_id,
            c.migration == migration,
            c.minute >= since_minute,
            c.minute < until_minute,
        ),
    )


def prune(conn: sa.Connection, before_minute: int, level: Level = HOURS) -> int:
    result = conn.execute(level.table.delete().where(level.column < before_minute))
    return int(result.rowcount or 0)

"""Rollups down-sampled to hours, for charts over days.

A 7-day chart of one migration spans 80,000 per-minute rows; decoding them took seconds.
:func:`settle_all` (run by the pruning job, see :mod:`switchover.store.rollup_sink`) merges
the minutes of every complete hour older than :data:`LAG_MINUTES` into one
``rollup_hours`` row per (migration, hour, operation, side): what a chart reads (counts,
outcomes, the latency and first-chunk sketches), not tenants nor error types.

One watermark row says what the hours hold: every rollup with a minute before
``before_minute`` and an id up to ``through_id``. A row appended later for an old minute
(a recorder retrying a flush after an outage) has a higher id: a reader takes it from
``rollups`` itself (:func:`late_parts`), and the next settle folds it into its hour.
Settling locks the watermark row, so two processes pruning at once never merge a minute
twice.

Hourly rows are kept longer than minutes (:data:`HOUR_RETENTION_DAYS`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa

from switchover.core.chart import absorb_parts, compact_sketch
from switchover.core.rollup import Rollup, RollupKey
from switchover.store import tables as t
from switchover.store.records import RollupParts
from switchover.store.repository import Store
from switchover.store.rollup_parts import read_parts

LAG_MINUTES = 10
"""An hour is settled once it ended this long ago (recorders flush every few seconds)."""
HOUR_RETENTION_DAYS = 90.0
MAX_HOURS = 12
"""Hours settled per transaction: PostgreSQL ends a session idle in a transaction."""
WATERMARK = "hours"
ALL_OPERATIONS = "*"
"""The operation of the rows that merge every operation of an hour (an observation's
operation name cannot hold ``*``): a chart of all operations reads them as they are."""
_Key = tuple[str, int, str, str]  # migration, hour, operation, side


class Settled(NamedTuple):
    before_minute: int
    """Minutes before this one are in ``rollup_hours`` (for rows up to ``through_id``)."""
    through_id: int


def settled(conn: sa.Connection, *, for_update: bool = False) -> Settled | None:
    query = sa.select(t.rollup_settled).where(t.rollup_settled.c.name == WATERMARK)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return None if row is None else Settled(int(row.before_minute), int(row.through_id))


def settle_all(store: Store, now_minute: int, *, lag: int = LAG_MINUTES) -> int:
    """Settle everything due, :data:`MAX_HOURS` hours per transaction (a first settle of
    a week of minutes must not hold one transaction open for long); returns the number
    of minute rows merged."""
    total = 0
    while True:
        with store.transaction() as tx:
            rows, done = settle(tx.conn, now_minute, lag=lag)
        total += rows
        if done:
            return total


def settle(
    conn: sa.Connection, now_minute: int, *, lag: int = LAG_MINUTES, max_hours: int = MAX_HOURS
) -> tuple[int, bool]:
    """Merge up to ``max_hours`` hours settled since the last call (and the rows that came
    late for earlier ones) into their hourly rows. Returns the number of minute rows
    merged, and whether every hour due is settled. Call inside a transaction."""
    target = (now_minute - lag) // 60 * 60
    if conn.dialect.name != "postgresql":
        # SQLite: take the write lock now, so that a concurrent settle waits here
        conn.execute(t.rollup_settled.delete().where(t.rollup_settled.c.name == "-"))
    mark = settled(conn, for_update=True)
    if mark is None:
        oldest = conn.execute(sa.select(sa.func.min(t.rollups.c.minute))).scalar()
        start = target if oldest is None else int(oldest) // 60 * 60
    else:
        start = mark.before_minute
    before = max(start, min(target, start + max_hours * 60))
    through = int(conn.execute(sa.select(sa.func.max(t.rollups.c.id))).scalar() or 0)
    if mark is not None and (before, through) == tuple(mark):
        return 0, True
    r = t.rollups.c
    fresh = sa.and_(r.minute < before, r.id <= through)
    if mark is not None:
        # minutes newly settled (any id), and rows that came late for earlier minutes
        fresh = sa.and_(
            fresh,
            sa.or_(r.minute >= mark.before_minute, r.id > mark.through_id),
        )
    merged: dict[_Key, Rollup] = {}
    rows = 0
    for p in read_parts(conn, fresh):
        k = p.key
        hour = k.minute // 60 * 60
        for op in (k.operation, ALL_OPERATIONS):
            key = (k.migration, hour, op, k.side)
            into = merged.get(key)
            if into is None:
                into = merged[key] = Rollup()
            absorb_parts(into, p.count, p.errors, p.fallbacks, p.outcomes, p.sketch, p.first_chunk)
        rows += 1
    _store(conn, merged)
    values = {"before_minute": before, "through_id": through}
    if mark is None:
        conn.execute(t.rollup_settled.insert().values(name=WATERMARK, **values))
    else:
        conn.execute(
            t.rollup_settled.update().where(t.rollup_settled.c.name == WATERMARK).values(**values)
        )
    return rows, before >= target


def _store(conn: sa.Connection, merged: dict[_Key, Rollup]) -> None:
    """Add ``merged`` to the hours already stored (one read per migration)."""
    h = t.rollup_hours.c
    for migration in {k[0] for k in merged}:
        hours = [k[1] for k in merged if k[0] == migration]
        existing = {
            (row.migration, int(row.hour), row.operation, row.side): row
            for row in conn.execute(
                sa.select(t.rollup_hours)
                .where(h.migration == migration)
                .where(h.hour >= min(hours))
                .where(h.hour <= max(hours))
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
                    t.rollup_hours.update().where(h.id == row.id).values(**_values(key, rollup))
                )
            else:
                inserts.append(_values(key, rollup))
        if inserts:
            conn.execute(t.rollup_hours.insert(), inserts)


def _values(key: _Key, r: Rollup) -> dict[str, Any]:
    migration, hour, operation, side = key
    return {
        "migration": migration,
        "hour": hour,
        "operation": operation,
        "side": side,
        "count": r.count,
        "errors": r.errors,
        "fallbacks": r.fallbacks,
        "outcomes": dict(sorted(r.outcomes.items())),
        "sketch": compact_sketch(r.sketch),
        "first_chunk": compact_sketch(r.first_chunk) if r.first_chunk.count else None,
    }


def hour_parts(
    conn: sa.Connection, migration: str, since_minute: int, until_minute: int
) -> Iterator[RollupParts]:
    """The stored hours starting in ``[since_minute, until_minute)``, keyed by their
    first minute."""
    h = t.rollup_hours.c
    query = (
        sa.select(
            h.hour,
            h.migration,
            h.operation,
            h.side,
            h.count,
            h.errors,
            h.fallbacks,
            # as text, parsed by orjson: the JSON of an hour's sketches is most of the read
            sa.cast(h.outcomes, sa.Text).label("outcomes"),
            sa.cast(h.sketch, sa.Text).label("sketch"),
            sa.cast(h.first_chunk, sa.Text).label("first_chunk"),
        )
        .where(h.migration == migration)
        .where(h.hour >= since_minute)
        .where(h.hour < until_minute)
    )
    for r in conn.execute(query):
        yield RollupParts(
            RollupKey(int(r.hour), r.migration, r.operation, r.side),
            int(r.count),
            int(r.errors),
            int(r.fallbacks),
            orjson.loads(r.outcomes) if r.outcomes else {},
            orjson.loads(r.sketch) if r.sketch else {},
            orjson.loads(r.first_chunk) if r.first_chunk else None,
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
    ``(after_id, max_id]``: those the hours do not hold yet."""
    if after_id >= max_id:
        # the hours hold every row there is: no query (on a table not analyzed yet,
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


def prune(conn: sa.Connection, before_minute: int) -> int:
    result = conn.execute(t.rollup_hours.delete().where(t.rollup_hours.c.hour < before_minute))
    return int(result.rowcount or 0)

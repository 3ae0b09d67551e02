"""What a chart reads of per-minute rollup rows: counts, outcomes and the latency and
first-chunk sketches (tenants and error types are parsed, then dropped).

A row's JSON travels whole, as text, and is parsed by orjson. Taking members out in SQL
(``data->'sketch'``) was slower on both engines: PostgreSQL parses a ``json`` column
again for each ``->`` (a day of rows for one migration: 600 ms against 100 ms for the
text), and the driver's own JSON decoding (the standard library's) cost as much again.
Rows are decoded as they are iterated, so a caller that merges and drops them never
holds many.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import sqlalchemy as sa

from switchover.core.rollup import RollupKey
from switchover.store import tables as t
from switchover.store.records import RollupParts


def read_parts(conn: sa.Connection, where: Any) -> Iterator[RollupParts]:
    c = t.rollups.c
    query = sa.select(
        c.minute,
        c.migration,
        c.operation,
        c.side,
        c.count,
        c.errors,
        c.fallbacks,
        sa.cast(c.data, sa.Text).label("data"),
        sa.cast(c.first_chunk, sa.Text).label("first_chunk"),
    ).where(where)
    for r in conn.execute(query):
        yield parts_of(r)


def parts_of(row: Any) -> RollupParts:
    """A row with a rollup's columns, ``data`` and ``first_chunk`` as JSON text."""
    data = orjson.loads(row.data)
    return RollupParts(
        RollupKey(int(row.minute), row.migration, row.operation, row.side),
        int(row.count),
        int(row.errors),
        int(row.fallbacks),
        data.get("outcomes") or {},
        data.get("sketch") or {},
        json_or_none(row.first_chunk) or None,
    )


def json_or_none(text: str | None) -> Any:
    """JSON text, or None for SQL NULL and JSON ``null`` alike."""
    return orjson.loads(text) if text else None

"""What a chart reads of per-minute rollup rows: counts, outcomes and the latency and
first-chunk sketches, without tenants and error types (most of a row's JSON).

The JSON members travel as text and are parsed by orjson: the driver's own JSON decoding
(the standard library's) was most of the time of a 7-day chart's first load on
PostgreSQL. Rows are decoded as they are iterated, so a caller that merges and drops
them never holds many.
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
        sa.cast(c.data["outcomes"], sa.Text).label("outcomes"),
        sa.cast(c.data["sketch"], sa.Text).label("sketch"),
        sa.cast(c.first_chunk, sa.Text).label("first_chunk"),
    ).where(where)
    for r in conn.execute(query):
        yield RollupParts(
            RollupKey(int(r.minute), r.migration, r.operation, r.side),
            int(r.count),
            int(r.errors),
            int(r.fallbacks),
            _load(r.outcomes) or {},
            _load(r.sketch) or {},
            _load(r.first_chunk) or None,
        )


def _load(text: str | None) -> Any:
    """JSON text, or None for SQL NULL and JSON ``null`` alike."""
    return orjson.loads(text) if text else None

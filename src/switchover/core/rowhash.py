"""A canonical, order-defined SHA-256 over table rows: what a backup's checksum means.

Each row is encoded as one JSON array ``[table, value, ...]`` followed by a newline
(JSON escapes newlines inside strings, so rows cannot run into each other), in the
order the caller feeds them: by table, then by primary key. Booleans are written as
``true``/``false`` whatever the driver returned (SQLite gives 0/1), so the sum of a
backup and of the rows restored from it agree on either database. Values JSON has no
form for are tagged: ``{"$bytes": hex}``, ``{"$numeric": "12.50"}``, and any other
type as ``{"$<type name>": str(value)}``.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import orjson


def _tagged(value: Any) -> dict[str, str]:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, Decimal):
        return {"$numeric": str(value)}
    return {f"${type(value).__name__}": str(value)}


class RowHasher:
    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.rows = 0

    def add(
        self, table: str, rows: Iterable[Sequence[Any]], bool_columns: Sequence[int] = ()
    ) -> int:
        """Feed rows of one table; returns how many."""
        h = self._h
        dumps = functools.partial(orjson.dumps, default=_tagged)
        n = 0
        if bool_columns:
            for row in rows:
                values = list(row)
                for i in bool_columns:
                    if values[i] is not None:
                        values[i] = bool(values[i])
                h.update(dumps([table, *values]))
                h.update(b"\n")
                n += 1
        else:
            for row in rows:
                h.update(dumps([table, *row]))
                h.update(b"\n")
                n += 1
        self.rows += n
        return n

    def hexdigest(self) -> str:
        return self._h.hexdigest()

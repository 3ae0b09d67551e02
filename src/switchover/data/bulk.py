"""Set-based writes: one statement per batch, whatever the batch size and column types.

On PostgreSQL a batch travels as one ``text[]`` per column and is unpacked with
``unnest``; each value is cast to its column's declared type in SQL (``uuid``,
``timestamptz``, ``jsonb``, an enum, ``numeric``), and an array column receives JSON
text turned into an array with ``jsonb_array_elements_text``. The statement text does
not depend on the batch, so the driver and the server parse it once; a ``VALUES`` list
with a placeholder per value costs more in parsing than the update itself. On SQLite,
where a statement is a function call, ``executemany``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.engine import Connection

from switchover.data import reflect as r
from switchover.data.source import Source


def as_text(value: Any) -> str | None:
    """A value as PostgreSQL's input syntax for its column's type reads it."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value).decode()
    return str(value)


def _value(column: r.Column, ref: str) -> str:
    if column.kind == r.ARRAY:
        return (
            f"CASE WHEN {ref} IS NULL THEN NULL ELSE CAST(ARRAY(SELECT "
            f"jsonb_array_elements_text(CAST({ref} AS jsonb))) AS {column.type}) END"
        )
    return f"CAST({ref} AS {column.type})"


def _element(value: str | None) -> str:
    if value is None:
        return "NULL"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _columns(rows: Sequence[Sequence[Any]], width: int) -> list[str]:
    """One array literal per column (``{"a","b",NULL}``): written here with ``str``
    methods, a batch of 50 KB prompts costs milliseconds, not the driver's seconds of
    per-element escaping."""
    return ["{" + ",".join(_element(as_text(row[i])) for row in rows) + "}" for i in range(width)]


def update(
    source: Source,
    conn: Connection,
    table: r.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Set ``columns`` of the rows keyed by each tuple's last value."""
    if not rows:
        return
    key = table.key
    if source.sqlite:
        sets = ", ".join(f"{r.quote(c)} = ?" for c in columns)
        source.executemany(
            conn, f"UPDATE {r.quote(table.name)} SET {sets} WHERE {r.quote(key)} = ?", rows
        )
        return
    names = [*columns, key]
    sets = ", ".join(f"{r.quote(c)} = {_value(table[c], f'v.c{i}')}" for i, c in enumerate(columns))
    unnest = ", ".join("CAST(? AS text[])" for _ in names)
    alias = ", ".join(f"c{i}" for i in range(len(names)))
    source.execute(
        conn,
        f"UPDATE {r.quote(table.name)} AS t SET {sets} FROM unnest({unnest}) AS v({alias}) "
        f"WHERE t.{r.quote(key)} = {_value(table[key], f'v.c{len(columns)}')}",
        _columns(rows, len(names)),
    )


def insert(
    source: Source,
    conn: Connection,
    table: r.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    if not rows:
        return
    names = ", ".join(r.quote(c) for c in columns)
    if source.sqlite:
        marks = ", ".join("?" for _ in columns)
        source.executemany(
            conn, f"INSERT INTO {r.quote(table.name)} ({names}) VALUES ({marks})", rows
        )
        return
    unnest = ", ".join("CAST(? AS text[])" for _ in columns)
    alias = ", ".join(f"c{i}" for i in range(len(columns)))
    values = ", ".join(_value(table[c], f"v.c{i}") for i, c in enumerate(columns))
    source.execute(
        conn,
        f"INSERT INTO {r.quote(table.name)} ({names}) SELECT {values} FROM unnest({unnest}) "
        f"AS v({alias})",
        _columns(rows, len(columns)),
    )

"""Set-based writes: one statement per batch, whatever the batch size and column types.

On PostgreSQL a batch travels as one ``json`` array per column, written by ``orjson``
in one call each (no per-value escaping in Python, even for 50 KB prompts), unpacked
with ``json_array_elements_text`` and ``unnest``: a string arrives without its quotes,
an object or an array as the very JSON text ``orjson`` wrote (the ``json`` type keeps
its input verbatim), a JSON ``null`` as NULL. Each value is then cast to its column's
declared type in SQL (``uuid``, ``timestamptz``, ``jsonb``, an enum, ``numeric``); an
array column receives JSON text turned into an array with ``jsonb_array_elements_text``.
Scalars other than strings travel as PostgreSQL's input syntax for them
(:func:`as_text`), so a ``NaN`` or a ``Decimal`` reaches the column exactly. The
statement text does not depend on the batch, so the driver and the server parse it
once. On SQLite, where a statement is a function call, ``executemany``.
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
    """SQL: the text ``ref`` as ``column``'s type."""
    if column.kind == r.ARRAY:
        return (
            f"CASE WHEN {ref} IS NULL THEN NULL ELSE CAST(ARRAY(SELECT "
            f"jsonb_array_elements_text(CAST({ref} AS jsonb))) AS {column.type}) END"
        )
    return f"CAST({ref} AS {column.type})"


_PLAIN = (str, dict, list, tuple)


def _plain(value: Any) -> Any:
    """A value as a batch document holds it: strings, objects and arrays as they are
    (``orjson`` writes them as :func:`as_text` would), other scalars as their text."""
    return value if value is None or isinstance(value, _PLAIN) else as_text(value)


_AS_IS = frozenset({str, type(None), dict, list, tuple, int})
"""Types ``orjson`` writes as :func:`_plain` would have them (an ``int`` as its digits)."""


def documents(rows: Sequence[Sequence[Any]], width: int) -> list[str]:
    """A batch as one JSON array per column (``str``: bytes would travel as ``bytea``).
    A column of strings, documents and integers goes to ``orjson`` as it is; any other
    type (a float, whose NaN ``orjson`` would write as ``null``) value by value."""
    dumps = orjson.dumps
    out = []
    for i in range(width):
        column = [row[i] for row in rows]
        if _AS_IS.issuperset(map(type, column)):
            try:
                out.append(dumps(column).decode())
                continue
            except orjson.JSONEncodeError:  # an integer beyond 64 bits
                pass
        out.append(dumps([_plain(v) for v in column]).decode())
    return out


def _unnest(table: r.Table, columns: Sequence[str]) -> tuple[str, list[str]]:
    """The FROM item unpacking a batch's documents, and each column's value from it."""
    arrays = ", ".join("ARRAY(SELECT json_array_elements_text(CAST(? AS json)))" for _ in columns)
    alias = ", ".join(f"c{i}" for i in range(len(columns)))
    values = [_value(table[c], f"v.c{i}") for i, c in enumerate(columns)]
    return f"unnest({arrays}) AS v({alias})", values


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
    frm, values = _unnest(table, [*columns, key])
    sets = ", ".join(f"{r.quote(c)} = {v}" for c, v in zip(columns, values, strict=False))
    source.execute(
        conn,
        f"UPDATE {r.quote(table.name)} AS t SET {sets} FROM {frm} "
        f"WHERE t.{r.quote(key)} = {values[-1]}",
        documents(rows, len(columns) + 1),
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
    frm, values = _unnest(table, columns)
    source.execute(
        conn,
        f"INSERT INTO {r.quote(table.name)} ({names}) SELECT {', '.join(values)} FROM {frm}",
        documents(rows, len(columns)),
    )

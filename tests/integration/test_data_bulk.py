"""Set-based writes on PostgreSQL (switchover.data.bulk): every value of a batch reaches
its column exactly, whatever the type, through one json document per column."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from switchover.data import bulk
from switchover.data import reflect as r
from switchover.data.source import Source

AWKWARD = 'quote " backslash \\ newline \n tab \t braces {a,b} NULL null é 🌮 東京'


pytestmark = pytest.mark.postgres  # SQLite writes with executemany: nothing to unpack


@pytest.fixture
def source(pg_url: str) -> Iterator[Source]:
    src = Source(pg_url)
    with src.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS bulk_probe"))
        conn.execute(sa.text("DROP TYPE IF EXISTS bulk_mood"))
        conn.execute(sa.text("CREATE TYPE bulk_mood AS ENUM ('calm', 'busy')"))
        conn.execute(
            sa.text(
                "CREATE TABLE bulk_probe (id uuid PRIMARY KEY, n bigint, big numeric, "
                "f double precision, t text, doc jsonb, doc_text text, tags text[], "
                "at timestamptz, ok boolean, mood bulk_mood)"
            )
        )
    yield src
    with src.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS bulk_probe"))
        conn.execute(sa.text("DROP TYPE IF EXISTS bulk_mood"))
    src.dispose()


COLUMNS = ["id", "n", "big", "f", "t", "doc", "doc_text", "tags", "at", "ok", "mood"]


def rows() -> list[tuple[Any, ...]]:
    at = datetime(2026, 11, 30, 12, 0, 1, 250000, tzinfo=UTC)
    doc = {"voice_id": AWKWARD, "speed": 1.25, "items": [1, None, "x"]}
    return [
        (uuid.UUID(int=1), 2**62, Decimal("12345678901234567890.10"), math.nan, AWKWARD,
         doc, doc, ["a", AWKWARD], at, True, "calm"),
        (uuid.UUID(int=2), -7, Decimal(2**70), math.inf, "", [], {}, [], at, False, "busy"),
        (uuid.UUID(int=3), None, None, -0.1, None, None, None, None, None, None, None),
    ]  # fmt: skip


def read(source: Source) -> list[tuple[Any, ...]]:
    query = f"SELECT {r.cols(COLUMNS)} FROM bulk_probe ORDER BY id"
    with source.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(query))]


def same(a: Any, b: Any) -> bool:
    nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return nan or a == b


def test_insert_and_update_keep_every_value_of_every_type(source: Source) -> None:
    with source.engine.connect() as conn:
        table = r.reflect(conn, "bulk_probe")
    with source.begin() as conn:
        bulk.insert(source, conn, table, COLUMNS, rows())
    got = read(source)
    for g, w in zip(got, rows(), strict=True):
        # a text column holds a document as orjson writes it, byte for byte
        want = (*w[:6], None if w[6] is None else orjson.dumps(w[6]).decode(), *w[7:])
        assert all(same(x, y) for x, y in zip(g, want, strict=True)), (g, want)

    changed = [(AWKWARD + "!", {"k": AWKWARD}, ["z"], "busy", uuid.UUID(int=3))]
    with source.begin() as conn:
        bulk.update(source, conn, table, ["t", "doc", "tags", "mood"], changed)
    after = read(source)
    assert (after[2][4], after[2][5], after[2][7], after[2][10]) == changed[0][:4]
    assert all(same(x, y) for x, y in zip(after[0] + after[1], got[0] + got[1], strict=True))

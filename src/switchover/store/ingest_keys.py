"""Idempotency keys of ingested batches, stored in the transaction that stores the batch.

A client that retries a batch (its answer was lost, or it timed out) sends the same key;
:func:`claim` stores the key in the unit of work that writes the batch, so either both
are kept or neither is, and a retry finds the key and writes nothing. Keys are kept for
:data:`KEY_TTL_SECONDS` (a day), far longer than any client retries a batch, then pruned.

Scopes keep the endpoints apart: ``observations`` (``POST /v1/observations``) and
``rollups`` (``POST /v1/rollups`` and the recorder's flushes straight into the store).

The keys live in the SQL store's ``ingest_keys`` table and are reached through the
transaction's connection (``Tx.conn``); a store without one (the in-memory store) keeps
no keys, so there every batch is written.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from switchover.errors import ValidationError
from switchover.store import tables as t

KEY_TTL_SECONDS = 86_400.0
SCOPES = ("observations", "rollups")
MAX_KEY = 200
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


def check_key(key: object, field: str = "idempotency_key") -> str:
    """A key as a client may send it: 1-200 visible ASCII characters (a UUID fits)."""
    if not isinstance(key, str) or _KEY.match(key) is None:
        raise ValidationError(
            f"{field} must be 1-{MAX_KEY} visible ASCII characters without spaces "
            "(a UUID, for example)",
            field=field,
        )
    return key


def claim(tx: Any, scope: str, key: str, accepted: int, at: datetime) -> int | None:
    """Keep ``key`` with the batch ``tx`` writes. None when it is new (write the batch);
    when it was kept before, the count its first batch accepted (write nothing)."""
    conn = getattr(tx, "conn", None)
    if conn is None:
        return None
    values = {"scope": scope, "key": key, "accepted": accepted, "at": at}
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    # on PostgreSQL this waits for a concurrent transaction holding the same key: when
    # it commits, this one sees its row and answers a replay
    inserted = conn.execute(
        dialect.insert(t.ingest_keys)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(t.ingest_keys.c.key)
    ).first()
    if inserted is not None:
        return None
    first = conn.execute(
        sa.select(t.ingest_keys.c.accepted)
        .where(t.ingest_keys.c.scope == scope)
        .where(t.ingest_keys.c.key == key)
    ).scalar()
    return int(first or 0)


def prune(tx: Any, now: float) -> int:
    """Drop the keys older than :data:`KEY_TTL_SECONDS`."""
    conn = getattr(tx, "conn", None)
    if conn is None:
        return 0
    before = datetime.fromtimestamp(now, UTC) - timedelta(seconds=KEY_TTL_SECONDS)
    result = conn.execute(t.ingest_keys.delete().where(t.ingest_keys.c.at < before))
    return int(result.rowcount or 0)

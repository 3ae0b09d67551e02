"""The worker registry in the SQL store: one row per worker process, its last heartbeat.

Reached through a transaction's connection (``Tx.conn``), like the ingest keys; the
in-memory store keeps no registry (the simulator has no workers).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from switchover.core.workers import Heartbeat, WorkerView
from switchover.store import tables as t

FORGET_AFTER = timedelta(days=7)
"""A worker not seen for this long leaves the registry."""


def beat(tx: Any, hb: Heartbeat, now: datetime) -> None:
    conn = getattr(tx, "conn", None)
    if conn is None:
        return
    values = {
        "name": hb.name,
        "version": hb.version,
        "jobs_active": hb.jobs_active,
        "jobs_total": hb.jobs_total,
        "jobs_failed": hb.jobs_failed,
        "load": hb.load,
        "max_concurrency": hb.max_concurrency,
        "interval_seconds": hb.interval,
        "migration": hb.migration,
        "side": hb.side,
        "last_seen": now,
    }
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(t.workers)
        .values(instance=hb.instance, started_at=now, **values)
        .on_conflict_do_update(index_elements=[t.workers.c.instance], set_=values)
    )
    conn.execute(t.workers.delete().where(t.workers.c.last_seen < now - FORGET_AFTER))


def listed(tx: Any) -> list[WorkerView]:
    """Every registered worker, the most recently seen first."""
    conn = getattr(tx, "conn", None)
    if conn is None:
        return []
    rows = conn.execute(
        sa.select(t.workers).order_by(t.workers.c.last_seen.desc(), t.workers.c.instance)
    )
    return [_view(r) for r in rows.mappings()]


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _view(r: Any) -> WorkerView:
    return WorkerView(
        Heartbeat(
            instance=r["instance"],
            name=r["name"],
            version=r["version"],
            jobs_active=int(r["jobs_active"]),
            jobs_total=int(r["jobs_total"]),
            jobs_failed=int(r["jobs_failed"]),
            load=float(r["load"]),
            max_concurrency=int(r["max_concurrency"]),
            interval=float(r["interval_seconds"]),
            migration=r["migration"],
            side=r["side"],
        ),
        started_at=_aware(r["started_at"]),
        last_seen=_aware(r["last_seen"]),
    )

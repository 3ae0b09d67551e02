"""Engines for the two supported databases: SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from switchover.errors import ValidationError

DEFAULT_URL = "sqlite:///./switchover.db"
SUPPORTED = ("sqlite", "postgresql")


def parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with the URL in it
        raise ValidationError(
            "database URL is not valid: use sqlite:///path/to/file.db or "
            "postgresql+psycopg://user@host:5432/dbname",
            field="db",
        ) from exc
    if parsed.get_backend_name() not in SUPPORTED:
        raise ValidationError(
            f"database {parsed.get_backend_name()!r} is not supported: use sqlite:///FILE "
            "or postgresql+psycopg://…",
            field="db",
        )
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def redact_url(url: str | URL) -> str:
    """The URL with any password hidden, safe to print."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except Exception:
        return "<invalid database URL>"
    return parsed.render_as_string(hide_password=True)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


STATEMENT_TIMEOUT_MS = 15_000
"""No store statement runs longer: a stalled database fails a request instead of
holding a thread (and a pooled connection) for minutes."""


def create_store_engine(
    url: str, *, statement_timeout_ms: int | None = STATEMENT_TIMEOUT_MS, **kwargs: Any
) -> Engine:
    """An engine tuned for the store: WAL and a busy timeout on SQLite; on PostgreSQL a
    connect timeout, a statement timeout and TCP keepalives, so a dead or stalled server
    is noticed in seconds."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            parsed, connect_args={"timeout": 15, "check_same_thread": False}, **kwargs
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if parsed.database not in (None, "", ":memory:"):
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=15000")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_timeout", 10)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("connect_timeout", 5)
    connect_args.setdefault("keepalives", 1)
    connect_args.setdefault("keepalives_idle", 10)
    connect_args.setdefault("keepalives_interval", 5)
    connect_args.setdefault("keepalives_count", 3)
    if statement_timeout_ms:
        # a transaction whose client went quiet (hung, or a stalled network) is ended by
        # the server, so it holds no row locks and writes nothing when the client wakes
        options = connect_args.get("options", "")
        connect_args["options"] = (
            f"{options} -c statement_timeout={int(statement_timeout_ms)}"
            f" -c idle_in_transaction_session_timeout={int(statement_timeout_ms)}"
        )
    return sa.create_engine(parsed, connect_args=connect_args, **kwargs)

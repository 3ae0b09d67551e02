"""Bring a database to the current schema with Alembic, safely from several processes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from switchover.errors import StoreError

_SCRIPTS = Path(__file__).parent / "migrations"
_UPGRADE_LOCK = 0x5377_4F76  # pg advisory lock key held while upgrading


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """On a SQLite file, one process at a time upgrades: several first starts on one
    fresh file would otherwise race to create the same tables."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    import fcntl

    with open(f"{database}.schema-lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade(engine: Engine) -> None:
    """Apply every pending Alembic migration. Idempotent, and safe from several processes
    at once (an advisory lock on PostgreSQL, a file lock beside a SQLite file)."""
    cfg = _config()
    try:
        with _file_lock(engine), engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SET LOCAL statement_timeout = 0"))
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _UPGRADE_LOCK})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except sa.exc.OperationalError as exc:
        raise StoreError(
            f"could not reach the store to apply its schema: {type(exc.orig).__name__}; "
            "check --db / SWITCHOVER_DATABASE_URL and that the server is running"
        ) from exc


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()

"""Bring a database to the current schema with Alembic, safely from several processes."""

from __future__ import annotations

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


def upgrade(engine: Engine) -> None:
    """Apply every pending Alembic migration. Idempotent."""
    cfg = _config()
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
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

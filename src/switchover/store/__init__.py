"""Persistence: SQLAlchemy tables, the repository, Alembic migrations."""

from switchover.store.engine import create_store_engine, redact_url
from switchover.store.repository import Store
from switchover.store.schema import upgrade

__all__ = ["Store", "create_store_engine", "redact_url", "upgrade"]

"""Persistence: SQLAlchemy tables, the repository, Alembic migrations."""

from typing import TYPE_CHECKING, Any

from switchover.store.engine import create_store_engine, redact_url
from switchover.store.repository import Store

if TYPE_CHECKING:
    from switchover.store.schema import upgrade

__all__ = ["Store", "create_store_engine", "redact_url", "upgrade"]


def __getattr__(name: str) -> Any:
    """Alembic loads only for the commands that change the schema."""
    if name == "upgrade":
        from switchover.store.schema import upgrade

        return upgrade
    raise AttributeError(f"module 'switchover.store' has no attribute {name!r}")

"""Alembic environment: always run with a connection handed in by ``schema.upgrade``."""

from __future__ import annotations

from alembic import context

from switchover.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by running alembic by hand
    raise SystemExit("run migrations with 'switchover init', which hands Alembic a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

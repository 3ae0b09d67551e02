"""Ingest: the idempotency keys of stored observation and rollup batches.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_keys",
        sa.Column("scope", sa.String(20), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("accepted", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ingest_keys_at", "ingest_keys", ["at"])


def downgrade() -> None:
    op.drop_index("ix_ingest_keys_at", table_name="ingest_keys")
    op.drop_table("ingest_keys")

"""The worker registry: the last heartbeat of each worker process (issue 16).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("instance", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("jobs_active", sa.BigInteger, nullable=False),
        sa.Column("jobs_total", sa.BigInteger, nullable=False),
        sa.Column("jobs_failed", sa.BigInteger, nullable=False),
        sa.Column("load", sa.Float, nullable=False),
        sa.Column("max_concurrency", sa.Integer, nullable=False),
        sa.Column("interval_seconds", sa.Float, nullable=False),
        sa.Column("migration", sa.String(200), nullable=True),
        sa.Column("side", sa.String(20), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_workers_last_seen", "workers", ["last_seen"])


def downgrade() -> None:
    op.drop_index("ix_workers_last_seen", table_name="workers")
    op.drop_table("workers")

"""Rollups down-sampled to hours (issue 20): ``rollup_hours`` and its watermark.

The dashboard's first 7-day chart read 80,000 per-minute rows; it now reads one row per
hour, operation and side for the hours already settled, and minutes only after them.

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollup_hours",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("hour", sa.BigInteger, nullable=False),
        sa.Column("migration", sa.String(63), nullable=False),
        sa.Column("operation", sa.String(63), nullable=False),
        sa.Column("side", sa.String(20), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("fallbacks", sa.Integer, nullable=False),
        sa.Column("outcomes", sa.JSON, nullable=False),
        sa.Column("sketch", sa.JSON, nullable=False),
        sa.Column("first_chunk", sa.JSON, nullable=True),
        sa.UniqueConstraint(
            "migration", "hour", "operation", "side", name="uq_rollup_hours_migration_hour"
        ),
    )
    op.create_table(
        "rollup_settled",
        sa.Column("name", sa.String(20), primary_key=True),
        sa.Column("before_minute", sa.BigInteger, nullable=False),
        sa.Column("through_id", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rollup_settled")
    op.drop_table("rollup_hours")

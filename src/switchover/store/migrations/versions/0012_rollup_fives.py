"""Rollups down-sampled to five minutes (issue 20): ``rollup_fives``.

The dashboard's first 24-hour chart read 11,500 per-minute rows of one migration; it now
reads one row per five minutes, operation and side for the hours already settled. Its
watermark is a row of ``rollup_settled`` named ``fives``: the first settle after this
upgrade fills the last two days.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollup_fives",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("minute", sa.BigInteger, nullable=False),
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
            "migration", "minute", "operation", "side", name="uq_rollup_fives_migration_minute"
        ),
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM rollup_settled WHERE name = 'fives'"))
    op.drop_table("rollup_fives")

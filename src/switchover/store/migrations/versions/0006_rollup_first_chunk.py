"""Rollups: a second latency sketch, streams' time to first chunk (NULL: no stream call).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rollups") as batch:
        batch.add_column(sa.Column("first_chunk", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rollups") as batch:
        batch.drop_column("first_chunk")

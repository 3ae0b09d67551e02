"""Migrations: the bucketing group (Unleash's ``groupId``; NULL: the migration's name).

Existing rows keep NULL, so every caller stays in the bucket they were in.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("migrations") as batch:
        batch.add_column(sa.Column("bucketing_group", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("migrations") as batch:
        batch.drop_column("bucketing_group")

"""Controller: applied plans, verdict history, lock rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("migration", sa.String(63), primary_key=True),
        sa.Column("plan_name", sa.String(63), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("source_name", sa.String(300), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("phase_index", sa.Integer, nullable=False),
        sa.Column("phase_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_index", sa.Integer, nullable=True),
        sa.Column("approval_requested", sa.Boolean, nullable=False),
        sa.Column("last_action", sa.String(30), nullable=True),
        sa.Column("last_interval", sa.BigInteger, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_by", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "verdicts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("migration", sa.String(63), nullable=False),
        sa.Column("interval", sa.BigInteger, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("phase_index", sa.Integer, nullable=False),
        sa.Column("phase", sa.String(63), nullable=False),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("severity", sa.String(4), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.UniqueConstraint("migration", "interval", name="uq_verdicts_migration_interval"),
    )
    op.create_index("ix_verdicts_migration_id", "verdicts", ["migration", "id"])
    op.create_table(
        "locks",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("locks")
    op.drop_table("verdicts")
    op.drop_table("plans")

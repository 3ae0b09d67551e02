"""Agent registry: agents, their encrypted keys, campaigns, campaign agents, phone numbers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False),
        sa.Column("system_prompt", sa.Text, nullable=True),
        sa.Column("personality", sa.Text, nullable=True),
        sa.Column("voice_id", sa.String(200), nullable=True),
        sa.Column("llm_provider", sa.String(40), nullable=True),
        sa.Column("llm_model", sa.String(100), nullable=True),
        sa.Column("temperature", sa.Float, nullable=True),
        sa.Column("max_concurrent_calls", sa.Integer, nullable=True),
        sa.Column("livekit_agent_name", sa.String(200), nullable=True),
        sa.Column("tts_provider", sa.String(40), nullable=True),
        sa.Column("stt_provider", sa.String(40), nullable=True),
        sa.Column("livekit_url", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "agent_keys",
        sa.Column(
            "agent_id",
            sa.String(64),
            sa.ForeignKey("agents.id", ondelete="CASCADE", name="fk_agent_keys_agent_id_agents"),
            primary_key=True,
        ),
        sa.Column("kind", sa.String(40), primary_key=True),
        sa.Column("ciphertext", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "campaign_agents",
        sa.Column(
            "campaign_id",
            sa.String(64),
            sa.ForeignKey(
                "campaigns.id", ondelete="CASCADE", name="fk_campaign_agents_campaign_id_campaigns"
            ),
            primary_key=True,
        ),
        sa.Column(
            "agent_id",
            sa.String(64),
            sa.ForeignKey("agents.id", name="fk_campaign_agents_agent_id_agents"),
            primary_key=True,
        ),
        sa.Column("is_primary", sa.Boolean, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_index("ix_campaign_agents_agent_id", "campaign_agents", ["agent_id"])
    op.create_table(
        "phone_numbers",
        sa.Column("number", sa.String(32), primary_key=True),
        sa.Column(
            "campaign_id",
            sa.String(64),
            sa.ForeignKey(
                "campaigns.id", ondelete="SET NULL", name="fk_phone_numbers_campaign_id_campaigns"
            ),
            nullable=True,
        ),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("phone_numbers")
    op.drop_index("ix_campaign_agents_agent_id", table_name="campaign_agents")
    op.drop_table("campaign_agents")
    op.drop_table("campaigns")
    op.drop_table("agent_keys")
    op.drop_table("agents")

"""The store's tables (SQLAlchemy Core). Schema changes go through Alembic."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

migrations = sa.Table(
    "migrations",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("legacy_label", sa.String(200), nullable=False),
    sa.Column("candidate_label", sa.String(200), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("percentage", sa.Integer, nullable=False),
    sa.Column("features", sa.JSON, nullable=False),
    sa.Column("tenants", sa.JSON, nullable=False),
    sa.Column("stickiness", sa.String(63), nullable=False),
    sa.Column("tenant_key", sa.String(63), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
    sa.Column("bucketing_group", sa.String(255), nullable=True),  # NULL: the name
    sa.Column("feature_percentages", sa.JSON, nullable=True),  # NULL: none
    sa.CheckConstraint("percentage >= 0 AND percentage <= 100", name="percentage_range"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("migration", sa.String(63), nullable=False, index=True),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("before", sa.JSON, nullable=True),
    sa.Column("after", sa.JSON, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
)

known_tenants = sa.Table(
    "known_tenants",
    metadata,
    sa.Column("migration", sa.String(63), primary_key=True),
    sa.Column("tenant", sa.String(200), primary_key=True),
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)

store_version = sa.Table(
    "store_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
)

rollups = sa.Table(
    "rollups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("minute", sa.BigInteger, nullable=False),
    sa.Column("migration", sa.String(63), nullable=False),
    sa.Column("operation", sa.String(63), nullable=False),
    sa.Column("side", sa.String(20), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("errors", sa.Integer, nullable=False),
    sa.Column("fallbacks", sa.Integer, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    # streams' time to first chunk, LatencySketch.to_dict(); NULL when no call was a stream
    sa.Column("first_chunk", sa.JSON, nullable=True),
    sa.Index("ix_rollups_migration_minute", "migration", "minute"),
)

shadow_samples = sa.Table(
    "shadow_samples",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("migration", sa.String(63), nullable=False),
    sa.Column("operation", sa.String(63), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("sample", sa.JSON, nullable=False),
    sa.Index("ix_shadow_samples_migration_id", "migration", "id"),
)

plans = sa.Table(
    "plans",
    metadata,
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

verdicts = sa.Table(
    "verdicts",
    metadata,
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
    sa.Index("ix_verdicts_migration_id", "migration", "id"),
)

locks = sa.Table(
    "locks",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

# --- agent registry (seed 000: one core worker for every agent) ---------------------------

agents = sa.Table(
    "agents",
    metadata,
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

agent_keys = sa.Table(
    "agent_keys",
    metadata,
    sa.Column(
        "agent_id", sa.String(64), sa.ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("kind", sa.String(40), primary_key=True),
    sa.Column("ciphertext", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
)

campaign_agents = sa.Table(
    "campaign_agents",
    metadata,
    sa.Column(
        "campaign_id",
        sa.String(64),
        sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("agent_id", sa.String(64), sa.ForeignKey("agents.id"), primary_key=True),
    sa.Column("is_primary", sa.Boolean, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Index("ix_campaign_agents_agent_id", "agent_id"),
)

phone_numbers = sa.Table(
    "phone_numbers",
    metadata,
    sa.Column("number", sa.String(32), primary_key=True),
    sa.Column(
        "campaign_id",
        sa.String(64),
        sa.ForeignKey("campaigns.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# --- ingest: the idempotency keys of stored batches (pruned after a day) -------------------

ingest_keys = sa.Table(
    "ingest_keys",
    metadata,
    sa.Column("scope", sa.String(20), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("accepted", sa.Integer, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_ingest_keys_at", "at"),
)

# --- the worker registry: the last heartbeat of each worker process (issue 16) -----------

workers = sa.Table(
    "workers",
    metadata,
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
    sa.Index("ix_workers_last_seen", "last_seen"),
)

# --- rollups down-sampled for long charts (issue 20) ----------------------------------------


def _down_sampled(name: str, start: str) -> sa.Table:
    """One row per (migration, bucket, operation, side); ``start`` is the bucket's first
    minute since the epoch."""
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(start, sa.BigInteger, nullable=False),
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
            "migration", start, "operation", "side", name=f"uq_{name}_migration_{start}"
        ),
    )


rollup_hours = _down_sampled("rollup_hours", "hour")  # kept 90 days: the 7d chart
rollup_fives = _down_sampled("rollup_fives", "minute")  # five minutes, kept 2 days: 24h

# one row per level ("hours", "fives"): the minute before which rollups are merged into
# it, and the last rollup id merged (rows with a higher id arrived later and are read
# one by one)
rollup_settled = sa.Table(
    "rollup_settled",
    metadata,
    sa.Column("name", sa.String(20), primary_key=True),
    sa.Column("before_minute", sa.BigInteger, nullable=False),
    sa.Column("through_id", sa.BigInteger, nullable=False),
)

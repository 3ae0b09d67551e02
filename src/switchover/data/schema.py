"""The tables a data migration reads and writes, in the *source* database.

The source tables are seed 003's (``tenants``, ``voice_agent_configs`` with v1 and v2
columns side by side, ``voice_agent_calls``, ``voice_agent_metrics``) plus seed 004's
user voice settings. The ``switchover_*`` tables hold the runs, their checkpoints and
the backups; they live next to the data so that a batch and its checkpoint commit in
one transaction.

These declarations are what ``seed-demo`` creates (ids and timestamps as strings, as in
the seed's interfaces). A real database declares its own types, keys and extra
columns: every command reads them with :mod:`switchover.data.reflect` and works with
what is there; the columns below are only the ones switchover reads and writes.
"""

from __future__ import annotations

import sqlalchemy as sa

meta = sa.MetaData()

ID = sa.String(64)
TS = sa.String(40)

tenants = sa.Table(
    "tenants",
    meta,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("created_at", TS),
)


def v2_columns() -> list[sa.Column[object]]:
    """The columns v2 adds; ``migrate`` adds any that a v1 table lacks (expand, not contract)."""
    return [
        sa.Column("assistant_type", sa.String(16)),
        sa.Column("voice_config", sa.Text),
        sa.Column("personality", sa.Text),
        sa.Column("capabilities", sa.Text),
        sa.Column("migrated_at", TS),
        sa.Column("migrated_from", sa.String(8)),
    ]


configs = sa.Table(
    "voice_agent_configs",
    meta,
    sa.Column("id", ID, primary_key=True),
    sa.Column("tenant_id", ID),
    sa.Column("name", sa.Text),
    sa.Column("prompt", sa.Text),
    sa.Column("voice_id", sa.String(128)),
    sa.Column("language", sa.String(32)),
    sa.Column("enabled", sa.Boolean),
    sa.Column("created_at", TS),
    sa.Column("updated_at", TS),
    sa.Column("schema_version", sa.String(8)),
    *v2_columns(),
    sa.Index("ix_voice_agent_configs_tenant", "tenant_id"),
)

calls = sa.Table(
    "voice_agent_calls",
    meta,
    sa.Column("id", ID, primary_key=True),
    sa.Column("tenant_id", ID),
    sa.Column("config_id", ID),
    sa.Column("started_at", TS),
    sa.Column("duration_seconds", sa.Float),
    sa.Column("latency_ms", sa.Float),
    sa.Column("status", sa.String(32)),
    sa.Column("outcome", sa.String(32)),
    sa.Column("version", sa.String(8)),
    sa.Index("ix_voice_agent_calls_config", "config_id"),
    sa.Index("ix_voice_agent_calls_tenant", "tenant_id"),
)

metrics = sa.Table(
    "voice_agent_metrics",
    meta,
    sa.Column("config_id", ID, primary_key=True),
    sa.Column("tenant_id", ID),
    sa.Column("total_calls", sa.Integer),
    sa.Column("avg_duration_seconds", sa.Float),
    sa.Column("p95_latency_ms", sa.Float),
    sa.Column("generated_at", TS),
)

legacy_settings = sa.Table(
    "user_voice_settings",
    meta,
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("settings", sa.Text),
    sa.Column("updated_at", TS),
)

v2_settings = sa.Table(
    "voice_v2_user_settings",
    meta,
    sa.Column("user_id", ID, primary_key=True),
    sa.Column("settings", sa.Text),
    sa.Column("updated_at", TS),
)

SOURCE_TABLES = (tenants, configs, calls, metrics, legacy_settings, v2_settings)

# --- switchover's own ------------------------------------------------------------------

own = sa.MetaData()

runs = sa.Table(
    "switchover_data_runs",
    own,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("step", sa.String(32), nullable=False),
    sa.Column("cursor", sa.Text),
    sa.Column("counts", sa.Text, nullable=False),
    sa.Column("options", sa.Text, nullable=False),
    sa.Column("backup_id", sa.String(64)),
    sa.Column("holder", sa.String(200)),
    sa.Column("error", sa.Text),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("finished_at", TS),
)

backups = sa.Table(
    "switchover_data_backups",
    own,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(64)),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("tenant_ids", sa.Text),
    sa.Column("configs", sa.Integer, nullable=False),
    sa.Column("calls", sa.Integer, nullable=False),
    sa.Column("metrics", sa.Integer, nullable=False),
    sa.Column("checksum", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(24)),
    sa.Column("parts", sa.Text),
)

data_locks = sa.Table(
    "switchover_data_locks",
    own,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)


BACKED_UP = (configs, calls, metrics)
"""What a migration's backup holds, parents first."""
BACKED_UP_NAMES = tuple(t.name for t in BACKED_UP)


def key_of(table: sa.Table) -> str:
    return next(iter(table.primary_key.columns)).name


def bool_positions(table: sa.Table) -> tuple[int, ...]:
    return tuple(i for i, c in enumerate(table.columns) if isinstance(c.type, sa.Boolean))

"""A Supabase-like agent database, as seed 003's lives: uuid ids, timestamptz, jsonb,
a text[] array, numeric, an enum, bytea, real foreign keys, and columns switchover has
never heard of (``monthly_budget``, ``tier``, ``avatar``, ``settings``,
``recording_meta``). The same tables on SQLite, with the types spelled as a schema
written for PostgreSQL spells them there."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa

from switchover.core.rowhash import RowHasher

TABLES = ("voice_agent_metrics", "voice_agent_calls", "voice_agent_configs", "tenants")
"""Children first: the order to drop them in."""
DATA_TABLES = ("tenants", "voice_agent_configs", "voice_agent_calls", "voice_agent_metrics")

_PG = """
CREATE TYPE agent_tier AS ENUM ('free', 'pro', 'enterprise');
CREATE TABLE tenants (
  id uuid PRIMARY KEY,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE voice_agent_configs (
  id uuid PRIMARY KEY,
  tenant_id uuid REFERENCES tenants(id),
  name text,
  prompt text,
  voice_id text,
  language text,
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL,
  updated_at timestamptz,
  schema_version text,
  assistant_type text,
  voice_config jsonb,
  personality jsonb,
  capabilities text[],
  migrated_at timestamptz,
  migrated_from text,
  monthly_budget numeric(12, 4),
  tier agent_tier,
  avatar bytea,
  settings jsonb
);
CREATE INDEX ix_configs_tenant ON voice_agent_configs (tenant_id);
CREATE TABLE voice_agent_calls (
  id uuid PRIMARY KEY,
  tenant_id uuid REFERENCES tenants(id),
  config_id uuid REFERENCES voice_agent_configs(id) ON DELETE CASCADE,
  started_at timestamptz,
  duration_seconds numeric(10, 2),
  latency_ms double precision,
  status text,
  outcome text,
  version text,
  recording_meta jsonb
);
CREATE INDEX ix_calls_config ON voice_agent_calls (config_id);
CREATE TABLE voice_agent_metrics (
  config_id uuid PRIMARY KEY REFERENCES voice_agent_configs(id) ON DELETE CASCADE,
  tenant_id uuid,
  total_calls integer,
  avg_duration_seconds numeric,
  p95_latency_ms double precision,
  generated_at timestamptz
);
"""

_SQLITE = """
CREATE TABLE tenants (
  id UUID PRIMARY KEY,
  name TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE voice_agent_configs (
  id UUID PRIMARY KEY,
  tenant_id UUID REFERENCES tenants(id),
  name TEXT,
  prompt TEXT,
  voice_id TEXT,
  language TEXT,
  enabled BOOLEAN NOT NULL DEFAULT 1,
  created_at TIMESTAMPTZ NOT NULL,
  updated_at TIMESTAMPTZ,
  schema_version TEXT,
  assistant_type TEXT,
  voice_config JSONB,
  personality JSONB,
  capabilities TEXT[],
  migrated_at TIMESTAMPTZ,
  migrated_from TEXT,
  monthly_budget NUMERIC(12, 4),
  tier TEXT,
  avatar BLOB,
  settings JSONB
);
CREATE TABLE voice_agent_calls (
  id UUID PRIMARY KEY,
  tenant_id UUID REFERENCES tenants(id),
  config_id UUID REFERENCES voice_agent_configs(id) ON DELETE CASCADE,
  started_at TIMESTAMPTZ,
  duration_seconds NUMERIC(10, 2),
  latency_ms DOUBLE PRECISION,
  status TEXT,
  outcome TEXT,
  version TEXT,
  recording_meta JSONB
);
CREATE TABLE voice_agent_metrics (
  config_id UUID PRIMARY KEY REFERENCES voice_agent_configs(id) ON DELETE CASCADE,
  tenant_id UUID,
  total_calls INTEGER,
  avg_duration_seconds NUMERIC,
  p95_latency_ms DOUBLE PRECISION,
  generated_at TIMESTAMPTZ
);
"""

PROMPTS = [
    "Eres la recepcionista virtual de Clínica Sonrisa 🦷. Atiende las llamadas entrantes.\n"
    "- Agenda citas y confirma la hora.\n- Transfer to a human agent when asked.",
    "You make outbound follow-up calls for the campaign and also answer incoming questions.",
    None,
    "Café 東京: take orders and read them back.\nSaludo: ¡Hola! Bienvenido.",
]


def drop(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        names = sa.inspect(conn).get_table_names()
        for name in names:
            if name.startswith("switchover_"):
                conn.execute(sa.text(f'DROP TABLE "{name}"'))
        for name in TABLES:
            if name in names:
                conn.execute(sa.text(f'DROP TABLE "{name}"'))
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("DROP TYPE IF EXISTS agent_tier"))


def create(engine: sa.Engine, *, configs: int = 40, calls_each: int = 3) -> dict[str, Any]:
    """The tables and their rows; returns the ids a test needs (invalid configs, …)."""
    drop(engine)
    pg = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        for statement in (_PG if pg else _SQLITE).split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
    rng = _Rng(20261130)
    base = datetime(2025, 3, 9, 1, 59, 59, 123456, tzinfo=timezone(timedelta(hours=-6)))
    tenants = [rng.uuid() for _ in range(4)]
    tenant_rows = [
        {"id": t, "name": f"Tenant «{i}»", "created_at": base + timedelta(days=i)}
        for i, t in enumerate(tenants)
    ]
    config_rows, call_rows = [], []
    invalid: list[str] = []
    for i in range(configs):
        cid = rng.uuid()
        name: str | None = f"Agente {i} · ñandú"
        if i in (7, 23):
            name = None if i == 7 else "   "
            invalid.append(cid)
        config_rows.append(
            {
                "id": cid,
                "tenant_id": tenants[i % len(tenants)],
                "name": name,
                "prompt": PROMPTS[i % len(PROMPTS)],
                "voice_id": ["nova", None, "es-MX-DaliaNeural"][i % 3],
                "language": ["es-MX", "en", "es_mx", None][i % 4],
                "enabled": i % 9 != 0,
                "created_at": base + timedelta(hours=i, microseconds=i),
                "updated_at": None if i % 5 == 0 else base + timedelta(days=1, seconds=i),
                "schema_version": None if i % 2 else "v1",
                "monthly_budget": Decimal("1234.5678") + i if i % 4 else None,
                "tier": ["free", "pro", "enterprise", None][i % 4],
                "avatar": bytes([0, 255, i % 256, 10, 13]) if i % 3 else None,
                "settings": {"ñ": [1, 2.5, None, True], "nested": {"k": f"v{i}"}}
                if i % 2
                else None,
            }
        )
        for j in range(calls_each):
            call_rows.append(
                {
                    "id": rng.uuid(),
                    "tenant_id": tenants[i % len(tenants)],
                    "config_id": cid,
                    "started_at": base + timedelta(minutes=i * 7 + j),
                    "duration_seconds": [Decimal("93.25"), None, Decimal("4.50")][j % 3],
                    "latency_ms": [612.125, 0.1 + 0.2, 1e-7][j % 3],
                    "status": ["completed", "no-answer", "completed"][j % 3],
                    "outcome": [None, "COMPLETED", "Transferred"][(i + j) % 3],
                    "version": "v1",
                    "recording_meta": {"codec": "opus", "ms": j * 1000} if j else None,
                }
            )
    with engine.begin() as conn:
        _insert(conn, "tenants", tenant_rows)
        _insert(conn, "voice_agent_configs", config_rows)
        _insert(conn, "voice_agent_calls", call_rows)
    return {"tenants": tenants, "invalid": sorted(invalid), "configs": len(config_rows)}


def _insert(conn: sa.Connection, table: str, rows: Sequence[dict[str, Any]]) -> None:
    pg = conn.dialect.name == "postgresql"
    names = list(rows[0])
    marks = ", ".join(f":{n}" for n in names)
    out = []
    for row in rows:
        values = {}
        for k, v in row.items():
            if pg and k == "tier" and v is not None:
                values[k] = v
            elif isinstance(v, dict):
                values[k] = orjson.dumps(v).decode()
            elif not pg and isinstance(v, uuid.UUID | datetime | Decimal):
                values[k] = str(v) if not isinstance(v, Decimal) else float(v)
            else:
                values[k] = v
        out.append(values)
    cols = ", ".join(names)
    casts = {"tier": "CAST(:tier AS agent_tier)", "settings": "CAST(:settings AS jsonb)",
             "recording_meta": "CAST(:recording_meta AS jsonb)"}  # fmt: skip
    if pg:
        marks = ", ".join(casts.get(n, f":{n}") for n in names)
    conn.execute(sa.text(f"INSERT INTO {table} ({cols}) VALUES ({marks})"), out)


def digest(engine: sa.Engine, tables: Sequence[str] = DATA_TABLES) -> dict[str, str]:
    """SHA-256 of every row of each table, all columns, as the driver returns them
    (uuid, datetime, Decimal, dict, list, bytes), in key order."""
    out = {}
    with engine.connect() as conn:
        for table in tables:
            key = "config_id" if table == "voice_agent_metrics" else "id"
            h = RowHasher()
            h.add(table, conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {key}")).all())
            out[table] = f"{h.rows}:{h.hexdigest()}"
    return out


class _Rng:
    def __init__(self, seed: int) -> None:
        import random

        self.r = random.Random(seed)

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.r.getrandbits(128), version=4)


NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

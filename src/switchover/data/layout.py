"""The source tables of a data migration as they are declared, checked before any write.

:func:`load` reflects ``tenants``, ``voice_agent_configs``, ``voice_agent_calls`` and
``voice_agent_metrics``, and refuses up front, naming the table and the column, when
one lacks a column switchover reads or writes, or declares it with a type switchover
cannot write into (``voice_config`` as an ``integer``). Joins follow the declared
foreign keys (a config's tenant, a call's config), with seed 003's names where none is
declared. Written values are shaped for each column's type: a ``jsonb`` column gets
JSON, a ``text[]`` an array, ``text`` the JSON text.

The dry run and the real run call the same :func:`load`, so the dry run refuses what
the real run would refuse.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.engine import Connection

from switchover.data import reflect as r
from switchover.data import schema as s
from switchover.errors import ValidationError

_ANY = frozenset({r.TEXT, r.JSON, r.ARRAY, r.TIME, r.UUID, r.INT, r.FLOAT, r.NUMERIC,
                  r.BOOL, r.BYTES, r.ENUM, r.OTHER})  # fmt: skip
_ID = frozenset({r.TEXT, r.UUID, r.INT, r.NUMERIC, r.OTHER})
_TEXT = frozenset({r.TEXT, r.ENUM, r.OTHER})
_NUM = frozenset({r.INT, r.FLOAT, r.NUMERIC})
_BOOL = frozenset({r.BOOL, r.INT, r.NUMERIC})
_STAMP = frozenset({r.TEXT, r.TIME})
_DOC = frozenset({r.TEXT, r.JSON})
_LIST = frozenset({r.TEXT, r.JSON, r.ARRAY})

REQUIRED: dict[str, dict[str, frozenset[str]]] = {
    s.tenants.name: {},
    s.configs.name: {
        "tenant_id": _ID,
        "name": _TEXT,
        "prompt": _TEXT,
        "voice_id": _TEXT,
        "language": _TEXT,
        "enabled": _BOOL,
        "schema_version": _TEXT,
    },
    s.calls.name: {
        "tenant_id": _ID,
        "config_id": _ID,
        "status": _TEXT,
        "duration_seconds": _NUM,
        "latency_ms": _NUM,
        "outcome": _TEXT,
    },
    s.metrics.name: {
        "config_id": _ID,
        "tenant_id": _ID,
        "total_calls": _NUM,
        "avg_duration_seconds": _NUM,
        "p95_latency_ms": _NUM,
        "generated_at": _STAMP,
    },
}
V2_TYPES: dict[str, frozenset[str]] = {
    "assistant_type": _TEXT,
    "voice_config": _DOC,
    "personality": _DOC,
    "capabilities": _LIST,
    "migrated_at": _STAMP,
    "migrated_from": _TEXT,
}
"""What each v2 column may be declared as; ``migrate`` adds the ones that are missing."""

_KIND_WORDS = {
    r.TEXT: "text", r.JSON: "json/jsonb", r.ARRAY: "an array (text[])",
    r.TIME: "a timestamp", r.UUID: "uuid", r.INT: "an integer", r.FLOAT: "a float",
    r.NUMERIC: "numeric", r.BOOL: "boolean", r.ENUM: "an enum", r.OTHER: "text",
}  # fmt: skip


@dataclass(frozen=True)
class Layout:
    tenants: r.Table
    configs: r.Table
    calls: r.Table
    metrics: r.Table
    missing_v2: tuple[str, ...]
    """v2 columns the configs table lacks (``migrate`` adds them)."""

    # joins on the declared foreign keys ------------------------------------------------

    @property
    def tenant_ref(self) -> tuple[str, str, str]:
        """``(config column, tenants table, its column)``."""
        table, col = self.configs.references("tenant_id", (self.tenants.name, self.tenants.key))
        return "tenant_id", table, col

    @property
    def config_ref(self) -> str:
        """The calls column pointing at a config."""
        for col, (table, _ref) in self.calls.foreign.items():
            if table == self.configs.name:
                return col
        return "config_id"

    @property
    def metrics_ref(self) -> str:
        for col, (table, _ref) in self.metrics.foreign.items():
            if table == self.configs.name:
                return col
        return "config_id"

    def tenant_exists(self, alias: str) -> str:
        """SQL: the config ``alias`` has a tenant."""
        col, table, ref = self.tenant_ref
        return (
            f"EXISTS (SELECT 1 FROM {r.quote(table)} tn WHERE tn.{r.quote(ref)} = "
            f"{alias}.{r.quote(col)})"
        )

    def eligible(self, alias: str = "voice_agent_configs") -> str:
        """SQL: a config that can move to v2: its tenant exists and it has a name. A
        correlated EXISTS rather than ``IN (SELECT …)``, so that SQLite keeps walking
        the primary key for ``ORDER BY id LIMIT n`` instead of the tenant index."""
        return f"{self.tenant_exists(alias)} AND NOT ({self.blank(self.configs, 'name', alias)})"

    def blank(self, table: r.Table, column: str, alias: str = "") -> str:
        """SQL: the column is NULL, or an empty string where the type allows one."""
        ref = f"{alias}.{r.quote(column)}" if alias else r.quote(column)
        if table.has(column) and table[column].kind in (r.TEXT, r.OTHER):
            return f"{ref} IS NULL OR TRIM({ref}) = ''"
        return f"{ref} IS NULL"

    # writing values ------------------------------------------------------------------

    def encode(self, column: str, value: Any, *, sqlite: bool) -> Any:
        """A v2 value as the configs column's type takes it."""
        return self.encoder(column, sqlite=sqlite)(value)

    def encoder(self, column: str, *, sqlite: bool) -> Callable[[Any], Any]:
        """:meth:`encode` for one column, decided once (a batch calls it per row)."""
        kind = self.configs[column].kind if self.configs.has(column) else r.TEXT
        as_list = kind == r.ARRAY and not sqlite

        dumps = orjson.dumps

        def encode(value: Any) -> Any:
            of = type(value)
            if of is str or value is None:  # most values: no ABC check
                return value
            if not as_list and (of is dict or of is list):
                return dumps(value).decode()
            if not isinstance(value, Mapping | list | tuple):
                return value
            if as_list:
                return [v if isinstance(v, str) else dumps(v).decode() for v in value]
            return dumps(value).decode()

        return encode

    def decode(self, value: Any) -> Any:
        """A v2 value read back: JSON text parsed, jsonb and arrays as the driver gives."""
        if isinstance(value, str):
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:
                return value
        return value


def load(conn: Connection) -> Layout:
    """Reflect the four tables and check every column switchover reads or writes."""
    tables = {name: r.reflect(conn, name) for name in REQUIRED}
    for name, wanted in REQUIRED.items():
        _check(tables[name], wanted)
    configs = tables[s.configs.name]
    present = {k: v for k, v in V2_TYPES.items() if configs.has(k)}
    _check(configs, present)
    missing = tuple(k for k in V2_TYPES if not configs.has(k))
    return Layout(
        tenants=tables[s.tenants.name],
        configs=configs,
        calls=tables[s.calls.name],
        metrics=tables[s.metrics.name],
        missing_v2=missing,
    )


def _check(table: r.Table, wanted: Mapping[str, frozenset[str]]) -> None:
    if table.key and table[table.key].kind not in _ID:
        raise ValidationError(
            f"column {table.name}.{table.key} is the primary key but of type "
            f"{table[table.key].type}: a key must be uuid, an integer or text",
            field=f"{table.name}.{table.key}",
        )
    for column, kinds in wanted.items():
        if not table.has(column):
            raise ValidationError(
                f"column {table.name}.{column} does not exist: switchover reads it "
                f"({_words(kinds)}); add it or rename yours to it. Nothing was written",
                field=f"{table.name}.{column}",
            )
        col = table[column]
        if col.kind not in kinds:
            raise ValidationError(
                f"column {table.name}.{column} is {col.type}, which switchover cannot "
                f"use here: declare it as {_words(kinds)}. Nothing was written",
                field=f"{table.name}.{column}",
            )


def _words(kinds: frozenset[str]) -> str:
    if kinds == _ANY:
        return "any type"
    seen: list[str] = []
    for k in (r.TEXT, r.JSON, r.ARRAY, r.TIME, r.UUID, r.INT, r.FLOAT, r.NUMERIC, r.BOOL,
              r.ENUM):  # fmt: skip
        w = _KIND_WORDS[k]
        if k in kinds and w not in seen:
            seen.append(w)
    return " or ".join(seen)

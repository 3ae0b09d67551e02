"""The source tables as the database declares them: columns, types, keys, foreign keys.

A real agent database (seed 003's lives in Supabase) keeps ids as ``uuid`` or
``bigint``, timestamps as ``timestamptz``, v2 fields as ``jsonb`` or ``text[]``, and
columns switchover has never heard of. Everything that reads or writes those tables
asks this module what is there instead of assuming: the key to page by, the foreign
key to join on, the type to cast a written value to, and the columns a backup copies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from switchover.errors import ValidationError

TEXT, JSON, ARRAY, TIME, UUID, INT, FLOAT, NUMERIC, BOOL, BYTES, ENUM, OTHER = (
    "text", "json", "array", "time", "uuid", "int", "float", "numeric", "bool", "bytes",
    "enum", "other",
)  # fmt: skip


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    """The database's own spelling (``timestamp with time zone``, ``text[]``, ``TEXT``)."""
    kind: str
    generated: bool = False

    @property
    def writable(self) -> bool:
        return not self.generated


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: str
    foreign: dict[str, tuple[str, str]] = field(default_factory=dict)
    """``{column: (referenced table, referenced column)}``, as declared."""

    def __getitem__(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def has(self, name: str) -> bool:
        return any(c.name == name for c in self.columns)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def writable(self) -> list[str]:
        return [c.name for c in self.columns if c.writable]

    def references(self, column: str, default: tuple[str, str]) -> tuple[str, str]:
        """What ``column`` points at: the declared foreign key, else the convention."""
        return self.foreign.get(column, default)

    def signature(self) -> list[list[str]]:
        return [[c.name, c.type] for c in self.columns]


def _pg_kind(type_name: str, typtype: str, category: str) -> str:
    if category == "A":
        return ARRAY
    if typtype == "e":
        return ENUM
    if type_name in ("json", "jsonb"):
        return JSON
    if type_name == "uuid":
        return UUID
    if type_name == "bytea":
        return BYTES
    if type_name in ("smallint", "integer", "bigint"):
        return INT
    if type_name in ("real", "double precision"):
        return FLOAT
    if type_name.startswith("numeric"):
        return NUMERIC
    return {"S": TEXT, "D": TIME, "B": BOOL, "N": NUMERIC}.get(category, OTHER)


def _sqlite_kind(declared: str) -> str:
    """SQLite's affinity rules (https://sqlite.org/datatype3.html §3.1), with the names
    a schema written for PostgreSQL uses mapped to what they hold."""
    d = declared.upper()
    if d.endswith("[]"):
        return ARRAY
    if "JSON" in d:
        return JSON
    if "UUID" in d:
        return UUID
    if "BOOL" in d:
        return BOOL
    if "TIME" in d or "DATE" in d:
        return TIME
    if "INT" in d:
        return INT
    if any(x in d for x in ("CHAR", "CLOB", "TEXT")):
        return TEXT
    if not d or "BLOB" in d or "BYTEA" in d:
        return BYTES if d else OTHER
    if any(x in d for x in ("REAL", "FLOA", "DOUB")):
        return FLOAT
    return NUMERIC


def reflect(conn: sa.Connection, name: str) -> Table:
    """The table ``name`` as the database declares it; :class:`ValidationError` when it
    has no single-column primary key (rows could not be matched one to one)."""
    sqlite = conn.dialect.name == "sqlite"
    columns = _sqlite_columns(conn, name) if sqlite else _pg_columns(conn, name)
    if not columns:
        raise ValidationError(f"table {name} does not exist", field=name)
    inspector = sa.inspect(conn)
    pk = inspector.get_pk_constraint(name).get("constrained_columns") or []
    if len(pk) != 1:
        raise ValidationError(
            f"table {name} needs a single-column primary key (it has "
            f"{', '.join(pk) or 'none'}): a backup matches rows by it",
            field=name,
        )
    foreign: dict[str, tuple[str, str]] = {}
    for fk in inspector.get_foreign_keys(name):
        cols, refs = fk.get("constrained_columns") or [], fk.get("referred_columns") or []
        if len(cols) == 1 and len(refs) == 1:
            foreign[cols[0]] = (fk["referred_table"], refs[0])
    return Table(name, tuple(columns), pk[0], foreign)


def _pg_columns(conn: sa.Connection, name: str) -> list[Column]:
    exists = conn.exec_driver_sql("SELECT to_regclass(%s)", (name,)).scalar()
    if exists is None:
        return []
    rows = conn.exec_driver_sql(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typtype, t.typcategory, "
        "COALESCE(et.typname, t.typname), a.attgenerated <> '' "
        "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        (name,),
    ).all()
    out = []
    for attname, formatted, typtype, category, base, generated in rows:
        kind = _pg_kind(formatted, typtype, category)
        if kind == OTHER and base in ("json", "jsonb"):
            kind = JSON
        out.append(Column(attname, formatted, kind, bool(generated)))
    return out


def _sqlite_columns(conn: sa.Connection, name: str) -> list[Column]:
    rows = conn.exec_driver_sql(f"PRAGMA table_xinfo({quote(name)})").all()
    # hidden: 0 ordinary, 2/3 generated (1 is a virtual table's hidden column)
    return [
        Column(r[1], r[2] or "", _sqlite_kind(r[2] or ""), r[6] in (2, 3))
        for r in rows
        if r[6] != 1
    ]


def quote(name: str) -> str:
    """An identifier, double-quoted (every name here comes from the catalogue)."""
    return '"' + name.replace('"', '""') + '"'


def cols(names: Iterable[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + quote(n) for n in names)


def cast(conn_or_dialect: Any, column: Column) -> str:
    """A placeholder that PostgreSQL reads as the column's type (``VALUES`` lists and
    ``unnest`` give text otherwise); plain on SQLite."""
    name = getattr(conn_or_dialect, "name", None) or conn_or_dialect.dialect.name
    return "?" if name == "sqlite" else f"CAST(? AS {column.type})"

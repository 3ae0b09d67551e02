"""The source database of a data migration: connection, scope, and fast bulk access.

Bulk work goes through the DBAPI cursor with keyset pagination (``WHERE key > ? ORDER
BY key LIMIT n``): constant memory at any table size, plain tuples, and the same code on
SQLite and PostgreSQL (only the placeholder differs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from switchover.data import schema as s
from switchover.errors import StoreError, ValidationError
from switchover.store.engine import create_store_engine, redact_url
from switchover.store.repository import Store, _translated

Progress = Callable[[str, int, int | None], None]
"""``progress(step, done, total)``; ``total`` is ``None`` when not known in advance."""


def no_progress(step: str, done: int, total: int | None) -> None:
    return None


class Source:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_store_engine(url, statement_timeout_ms=None)  # long batches
        self.store = Store(self.engine)
        self.sqlite = self.engine.dialect.name == "sqlite"
        if self.sqlite:
            _transactional_ddl(self.engine)
        self.ph = "?" if self.sqlite else "%s"

    def dispose(self) -> None:
        self.engine.dispose()

    @property
    def where(self) -> str:
        return redact_url(self.url)

    # schema --------------------------------------------------------------------------

    def ensure_own(self) -> None:
        """Create switchover's run, backup and lock tables if missing, and add the columns
        a newer switchover keeps in them (safe to repeat)."""
        with _translated():
            s.own.create_all(self.engine, checkfirst=True)
            inspector = sa.inspect(self.engine)
            for table in s.own.tables.values():
                have = {c["name"] for c in inspector.get_columns(table.name)}
                missing = [c for c in table.columns if c.name not in have]
                if not missing:
                    continue
                with self.engine.begin() as conn:
                    for col in missing:
                        ddl = col.type.compile(dialect=self.engine.dialect)
                        conn.exec_driver_sql(
                            f"ALTER TABLE {table.name} ADD COLUMN {col.name} {ddl}"
                        )

    def create_source_tables(self) -> None:
        with _translated():
            s.meta.create_all(self.engine, checkfirst=True)

    def has(self, *tables: sa.Table) -> bool:
        with _translated():
            names = set(sa.inspect(self.engine).get_table_names())
        return all(t.name in names for t in tables)

    def require(self, *tables: sa.Table) -> None:
        with _translated():
            names = set(sa.inspect(self.engine).get_table_names())
        missing = [t.name for t in tables if t.name not in names]
        if missing:
            raise ValidationError(
                f"{self.where} has no table {', '.join(missing)}: point --source at the "
                "database that holds seed 003's tables, or create demo data with "
                "`switchover data seed-demo`",
                field="source",
            )

    def columns(self, table: str) -> list[str]:
        with _translated():
            return [c["name"] for c in sa.inspect(self.engine).get_columns(table)]

    def has_v2_columns(self) -> bool:
        have = set(self.columns(s.configs.name))
        return all(c.name in have for c in s.v2_columns())

    def ensure_v2_columns(self) -> list[str]:
        """Add the v2 columns a v1 ``voice_agent_configs`` lacks (nullable: legacy keeps
        working). Returns the names added."""
        have = set(self.columns(s.configs.name))
        with _translated():
            added: list[str] = []
            with self.engine.begin() as conn:
                for col in s.v2_columns():
                    if col.name in have:
                        continue
                    ddl = col.type.compile(dialect=self.engine.dialect)
                    conn.exec_driver_sql(
                        f"ALTER TABLE {s.configs.name} ADD COLUMN {col.name} {ddl}"
                    )
                    added.append(col.name)
        return added

    # transactions and cursors ----------------------------------------------------------

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with _translated(), self.engine.begin() as conn:
            yield conn

    @contextmanager
    def transaction(self, conn: Connection) -> Iterator[Connection]:
        """A transaction on a connection the caller holds: a loop of batches checks
        one out (and pings it) once, not at every batch."""
        with _translated(), conn.begin():
            yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with _translated(), self.engine.connect() as conn:
            yield conn

    def sql(self, text: str) -> str:
        """Write placeholders as ``?``; this turns them into the driver's."""
        return text if self.sqlite else text.replace("?", "%s")

    @contextmanager
    def _driver_errors(self) -> Iterator[None]:
        """The raw cursor bypasses SQLAlchemy's translation: name the driver's refusal
        (its first line says what, never the parameters) as a :class:`StoreError`."""
        try:
            yield
        except self.engine.dialect.dbapi.Error as exc:  # type: ignore[union-attr]
            text = str(exc).strip()
            first = text.splitlines()[0] if text else ""
            raise StoreError(
                f"{self.where} refused a query: {type(exc).__name__}: {first}"
            ) from exc

    def fetch(
        self, conn: Connection, text: str, params: Sequence[Any] = ()
    ) -> list[tuple[Any, ...]]:
        cur = conn.connection.cursor()
        try:
            with self._driver_errors():
                cur.execute(self.sql(text), tuple(params))
                return [tuple(r) for r in cur.fetchall()]
        finally:
            cur.close()

    def scalar(self, conn: Connection, text: str, params: Sequence[Any] = ()) -> Any:
        rows = self.fetch(conn, text, params)
        return rows[0][0] if rows else None

    def execute(self, conn: Connection, text: str, params: Sequence[Any] = ()) -> int:
        cur = conn.connection.cursor()
        try:
            with self._driver_errors():
                cur.execute(self.sql(text), tuple(params))
            return int(cur.rowcount or 0)
        finally:
            cur.close()

    def executemany(self, conn: Connection, text: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        cur = conn.connection.cursor()
        try:
            with self._driver_errors():
                cur.executemany(self.sql(text), rows)
        finally:
            cur.close()

    def pages(
        self,
        conn: Connection,
        table: str,
        columns: Sequence[str],
        *,
        key: str = "id",
        where: str = "",
        params: Sequence[Any] = (),
        after: str | None = None,
        size: int = 5000,
        alias: str = "",
        aliased_from: bool = False,
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Rows in key order, ``size`` at a time. The key must be the first column.
        ``aliased_from``: ``table`` is a whole FROM clause that already names ``alias``."""
        prefix = f"{alias}." if alias else ""
        cols = ", ".join(f"{prefix}{c}" for c in columns)
        frm = table if aliased_from else f"{table} {alias}".strip()
        cond = [where] if where else []
        last = after
        while True:
            parts = [*cond, f"{prefix}{key} > ?"] if last is not None else cond
            clause = f" WHERE {' AND '.join(f'({p})' for p in parts)}" if parts else ""
            args = (*params, last) if last is not None else tuple(params)
            rows = self.fetch(
                conn, f"SELECT {cols} FROM {frm}{clause} ORDER BY {prefix}{key} LIMIT {size}", args
            )
            if not rows:
                return
            yield rows
            if len(rows) < size:
                return
            last = rows[-1][0]


SQLITE_CACHE_KIB = 256 * 1024
"""Page cache per SQLite connection of a data command, at most (used as pages are read)."""


def _transactional_ddl(engine: sa.Engine) -> None:
    """pysqlite commits before DDL and only opens a transaction at the first INSERT or
    UPDATE: a backup's ``CREATE TABLE`` would outlive a failed step. SQLAlchemy's recipe
    (https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl):
    the driver leaves transactions alone and every ``begin()`` emits ``BEGIN``."""

    @sa.event.listens_for(engine, "connect")
    def _autocommit_driver(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        # a data command reads and writes whole tables: SQLite's default page cache
        # (2 MB) made a restore of 1,000,000 configs a third slower than this one
        dbapi_conn.execute(f"PRAGMA cache_size={-SQLITE_CACHE_KIB}")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")


class Scope:
    """Which tenants a command works on: all of them, or the ones listed."""

    def __init__(self, tenant_ids: Sequence[str] | None) -> None:
        ids = [t.strip() for t in tenant_ids or () if t.strip()]
        self.tenant_ids: tuple[str, ...] | None = tuple(sorted(set(ids))) or None

    @classmethod
    def parse(cls, text: str | None) -> Scope:
        if text is None:
            return cls(None)
        ids = [t.strip() for t in text.split(",")]
        if not any(ids):
            raise ValidationError(
                "--tenant-ids is empty: give tenant ids separated by commas, e.g. t1,t2",
                field="tenant_ids",
            )
        return cls(ids)

    def clause(self, column: str = "tenant_id") -> tuple[str, tuple[str, ...]]:
        if self.tenant_ids is None:
            return "", ()
        marks = ", ".join("?" for _ in self.tenant_ids)
        return f"{column} IN ({marks})", self.tenant_ids

    def join(self, *parts: str, column: str = "tenant_id") -> tuple[str, tuple[str, ...]]:
        """The scope's clause AND-ed with ``parts``."""
        mine, params = self.clause(column)
        every = [p for p in (*parts, mine) if p]
        return " AND ".join(f"({p})" for p in every), params

    def to_list(self) -> list[str] | None:
        return list(self.tenant_ids) if self.tenant_ids is not None else None

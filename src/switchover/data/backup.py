"""Backups: whole rows, whatever their columns and types, with a checksum over them.

Each table of a backup is copied into a table of its own, ``switchover_<backup
id>_<table>``, declared like the original: on PostgreSQL ``CREATE TABLE … (LIKE …
INCLUDING ALL EXCLUDING INDEXES)`` (uuid, timestamptz, jsonb, arrays, numeric, bytea,
enums and columns switchover does not know keep their types; the primary key is added
once the rows are in), on SQLite the original's declared types, which give the same
affinities. One ``INSERT … SELECT`` per table copies the values as the database holds
them: nothing passes through Python.

The checksum is a SHA-256 over a canonical text form of every row, all columns, in key
order: on PostgreSQL the ``md5`` of each row's text (``ROW(…)::text`` under fixed
``TimeZone``, ``DateStyle``, ``extra_float_digits`` and ``bytea_output``) aggregated in
the database; on SQLite the values' JSON with bytes and decimals tagged
(:mod:`switchover.core.rowhash`). Restore checks the sum first (a damaged backup
restores nothing), checks that each table still has the columns and types it had,
puts the rows back in place (``UPDATE … FROM`` the copy for rows that exist,
``INSERT`` for rows deleted since; parents first, so real foreign keys hold), removes
metrics generated since for the backed-up configs, and sums the restored rows again:
if they differ, the transaction rolls back and nothing changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from switchover.core.rowhash import RowHasher
from switchover.data import reflect as r
from switchover.data import schema as s
from switchover.data.source import Progress, Scope, Source, no_progress
from switchover.errors import DataCheckError, NotFoundError, ValidationError
from switchover.store.locks import NamedLock, local_holder

LOCK_NAME = "data-migration"
"""Shared with runs: a restore never races a migration."""

KINDS = ("pre-run", "pre-fix", "manual", "sunset")
PAGE = 20_000


@dataclass(frozen=True)
class Part:
    """One table of a backup."""

    table: str
    copy: str
    key: str
    rows: int
    columns: list[list[str]]
    prune: list[str] | None = None
    """``[column, parent table]``: live rows whose ``column`` points at a backed-up
    parent row but that the backup does not hold are removed on restore (metrics
    generated after the backup)."""

    @property
    def names(self) -> list[str]:
        return [c[0] for c in self.columns]


@dataclass(frozen=True)
class BackupInfo:
    id: str
    run_id: str | None
    created_at: str
    tenant_ids: list[str] | None
    configs: int
    calls: int
    metrics: int
    checksum: str
    kind: str = "pre-run"
    parts: list[Part] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tables"] = {p.table: p.rows for p in self.parts}
        d["label"] = label(self)
        del d["parts"]
        return d


def label(info: BackupInfo) -> str:
    """What the backup was taken before, as ``backups`` shows it."""
    if info.kind == "pre-run" and info.run_id:
        return f"pre-run backup of {info.run_id}"
    if info.kind == "pre-fix":
        return "before validate --fix"
    return info.kind


def backup_id_for(now: datetime) -> str:
    return now.strftime("backup_%Y%m%d_%H%M%S")


def copy_name(backup_id: str, table: str) -> str:
    """``switchover_<id>_<table>``, or a hashed name where PostgreSQL's 63 bytes are short."""
    name = f"switchover_{backup_id}_{table}"
    if len(name.encode()) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"switchover_{backup_id}_{digest}"[:63]


def _new_id(source: Source, conn: Connection, now: datetime, tables: Sequence[str]) -> str:
    """``backup_<time>``, or ``_2``, ``_3`` … when that id or one of its copy tables (left
    behind by a dropped backups table) is taken."""
    base = backup_id_for(now)
    taken = {
        row[0]
        for row in source.fetch(
            conn, f"SELECT id FROM {s.backups.name} WHERE id = ? OR id LIKE ?", (base, base + "_%")
        )
    }
    existing = set(sa.inspect(conn).get_table_names())

    def free(candidate: str) -> bool:
        return candidate not in taken and not any(
            copy_name(candidate, table) in existing for table in tables
        )

    candidate, n = base, 1
    while not free(candidate):
        n += 1
        candidate = f"{base}_{n}"
    return candidate


@dataclass(frozen=True)
class Selection:
    """What to copy of one table: its rows matching ``where`` (all when empty)."""

    table: str
    where: str = ""
    params: tuple[Any, ...] = ()
    prune: tuple[str, str] | None = None


def migration_tables(scope: Scope) -> list[Selection]:
    """A data migration's backup: configs, calls and metrics of the run's tenants."""
    where, params = scope.join()
    return [
        Selection(s.configs.name, where, params),
        Selection(s.calls.name, where, params),
        Selection(s.metrics.name, where, params, prune=("config_id", s.configs.name)),
    ]


def create(
    source: Source,
    conn: Connection,
    scope: Scope,
    *,
    now: datetime,
    run_id: str | None,
    kind: str = "pre-run",
    tables: Sequence[Selection] | None = None,
    progress: Progress = no_progress,
) -> BackupInfo:
    """Copy the selected rows and record the backup, inside the caller's transaction."""
    selections = list(tables) if tables is not None else migration_tables(scope)
    backup_id = _new_id(source, conn, now, [sel.table for sel in selections])
    parts: list[Part] = []
    done = 0
    for sel in selections:
        shape = r.reflect(conn, sel.table)
        copy = copy_name(backup_id, sel.table)
        _create_copy(source, conn, shape, copy)
        clause = f" WHERE {sel.where}" if sel.where else ""
        rows = source.execute(
            conn,
            f"INSERT INTO {r.quote(copy)} ({r.cols(_stored(source, shape))}){_overriding(source)}"
            f" SELECT {r.cols(_stored(source, shape))} FROM {r.quote(shape.name)}{clause}",
            sel.params,
        )
        if not source.sqlite:
            source.execute(
                conn, f"ALTER TABLE {r.quote(copy)} ADD PRIMARY KEY ({r.quote(shape.key)})"
            )
        parts.append(
            Part(sel.table, copy, shape.key, rows, shape.signature(),
                 list(sel.prune) if sel.prune else None)
        )  # fmt: skip
        done += rows
        progress("backup", done, None)
    checksum = _sum(source, conn, parts, restored=False)
    counts = {p.table: p.rows for p in parts}
    info = BackupInfo(
        id=backup_id,
        run_id=run_id,
        created_at=now.isoformat(),
        tenant_ids=scope.to_list(),
        configs=counts.get(s.configs.name, 0),
        calls=counts.get(s.calls.name, 0),
        metrics=counts.get(s.metrics.name, 0),
        checksum=checksum,
        kind=kind,
        parts=parts,
    )
    source.execute(
        conn,
        f"INSERT INTO {s.backups.name} (id, run_id, created_at, tenant_ids, configs, calls, "
        "metrics, checksum, kind, parts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            info.id,
            info.run_id,
            info.created_at,
            orjson.dumps(info.tenant_ids).decode() if info.tenant_ids is not None else None,
            info.configs,
            info.calls,
            info.metrics,
            info.checksum,
            info.kind,
            orjson.dumps([asdict(p) for p in parts]).decode(),
        ),
    )
    return info


def _stored(source: Source, shape: r.Table) -> list[str]:
    """The columns a copy is filled with: PostgreSQL computes generated ones itself."""
    return shape.names if source.sqlite else shape.writable


def _overriding(source: Source) -> str:
    return "" if source.sqlite else " OVERRIDING SYSTEM VALUE"


def _create_copy(source: Source, conn: Connection, shape: r.Table, copy: str) -> None:
    if source.sqlite:
        body = ", ".join(f"{r.quote(c.name)} {c.type}".rstrip() for c in shape.columns)
        source.execute(
            conn, f"CREATE TABLE {r.quote(copy)} ({body}, PRIMARY KEY ({r.quote(shape.key)}))"
        )
    else:
        source.execute(
            conn,
            f"CREATE TABLE {r.quote(copy)} (LIKE {r.quote(shape.name)} INCLUDING ALL "
            "EXCLUDING INDEXES)",
        )


# --- checksums ------------------------------------------------------------------------

_CANONICAL_TEXT = (
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL DateStyle = 'ISO, YMD'",
    "SET LOCAL IntervalStyle = 'iso_8601'",
    "SET LOCAL extra_float_digits = 1",
    "SET LOCAL bytea_output = 'hex'",
)


def _sum(source: Source, conn: Connection, parts: Sequence[Part], *, restored: bool) -> str:
    """SHA-256 over every part: the copy's rows, or (``restored``) the live rows whose
    keys the copy holds, all columns, in key order."""
    if source.sqlite:
        hasher = RowHasher()
        for part in parts:
            hasher.add(part.table, _sqlite_rows(source, conn, part, restored=restored))
        return hasher.hexdigest()
    for statement in _CANONICAL_TEXT:
        source.execute(conn, statement)
    h = hashlib.sha256()
    for part in parts:
        row = ", ".join(f"t.{r.quote(n)}" for n in part.names)
        key = r.quote(part.key)
        frm = (
            f"{r.quote(part.table)} t JOIN {r.quote(part.copy)} b ON b.{key} = t.{key}"
            if restored
            else f"{r.quote(part.copy)} t"
        )
        n, digest = source.fetch(
            conn,
            f"SELECT COUNT(*), COALESCE(md5(string_agg(md5(ROW({row})::text), '' "
            f"ORDER BY t.{key})), '') FROM {frm}",
        )[0]
        h.update(orjson.dumps([part.table, n, digest]) + b"\n")
    return h.hexdigest()


def _sqlite_rows(
    source: Source, conn: Connection, part: Part, *, restored: bool
) -> Iterator[tuple[Any, ...]]:
    key = r.quote(part.key)
    names = r.cols(part.names, "t")
    frm = (
        f"{r.quote(part.table)} t JOIN {r.quote(part.copy)} b ON b.{key} = t.{key}"
        if restored
        else f"{r.quote(part.copy)} t"
    )
    last: Any = None
    while True:
        cond = "" if last is None else f" WHERE t.{key} > ?"
        rows = source.fetch(
            conn,
            f"SELECT t.{key}, {names} FROM {frm}{cond} ORDER BY t.{key} LIMIT {PAGE}",
            () if last is None else (last,),
        )
        for row in rows:
            yield row[1:]
        if len(rows) < PAGE:
            return
        last = rows[-1][0]


# --- reading ----------------------------------------------------------------------------

_COLUMNS = (
    "id", "run_id", "created_at", "tenant_ids", "configs", "calls", "metrics", "checksum",
    "kind", "parts",
)  # fmt: skip


def _select(source: Source) -> str:
    """The backups' SELECT over the table as it is: a column an older switchover did not
    make reads as NULL, so listing and verifying backups create and alter nothing (a
    role that may only read can run them)."""
    have = set(source.columns(s.backups.name))
    cols = ", ".join(c if c in have else f"NULL AS {c}" for c in _COLUMNS)
    return f"SELECT {cols} FROM {s.backups.name}"


def _row(row: tuple[Any, ...]) -> BackupInfo:
    parts = [Part(**p) for p in orjson.loads(row[9])] if row[9] else []
    return BackupInfo(
        id=row[0],
        run_id=row[1],
        created_at=row[2],
        tenant_ids=orjson.loads(row[3]) if row[3] else None,
        configs=row[4],
        calls=row[5],
        metrics=row[6],
        checksum=row[7],
        kind=row[8] or "pre-run",
        parts=parts,
    )


def list_backups(source: Source) -> list[BackupInfo]:
    if not source.has(s.backups):
        return []
    with source.connect() as conn:
        rows = source.fetch(conn, f"{_select(source)} ORDER BY created_at DESC, id DESC")
    return [_row(row) for row in rows]


def get(source: Source, conn: Connection, backup_id: str) -> BackupInfo:
    if not backup_id.strip():
        raise ValidationError(
            "`backup_id` is empty: list them with `switchover data backups`", field="backup_id"
        )
    rows = source.fetch(conn, f"{_select(source)} WHERE id = ?", (backup_id,))
    if not rows:
        raise NotFoundError(
            f"no backup {backup_id!r} in {source.where}: list them with 'switchover data backups'",
            field="backup_id",
        )
    info = _row(rows[0])
    if not info.parts:
        raise ValidationError(
            f"backup {backup_id} was made by an older switchover (rows without their "
            "types); restore it with that version",
            field="backup_id",
        )
    return info


def verify(source: Source, backup_id: str) -> BackupInfo:
    """The backup, after checking its rows against its checksum."""
    if not source.has(s.backups):
        raise NotFoundError(
            f"no backups in {source.where}: `switchover data migrate` makes one",
            field="backup_id",
        )
    with source.connect() as conn:
        info = get(source, conn, backup_id)
        actual = _sum(source, conn, info.parts, restored=False)
    if actual != info.checksum:
        raise DataCheckError(
            f"backup {backup_id} is damaged: its rows hash to {actual[:12]}…, not the "
            f"recorded {info.checksum[:12]}…; nothing was restored"
        )
    return info


def check_shapes(source: Source, info: BackupInfo) -> None:
    """Each table still has the columns and types it had when the backup was taken."""
    with source.connect() as conn:
        for part in info.parts:
            try:
                now = r.reflect(conn, part.table).signature()
            except ValidationError:
                raise ValidationError(
                    f"table {part.table} is gone since backup {info.id}: recreate it, then restore",
                    field=part.table,
                ) from None
            if now == part.columns:
                continue
            had, has = dict(map(tuple, part.columns)), dict(map(tuple, now))
            for name, typ in had.items():
                if name not in has:
                    why = "is missing"
                elif has[name] != typ:
                    why = f"is {has[name]}, it was {typ}"
                else:
                    continue
                raise ValidationError(
                    f"column {part.table}.{name} {why} since backup {info.id}: put it "
                    "back as it was, then restore; nothing was restored",
                    field=f"{part.table}.{name}",
                )
            extra = [n for n in has if n not in had]
            raise ValidationError(
                f"column {part.table}.{extra[0] if extra else '?'} was added since backup "
                f"{info.id}: drop it or restore into a copy; nothing was restored",
                field=f"{part.table}.{extra[0] if extra else '?'}",
            )


# --- restore ----------------------------------------------------------------------------


class Restoration:
    """A restore prepared: the lock held, the checksum and the tables checked. ``run``
    does the swap; a caller (a data rollback) may do its own step in between."""

    def __init__(self, source: Source, info: BackupInfo, lock: NamedLock) -> None:
        self.source = source
        self.info = info
        self.lock = lock

    def run(
        self,
        progress: Progress = no_progress,
        *,
        then: Callable[[Connection], object] | None = None,
    ) -> dict[str, Any]:
        """The swap, in one transaction; ``then`` writes in that same transaction."""
        self.lock.renew()
        with self.source.begin() as conn:
            off = _triggers_off(self.source, conn, [p.table for p in self.info.parts])
            restored = _swap(self.source, conn, self.info, progress)
            _triggers_on(self.source, conn, off)
            if then is not None:
                then(conn)
        return {
            "backup": self.info.to_dict(),
            "restored": {
                "configs": self.info.configs,
                "calls": self.info.calls,
                "metrics": self.info.metrics,
            },
            "tables": restored,
            "triggers_bypassed": [f"{table}.{name}" for table, name, _ in off],
            "checksum_verified": True,
        }


@contextmanager
def prepared(
    source: Source, backup_id: str, *, verified: BackupInfo | None = None, holder: str = ""
) -> Iterator[Restoration]:
    """Take the data-migration lock, verify the backup's checksum and its tables' columns;
    nothing is written until :meth:`Restoration.run`."""
    source.ensure_own()
    lock = NamedLock(
        source.store,
        LOCK_NAME,
        local_holder(holder or f"restore of {backup_id}"),
        ttl=300.0,
        table=s.data_locks,
    )
    lock.require("a data migration or restore")
    try:
        info = (
            verified
            if verified is not None and verified.id == backup_id
            else verify(source, backup_id)
        )
        check_shapes(source, info)
        yield Restoration(source, info, lock)
    finally:
        lock.release()


def restore(
    source: Source,
    backup_id: str,
    *,
    progress: Progress = no_progress,
    verified: BackupInfo | None = None,
) -> dict[str, Any]:
    """Put the backup's rows back, verified before (unless the caller just did, passing
    ``verified``) and after, in one transaction."""
    with prepared(source, backup_id, verified=verified) as restoration:
        return restoration.run(progress)


def _swap(source: Source, conn: Connection, info: BackupInfo, progress: Progress) -> dict[str, int]:
    parts = {p.table: p for p in info.parts}
    total = sum(p.rows for p in info.parts)
    changed: dict[str, int] = {}
    for part in info.parts:
        if part.prune and part.prune[1] in parts:
            column, parent = part.prune
            parent_part = parts[parent]
            key = r.quote(part.key)
            source.execute(
                conn,
                f"DELETE FROM {r.quote(part.table)} WHERE {r.quote(column)} IN "
                f"(SELECT {r.quote(parent_part.key)} FROM {r.quote(parent_part.copy)}) "
                f"AND {key} NOT IN (SELECT {key} FROM {r.quote(part.copy)})",
            )
    done = 0
    for part in info.parts:
        shape = r.reflect(conn, part.table)
        changed[part.table] = _put_back(source, conn, shape, part)
        done += part.rows
        progress("restore", done, total)
    after = _sum(source, conn, info.parts, restored=True)
    if after != info.checksum:
        raise DataCheckError(
            f"the rows restored from {info.id} do not match its checksum "
            f"({after[:12]}… ≠ {info.checksum[:12]}…), so the restore was rolled back"
            + (
                "; a trigger that rewrites rows on UPDATE or INSERT (an updated_at "
                "trigger) does this on SQLite: drop it for the restore"
                if source.sqlite
                else ""
            )
        )
    return changed


_ENABLE = {"O": "ENABLE TRIGGER", "A": "ENABLE ALWAYS TRIGGER"}
"""How to turn a trigger back on, by ``pg_trigger.tgenabled`` (origin, always)."""


def _triggers_off(
    source: Source, conn: Connection, tables: Sequence[str]
) -> list[tuple[str, str, str]]:
    """Turn off the user triggers of ``tables`` that would fire during the restore, in
    its transaction (PostgreSQL): a restore puts rows back as they were, and a trigger
    that stamps ``updated_at`` (Supabase's ``moddatetime``) would rewrite every row it
    sets back, so the restored rows could never match the backup's checksum. Constraint
    triggers (foreign keys) are internal and stay on. Returns ``(table, trigger, mode)``
    for :func:`_triggers_on`; a failure rolls the transaction back, triggers included.
    SQLite cannot turn triggers off: a rewriting trigger fails the checksum there."""
    if source.sqlite:
        return []
    off: list[tuple[str, str, str]] = []
    for table in tables:
        found = source.fetch(
            conn,
            "SELECT tgname, CAST(tgenabled AS text) FROM pg_trigger "
            "WHERE tgrelid = CAST(? AS regclass) AND NOT tgisinternal "
            "AND tgenabled IN ('O', 'A') ORDER BY tgname",
            (r.quote(table),),
        )
        for name, mode in found:
            try:
                source.execute(
                    conn, f"ALTER TABLE {r.quote(table)} DISABLE TRIGGER {r.quote(name)}"
                )
            except Exception as exc:
                raise DataCheckError(
                    f"restoring {table} needs its trigger {name} off for the restore (a "
                    "trigger could rewrite the rows set back), and PostgreSQL refused: "
                    f"{exc}. Run the restore as the table's owner; nothing was restored"
                ) from exc
            off.append((table, name, mode))
    return off


def _triggers_on(source: Source, conn: Connection, off: Sequence[tuple[str, str, str]]) -> None:
    for table, name, mode in off:
        source.execute(conn, f"ALTER TABLE {r.quote(table)} {_ENABLE[mode]} {r.quote(name)}")


def _put_back(source: Source, conn: Connection, shape: r.Table, part: Part) -> int:
    """Rows that differ from the copy are set back; rows deleted since are inserted."""
    live, copy, key = r.quote(shape.name), r.quote(part.copy), r.quote(shape.key)
    values = [c for c in shape.columns if c.writable and c.name != shape.key]
    changed = 0
    if values:
        sets = ", ".join(f"{r.quote(c.name)} = b.{r.quote(c.name)}" for c in values)
        differ = " OR ".join(_differs(source, live, c) for c in values)
        changed = source.execute(
            conn,
            f"UPDATE {live} SET {sets} FROM {copy} AS b WHERE {live}.{key} = b.{key} "
            f"AND ({differ})",
        )
    names = r.cols(shape.writable)
    changed += source.execute(
        conn,
        f"INSERT INTO {live} ({names}){_overriding(source)} SELECT {r.cols(shape.writable, 'b')} "
        f"FROM {copy} b WHERE NOT EXISTS (SELECT 1 FROM {live} t WHERE t.{key} = b.{key})",
    )
    return changed


def _differs(source: Source, live: str, c: r.Column) -> str:
    """``live`` and the copy ``b`` differ in column ``c`` (NULLs compared as values)."""
    mine, theirs = f"{live}.{r.quote(c.name)}", f"b.{r.quote(c.name)}"
    if source.sqlite:
        return f"{mine} IS NOT {theirs}"
    if c.kind in (r.JSON, r.OTHER, r.ARRAY):  # json and some others have no equality
        return f"CAST({mine} AS text) IS DISTINCT FROM CAST({theirs} AS text)"
    return f"{mine} IS DISTINCT FROM {theirs}"

"""Backups: a copy of the rows a migration touches, with a SHA-256 over them.

A backup copies ``voice_agent_configs``, ``voice_agent_calls`` and
``voice_agent_metrics`` (for the run's tenants) into ``switchover_backup_<table>`` with
one ``INSERT … SELECT`` per table, so the values keep their database types exactly.
Its checksum (:mod:`switchover.core.rowhash`) is computed over the copied rows. Restore
checks that sum first (a damaged backup restores nothing), swaps the rows back in one
transaction, and computes the sum again over the restored rows: if it differs, the
transaction rolls back and nothing changes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from switchover.core.rowhash import RowHasher
from switchover.data import schema as s
from switchover.data.source import Progress, Scope, Source, no_progress
from switchover.errors import DataCheckError, NotFoundError, ValidationError
from switchover.store.locks import NamedLock, local_holder

LOCK_NAME = "data-migration"
"""Shared with runs: a restore never races a migration."""


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def backup_id_for(now: datetime) -> str:
    return now.strftime("backup_%Y%m%d_%H%M%S")


def _cols(table: sa.Table) -> str:
    return ", ".join(c.name for c in table.columns)


def _new_id(source: Source, conn: Connection, now: datetime) -> str:
    base = backup_id_for(now)
    taken = {
        r[0]
        for r in source.fetch(
            conn, f"SELECT id FROM {s.backups.name} WHERE id = ? OR id LIKE ?", (base, base + "_%")
        )
    }
    if base not in taken:
        return base
    n = 2
    while f"{base}_{n}" in taken:
        n += 1
    return f"{base}_{n}"


def create(
    source: Source,
    conn: Connection,
    scope: Scope,
    *,
    now: datetime,
    run_id: str | None,
    progress: Progress = no_progress,
) -> BackupInfo:
    """Copy the scope's rows and record the backup, inside the caller's transaction."""
    backup_id = _new_id(source, conn, now)
    counts: dict[str, int] = {}
    for table in s.BACKED_UP:
        mirror = s.MIRRORS[table.name]
        where, params = scope.join()
        clause = f" WHERE {where}" if where else ""
        counts[table.name] = source.execute(
            conn,
            f"INSERT INTO {mirror.name} (backup_id, {_cols(table)}) "
            f"SELECT ?, {_cols(table)} FROM {table.name}{clause}",
            (backup_id, *params),
        )
        progress("backup", sum(counts.values()), None)
    checksum = _mirror_sum(source, conn, backup_id)
    info = BackupInfo(
        id=backup_id,
        run_id=run_id,
        created_at=now.isoformat(),
        tenant_ids=scope.to_list(),
        configs=counts[s.configs.name],
        calls=counts[s.calls.name],
        metrics=counts[s.metrics.name],
        checksum=checksum,
    )
    source.execute(
        conn,
        f"INSERT INTO {s.backups.name} (id, run_id, created_at, tenant_ids, configs, calls, "
        "metrics, checksum) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            info.id,
            info.run_id,
            info.created_at,
            orjson.dumps(info.tenant_ids).decode() if info.tenant_ids is not None else None,
            info.configs,
            info.calls,
            info.metrics,
            info.checksum,
        ),
    )
    return info


def _mirror_sum(source: Source, conn: Connection, backup_id: str) -> str:
    """The sum over the backup's own rows."""
    return _sum(source, conn, backup_id, restored=False)


def _restored_sum(source: Source, conn: Connection, backup_id: str) -> str:
    """The sum over the live rows whose keys the backup holds (a join, page by page)."""
    return _sum(source, conn, backup_id, restored=True)


def _sum(source: Source, conn: Connection, backup_id: str, *, restored: bool) -> str:
    hasher = RowHasher()
    for table in s.BACKED_UP:
        mirror = s.MIRRORS[table.name]
        key = s.key_of(table)
        if restored:
            frm = f"{table.name} t JOIN {mirror.name} m ON m.{key} = t.{key} AND m.backup_id = ?"
            pages = source.pages(
                conn, frm, [c.name for c in table.columns], key=key, alias="t",
                params=(backup_id,), aliased_from=True,
            )  # fmt: skip
        else:
            pages = source.pages(
                conn, mirror.name, [c.name for c in table.columns], key=key,
                where="backup_id = ?", params=(backup_id,),
            )  # fmt: skip
        for rows in pages:
            hasher.add(table.name, rows, s.bool_positions(table))
    return hasher.hexdigest()


def _row(r: tuple[Any, ...]) -> BackupInfo:
    return BackupInfo(
        id=r[0],
        run_id=r[1],
        created_at=r[2],
        tenant_ids=orjson.loads(r[3]) if r[3] else None,
        configs=r[4],
        calls=r[5],
        metrics=r[6],
        checksum=r[7],
    )


_SELECT = (
    f"SELECT id, run_id, created_at, tenant_ids, configs, calls, metrics, checksum "
    f"FROM {s.backups.name}"
)


def list_backups(source: Source) -> list[BackupInfo]:
    if not source.has(s.backups):
        return []
    with source.connect() as conn:
        rows = source.fetch(conn, f"{_SELECT} ORDER BY created_at DESC, id DESC")
    return [_row(r) for r in rows]


def get(source: Source, conn: Connection, backup_id: str) -> BackupInfo:
    if not backup_id.strip():
        raise ValidationError(
            "--backup-id is empty: list them with `switchover data backups`", field="backup_id"
        )
    rows = source.fetch(conn, f"{_SELECT} WHERE id = ?", (backup_id,))
    if not rows:
        raise NotFoundError(
            f"no backup {backup_id!r} in {source.where}: list them with `switchover data backups`",
            field="backup_id",
        )
    return _row(rows[0])


def verify(source: Source, backup_id: str) -> BackupInfo:
    """The backup, after checking its rows against its checksum."""
    if not source.has(s.backups):
        raise NotFoundError(
            f"no backups in {source.where}: `switchover data migrate` makes one",
            field="backup_id",
        )
    with source.connect() as conn:
        info = get(source, conn, backup_id)
        actual = _mirror_sum(source, conn, backup_id)
    if actual != info.checksum:
        raise DataCheckError(
            f"backup {backup_id} is damaged: its rows hash to {actual[:12]}…, not the "
            f"recorded {info.checksum[:12]}…; nothing was restored"
        )
    return info


def restore(
    source: Source,
    backup_id: str,
    *,
    progress: Progress = no_progress,
    verified: BackupInfo | None = None,
) -> dict[str, Any]:
    """Put the backup's rows back, verified before (unless the caller just did, passing
    ``verified``) and after, in one transaction."""
    info = (
        verified if verified is not None and verified.id == backup_id else verify(source, backup_id)
    )
    total = info.configs + info.calls + info.metrics
    source.ensure_own()
    lock = NamedLock(
        source.store,
        LOCK_NAME,
        local_holder(f"restore of {backup_id}"),
        ttl=300.0,
        table=s.data_locks,
    )
    lock.require("a data migration or restore")
    try:
        return _swap(source, info, total, progress)
    finally:
        lock.release()


def _swap(source: Source, info: BackupInfo, total: int, progress: Progress) -> dict[str, Any]:
    backup_id = info.id
    with source.begin() as conn:
        cfg_mirror = s.MIRRORS[s.configs.name].name
        source.execute(
            conn,
            f"DELETE FROM {s.metrics.name} WHERE config_id IN "
            f"(SELECT id FROM {cfg_mirror} WHERE backup_id = ?)",
            (backup_id,),
        )
        done = 0
        replaced: dict[str, int] = {}
        for table in s.BACKED_UP:
            mirror = s.MIRRORS[table.name]
            key = s.key_of(table)
            replaced[table.name] = source.execute(
                conn,
                f"DELETE FROM {table.name} WHERE {key} IN "
                f"(SELECT {key} FROM {mirror.name} WHERE backup_id = ?)",
                (backup_id,),
            )
            done += source.execute(
                conn,
                f"INSERT INTO {table.name} ({_cols(table)}) "
                f"SELECT {_cols(table)} FROM {mirror.name} WHERE backup_id = ?",
                (backup_id,),
            )
            progress("restore", done, total)
        after = _restored_sum(source, conn, backup_id)
        if after != info.checksum:
            raise DataCheckError(
                f"the rows restored from {backup_id} do not match its checksum "
                f"({after[:12]}… ≠ {info.checksum[:12]}…); the restore was rolled back"
            )
    return {
        "backup": info.to_dict(),
        "restored": {"configs": info.configs, "calls": info.calls, "metrics": info.metrics},
        "checksum_verified": True,
    }

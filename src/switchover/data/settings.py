"""Seed 004 M5 ``migrate_user_settings``: each legacy user's voice settings converted
into the v2 format by the team's own function and saved in the v2 table, with a backup
first and a verify after.

Under the data-migration lock and in one transaction: a backup of both tables (listed
by ``backups``, restorable with ``data restore``), then every legacy row (in key order,
keyset pages) through ``convert(settings) -> v2 settings``, written with one set-based
insert per page. A user who already has v2 settings keeps them unless ``replace``
(v2 may hold fresher ones). The verify reads the v2 table back: every legacy user has
a row, and each row written equals what the function returned. Any failure rolls the
whole conversion back, backup included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson

from switchover.data import backup as backups
from switchover.data import bulk
from switchover.data import reflect as r
from switchover.data import schema as s
from switchover.data.source import Progress, Scope, Source, no_progress
from switchover.errors import DataCheckError, SwitchoverError, ValidationError
from switchover.store.locks import NamedLock, local_holder

Convert = Callable[[Mapping[str, Any]], Mapping[str, Any]]
PAGE = 2000


@dataclass
class ConvertReport:
    legacy: int = 0
    converted: int = 0
    kept_existing: int = 0
    backup_id: str | None = None
    dry_run: bool = False
    verified: bool = False
    samples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_convert(path: str) -> Convert:
    from switchover.data.migrate import load_transform

    try:
        return load_transform(path)  # type: ignore[return-value]
    except ValidationError as exc:
        raise ValidationError(
            exc.message.replace("--transform", "--convert"), field="convert"
        ) from None


def _decode(value: Any, who: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        out = orjson.loads(value) if value is not None else {}
    except orjson.JSONDecodeError:
        raise ValidationError(
            f"the legacy settings of user {who} are not JSON: fix that row first",
            field="settings",
        ) from None
    if not isinstance(out, dict):
        raise ValidationError(
            f"the legacy settings of user {who} are not a JSON object", field="settings"
        )
    return out


def convert_settings(
    source: Source,
    convert: Convert,
    *,
    now: datetime,
    legacy_table: str = s.legacy_settings.name,
    v2_table: str = s.v2_settings.name,
    replace: bool = False,
    dry_run: bool = False,
    progress: Progress = no_progress,
) -> ConvertReport:
    with source.connect() as conn:
        legacy, v2 = r.reflect(conn, legacy_table), r.reflect(conn, v2_table)
    for table in (legacy, v2):
        if not table.has("settings"):
            raise ValidationError(
                f"column {table.name}.settings does not exist: it holds each user's settings",
                field=f"{table.name}.settings",
            )
    key = legacy.key
    report = ConvertReport(dry_run=dry_run)
    if dry_run:
        with source.connect() as conn:
            _walk(source, conn, legacy, v2, convert, now, replace, report, write=False)
        return report
    source.ensure_own()
    lock = NamedLock(
        source.store, backups.LOCK_NAME, local_holder("convert-settings"), ttl=300.0,
        table=s.data_locks,
    )  # fmt: skip
    lock.require("a data migration or restore")
    try:
        with source.begin() as conn:
            info = backups.create(
                source, conn, Scope(None), now=now, run_id=None, kind="sunset",
                tables=[backups.Selection(legacy.name), backups.Selection(v2.name)],
            )  # fmt: skip
            report.backup_id = info.id
            written = _walk(source, conn, legacy, v2, convert, now, replace, report, write=True)
            progress("convert-settings", report.converted, report.legacy)
            _verify(source, conn, legacy, v2, key, written)
            report.verified = True
    finally:
        lock.release()
    return report


def _walk(
    source: Source,
    conn: Any,
    legacy: r.Table,
    v2: r.Table,
    convert: Convert,
    now: datetime,
    replace: bool,
    report: ConvertReport,
    *,
    write: bool,
) -> dict[str, dict[str, Any]]:
    lk, vk = r.quote(legacy.key), r.quote(v2.key)
    written: dict[str, dict[str, Any]] = {}
    last: Any = None
    while True:
        cond = "" if last is None else f" WHERE l.{lk} > ?"
        rows = source.fetch(
            conn,
            f"SELECT l.{lk}, l.settings, EXISTS (SELECT 1 FROM {r.quote(v2.name)} v "
            f"WHERE v.{vk} = l.{lk}) FROM {r.quote(legacy.name)} l{cond} ORDER BY l.{lk} "
            f"LIMIT {PAGE}",
            () if last is None else (last,),
        )
        out: list[tuple[Any, ...]] = []
        for user, settings, exists in rows:
            report.legacy += 1
            if exists and not replace:
                report.kept_existing += 1
                continue
            before = _decode(settings, str(user))
            try:
                after = dict(convert(before))
                text = orjson.dumps(after).decode()
            except SwitchoverError:
                raise
            except Exception as exc:
                raise ValidationError(
                    f"--convert failed on user {str(user)!r}: {type(exc).__name__}; nothing "
                    "was saved",
                    field="convert",
                ) from None
            report.converted += 1
            if len(report.samples) < 3:
                report.samples.append({"user": str(user), "before": before, "after": after})
            written[str(user)] = after
            row = [user, text]
            if v2.has("updated_at"):
                row.append(now.isoformat())
            out.append(tuple(row))
        if write and out:
            if replace:
                bulk_delete(source, conn, v2, [row[0] for row in out])
            cols = [v2.key, "settings", *(["updated_at"] if v2.has("updated_at") else [])]
            bulk.insert(source, conn, v2, cols, out)
        if len(rows) < PAGE:
            return written
        last = rows[-1][0]


def bulk_delete(source: Source, conn: Any, table: r.Table, keys: list[Any]) -> None:
    source.executemany(
        conn,
        f"DELETE FROM {r.quote(table.name)} WHERE {r.quote(table.key)} = ?",
        [(k,) for k in keys],
    )


def _verify(
    source: Source,
    conn: Any,
    legacy: r.Table,
    v2: r.Table,
    key: str,
    written: dict[str, dict[str, Any]],
) -> None:
    lk, vk = r.quote(legacy.key), r.quote(v2.key)
    missing = source.fetch(
        conn,
        f"SELECT l.{lk} FROM {r.quote(legacy.name)} l WHERE NOT EXISTS (SELECT 1 FROM "
        f"{r.quote(v2.name)} v WHERE v.{vk} = l.{lk}) ORDER BY l.{lk} LIMIT 5",
    )
    if missing:
        raise DataCheckError(
            f"verify failed: user {missing[0][0]} has no v2 settings after the conversion; "
            "nothing was saved"
        )
    for user, settings in source.fetch(
        conn, f"SELECT {vk}, settings FROM {r.quote(v2.name)} ORDER BY {vk}"
    ):
        want = written.get(str(user))
        if want is not None and _decode(settings, str(user)) != want:
            raise DataCheckError(
                f"verify failed: the v2 settings of user {user} differ from what --convert "
                "returned; nothing was saved"
            )

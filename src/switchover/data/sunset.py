"""Seed 004 M5, the legacy sunset: move cached content to the v2 namespace, and check
that every legacy user's settings exist in v2.

``copy_keys`` walks the source pattern with ``SCAN`` (never ``KEYS``, which blocks a
busy Redis), copies each key with ``DUMP``/``RESTORE`` (any Redis type, byte for byte)
under the new prefix with the given TTL, and by default leaves a key that already
exists in the new namespace alone, since v2 may have written a fresher value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from switchover.data import schema as s
from switchover.data.source import Progress, Source, no_progress
from switchover.errors import StoreError, ValidationError

SCAN_COUNT = 1000


@dataclass
class CopyReport:
    scanned: int = 0
    copied: int = 0
    skipped_existing: int = 0
    vanished: int = 0
    bytes: int = 0
    dry_run: bool = False
    sample: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _prefix_of(pattern: str) -> str:
    cut = min((i for i, ch in enumerate(pattern) if ch in "*?[\\"), default=len(pattern))
    return pattern[:cut]


def check_copy_args(pattern: str, to_prefix: str, ttl: int) -> str:
    if not pattern:
        raise ValidationError("--from is empty: give a pattern like 'voice:cache:*'", field="from")
    prefix = _prefix_of(pattern)
    if not prefix:
        raise ValidationError(
            f"--from {pattern!r} has no fixed prefix to replace: write it as PREFIX*, "
            "e.g. 'voice:cache:*'",
            field="from",
        )
    if not to_prefix:
        raise ValidationError(
            "--to is empty: give the new prefix, e.g. 'voice_v2:cache:'", field="to"
        )
    if to_prefix.startswith(prefix) or prefix.startswith(to_prefix):
        raise ValidationError(
            f"--to {to_prefix!r} overlaps --from {pattern!r}: the copies would match the "
            "pattern again; use a separate namespace",
            field="to",
        )
    if ttl < 0:
        raise ValidationError(
            "--ttl must be 0 (keep each key's own TTL) or more seconds", field="ttl"
        )
    return prefix


def copy_keys(
    redis_url: str,
    pattern: str,
    to_prefix: str,
    *,
    ttl: int = 3600,
    dry_run: bool = False,
    replace: bool = False,
    progress: Progress = no_progress,
    client_factory: Callable[[str], Any] | None = None,
) -> CopyReport:
    """Copy every key matching ``pattern`` to ``to_prefix`` + the rest of its name.

    ``ttl`` 0 keeps each key's remaining TTL (no TTL stays none)."""
    import redis

    prefix = check_copy_args(pattern, to_prefix, ttl)
    try:
        client = (client_factory or redis.Redis.from_url)(redis_url)
        client.ping()
    except ValueError:
        raise ValidationError(
            "--redis is not a Redis URL: write redis://HOST:6379/0", field="redis"
        ) from None
    except redis.RedisError as exc:
        raise StoreError(
            f"Redis at the --redis URL is not reachable ({type(exc).__name__})"
        ) from exc
    report = CopyReport(dry_run=dry_run)
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=SCAN_COUNT):
            batch.append(key)
            if len(batch) >= SCAN_COUNT:
                _copy_batch(client, batch, prefix, to_prefix, ttl, dry_run, replace, report)
                batch = []
                progress("copy-keys", report.scanned, None)
        _copy_batch(client, batch, prefix, to_prefix, ttl, dry_run, replace, report)
        progress("copy-keys", report.scanned, report.scanned)
    except redis.RedisError as exc:
        raise StoreError(
            f"Redis failed after {report.copied} key(s) were copied ({type(exc).__name__}); "
            "running the command again copies the rest"
        ) from exc
    finally:
        client.close()
    return report


def _copy_batch(
    client: Any,
    keys: list[bytes],
    prefix: str,
    to_prefix: str,
    ttl: int,
    dry_run: bool,
    replace: bool,
    report: CopyReport,
) -> None:
    if not keys:
        return
    report.scanned += len(keys)
    targets = [to_prefix.encode() + k[len(prefix.encode()) :] for k in keys]
    pipe = client.pipeline(transaction=False)
    for k, t in zip(keys, targets, strict=True):
        pipe.dump(k)
        pipe.pttl(k)
        pipe.exists(t)
    answers = pipe.execute()
    pipe = client.pipeline(transaction=False)
    planned = 0
    for i, (k, t) in enumerate(zip(keys, targets, strict=True)):
        payload, pttl, exists = answers[3 * i : 3 * i + 3]
        if payload is None:
            report.vanished += 1
            continue
        if exists and not replace:
            report.skipped_existing += 1
            continue
        if len(report.sample) < 5:
            report.sample.append(
                {"from": k.decode(errors="replace"), "to": t.decode(errors="replace")}
            )
        report.bytes += len(payload)
        report.copied += 1
        if dry_run:
            continue
        ms = ttl * 1000 if ttl else (pttl if pttl and pttl > 0 else 0)
        pipe.restore(t, ms, payload, replace=True)
        planned += 1
    if planned:
        pipe.execute()


@dataclass
class SettingsReport:
    legacy: int
    v2: int
    missing: list[str]
    missing_count: int

    @property
    def ok(self) -> bool:
        return self.missing_count == 0 and self.legacy <= self.v2

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def verify_settings(
    source: Source,
    *,
    legacy_table: str = s.legacy_settings.name,
    v2_table: str = s.v2_settings.name,
    key: str = "user_id",
    limit: int = 100,
) -> SettingsReport:
    """Every legacy user's settings exist in v2: counts, and the ids that are missing."""
    for name, value in (("legacy_table", legacy_table), ("v2_table", v2_table), ("key", key)):
        if not value.replace("_", "").isalnum():
            raise ValidationError(
                f"--{name.replace('_', '-')} {value!r} is not a plain SQL name", field=name
            )
    import sqlalchemy as sa

    with source.connect():
        names = set(sa.inspect(source.engine).get_table_names())
    for flag, table in (("legacy-table", legacy_table), ("v2-table", v2_table)):
        if table not in names:
            raise ValidationError(
                f"{source.where} has no table {table!r} (--{flag})", field=flag.replace("-", "_")
            )
    with source.connect() as conn:
        legacy = source.scalar(conn, f"SELECT COUNT(*) FROM {legacy_table}")
        v2 = source.scalar(conn, f"SELECT COUNT(*) FROM {v2_table}")
        gap = (
            f"FROM {legacy_table} l WHERE NOT EXISTS "
            f"(SELECT 1 FROM {v2_table} v WHERE v.{key} = l.{key})"
        )
        missing_count = source.scalar(conn, f"SELECT COUNT(*) {gap}")
        missing = [
            str(r[0])
            for r in source.fetch(conn, f"SELECT l.{key} {gap} ORDER BY l.{key} LIMIT {int(limit)}")
        ]
    return SettingsReport(legacy=legacy, v2=v2, missing=missing, missing_count=missing_count)

"""Seed 004 M5's Redis steps besides the copy: back up a namespace to a file, restore
it, and clean it up (``cleanup_redis_namespace``).

Every walk uses ``SCAN … MATCH`` (never ``KEYS``, which blocks a busy Redis), and a
pattern must start with a fixed prefix (``voice:cache:*``, not ``*``), so a typo cannot
reach the whole database. ``delete_keys`` deletes only what ``SCAN`` returns for the
pattern, with ``UNLINK`` (freed in the background), in batches.

A key backup is one JSON line per key (the name, ``DUMP``'s payload and the remaining
TTL, base64) after a header line with the pattern, the count and a SHA-256 over the
lines; ``RESTORE`` puts any Redis type back byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from switchover.data.source import Progress, no_progress
from switchover.data.sunset import SCAN_COUNT, _prefix_of
from switchover.errors import DataCheckError, StoreError, ValidationError


def check_pattern(pattern: str, flag: str = "pattern") -> str:
    """The pattern's fixed prefix; refuses an empty one (it would match every key)."""
    if not pattern:
        raise ValidationError(f"`{flag}` is empty: give a pattern like 'voice:cache:*'", field=flag)
    prefix = _prefix_of(pattern)
    if not prefix:
        raise ValidationError(
            f"`{flag}` {pattern!r} has no fixed prefix, so it would reach every key: write "
            "it as PREFIX*, e.g. 'voice:cache:*'",
            field=flag,
        )
    return prefix


@contextmanager
def client(redis_url: str, factory: Callable[[str], Any] | None = None) -> Iterator[Any]:
    import redis

    try:
        conn = (factory or redis.Redis.from_url)(redis_url)
        conn.ping()
    except ValueError:
        raise ValidationError(
            "`redis` is not a Redis URL: write redis://HOST:6379/0", field="redis"
        ) from None
    except redis.RedisError as exc:
        raise StoreError(
            f"Redis at the --redis URL is not reachable ({type(exc).__name__})"
        ) from exc
    try:
        yield conn
    except redis.RedisError as exc:
        raise StoreError(
            f"Redis failed ({type(exc).__name__}); what was done so far is in the report"
        ) from exc
    finally:
        conn.close()


@dataclass
class DeleteReport:
    pattern: str
    matched: int = 0
    deleted: int = 0
    dry_run: bool = False
    sample: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_keys(
    redis_url: str, pattern: str, *, factory: Callable[[str], Any] | None = None
) -> DeleteReport:
    """How many keys match, and a few of them: what a confirmation shows."""
    check_pattern(pattern)
    report = DeleteReport(pattern=pattern, dry_run=True)
    with client(redis_url, factory) as r:
        for key in r.scan_iter(match=pattern, count=SCAN_COUNT):
            report.matched += 1
            if len(report.sample) < 5:
                report.sample.append(key.decode(errors="replace"))
    return report


def delete_keys(
    redis_url: str,
    pattern: str,
    *,
    progress: Progress = no_progress,
    factory: Callable[[str], Any] | None = None,
) -> DeleteReport:
    check_pattern(pattern)
    report = DeleteReport(pattern=pattern)
    with client(redis_url, factory) as r:
        batch: list[bytes] = []
        for key in r.scan_iter(match=pattern, count=SCAN_COUNT):
            report.matched += 1
            if len(report.sample) < 5:
                report.sample.append(key.decode(errors="replace"))
            batch.append(key)
            if len(batch) >= SCAN_COUNT:
                report.deleted += int(r.unlink(*batch))
                batch = []
                progress("delete-keys", report.deleted, None)
        if batch:
            report.deleted += int(r.unlink(*batch))
        progress("delete-keys", report.deleted, report.deleted)
    return report


# --- backup to a file and restore --------------------------------------------------------


@dataclass
class KeyBackup:
    file: str
    pattern: str
    keys: int
    bytes: int
    checksum: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def backup_keys(
    redis_url: str,
    pattern: str,
    path: Path,
    *,
    progress: Progress = no_progress,
    factory: Callable[[str], Any] | None = None,
) -> KeyBackup:
    """Every key matching ``pattern`` into ``path`` (refuses to overwrite a file)."""
    check_pattern(pattern)
    if path.exists():
        raise ValidationError(f"`file` {str(path)!r} exists: give a new file name", field="file")
    lines: list[bytes] = []
    size = 0
    with client(redis_url, factory) as r:
        batch: list[bytes] = []

        def flush() -> None:
            nonlocal size
            pipe = r.pipeline(transaction=False)
            for k in batch:
                pipe.dump(k)
                pipe.pttl(k)
            answers = pipe.execute()
            for i, k in enumerate(batch):
                payload, pttl = answers[2 * i], answers[2 * i + 1]
                if payload is None:
                    continue  # expired between SCAN and DUMP
                size += len(payload)
                lines.append(
                    orjson.dumps(
                        {"key": _b64(k), "value": _b64(payload), "pttl": max(int(pttl), 0)}
                    )
                )
            batch.clear()
            progress("backup-keys", len(lines), None)

        for key in r.scan_iter(match=pattern, count=SCAN_COUNT):
            batch.append(key)
            if len(batch) >= SCAN_COUNT:
                flush()
        flush()
    lines.sort()
    checksum = hashlib.sha256(b"".join(line + b"\n" for line in lines)).hexdigest()
    header = {"switchover_key_backup": 1, "pattern": pattern, "keys": len(lines),
              "bytes": size, "sha256": checksum}  # fmt: skip
    path.write_bytes(orjson.dumps(header) + b"\n" + b"".join(line + b"\n" for line in lines))
    return KeyBackup(str(path), pattern, len(lines), size, checksum)


def restore_keys(
    redis_url: str,
    path: Path,
    *,
    replace: bool = False,
    factory: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Put a key backup back; keys that exist are left alone unless ``replace``."""
    if not path.is_file():
        raise ValidationError(f"`file` {str(path)!r} does not exist", field="file")
    raw = path.read_bytes().splitlines()
    try:
        header = orjson.loads(raw[0])
        assert header.get("switchover_key_backup") == 1
    except (IndexError, orjson.JSONDecodeError, AssertionError):
        raise ValidationError(
            f"`file` {str(path)!r} is not a switchover key backup", field="file"
        ) from None
    lines = raw[1:]
    actual = hashlib.sha256(b"".join(line + b"\n" for line in lines)).hexdigest()
    if actual != header["sha256"] or len(lines) != header["keys"]:
        raise DataCheckError(
            f"key backup {path} is damaged (its lines hash to {actual[:12]}…, not the "
            f"recorded {header['sha256'][:12]}…); nothing was restored"
        )
    restored = skipped = 0
    with client(redis_url, factory) as r:
        pipe = r.pipeline(transaction=False)
        for line in lines:
            item = orjson.loads(line)
            key = base64.b64decode(item["key"])
            if not replace and r.exists(key):
                skipped += 1
                continue
            pipe.restore(key, item["pttl"], base64.b64decode(item["value"]), replace=True)
            restored += 1
        pipe.execute()
    return {"file": str(path), "pattern": header["pattern"], "restored": restored,
            "skipped_existing": skipped}  # fmt: skip

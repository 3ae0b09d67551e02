"""The worker registry's nouns: a heartbeat, and a worker as the registry shows it.

A worker (``switchover worker start``) sends a heartbeat every few seconds: its name,
the instance, version, jobs and load. The registry keeps the last one per instance; a
worker is ``active`` while its last heartbeat is younger than three of its intervals
(seed 000 step 3.1: "the worker appears in the active list"), ``stale`` after.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from switchover.errors import ValidationError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,199}$")
MISSED_BEATS = 3
"""Heartbeats a worker may miss before it counts as stale."""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    instance: str
    """One process: ``name@host:pid`` unless the worker says otherwise."""
    name: str
    version: str
    jobs_active: int
    jobs_total: int
    jobs_failed: int
    load: float
    max_concurrency: int
    interval: float
    migration: str | None = None
    side: str | None = None


@dataclass(frozen=True, slots=True)
class WorkerView:
    beat: Heartbeat
    started_at: datetime
    last_seen: datetime

    def status(self, now: datetime) -> str:
        age = (now - self.last_seen).total_seconds()
        return "active" if age <= MISSED_BEATS * self.beat.interval else "stale"

    def to_dict(self, now: datetime) -> dict[str, Any]:
        b = self.beat
        return {
            "instance": b.instance,
            "name": b.name,
            "version": b.version,
            "status": self.status(now),
            "jobs_active": b.jobs_active,
            "jobs_total": b.jobs_total,
            "jobs_failed": b.jobs_failed,
            "load": b.load,
            "max_concurrency": b.max_concurrency,
            "migration": b.migration,
            "side": b.side,
            "interval_seconds": b.interval,
            "started_at": self.started_at.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "seconds_since_seen": round(max(0.0, (now - self.last_seen).total_seconds()), 1),
        }


def _text(data: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValidationError(
            f"`{key}` must be 1-200 letters, digits and _ . : @ / - (starting with a letter "
            "or digit)",
            field=key,
        )
    return value


def _count(data: Mapping[str, Any], key: str, most: int = 10**12) -> int:
    value = data.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
        raise ValidationError(f"`{key}` must be a whole number from 0 to {most}", field=key)
    return value


def parse_heartbeat(data: Mapping[str, Any]) -> Heartbeat:
    """A heartbeat from plain data (a request body); bad input names the field."""
    if not isinstance(data, Mapping):
        raise ValidationError("a heartbeat must be a JSON object", field="heartbeat")
    load = data.get("load", 0.0)
    if (
        isinstance(load, bool)
        or not isinstance(load, int | float)
        or not math.isfinite(load)
        or not 0 <= load <= 1
    ):
        raise ValidationError("`load` must be a number from 0 to 1", field="load")
    interval = data.get("interval", 10.0)
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int | float)
        or not 0.1 <= interval <= 3600
    ):
        raise ValidationError("`interval` must be 0.1 to 3600 seconds", field="interval")
    side = data.get("side")
    if side is not None and side not in ("legacy", "candidate"):
        raise ValidationError("`side` must be legacy, candidate or null", field="side")
    max_concurrency = _count(data, "max_concurrency", 100_000)
    return Heartbeat(
        instance=str(_text(data, "instance")),
        name=str(_text(data, "name")),
        version=str(_text(data, "version")),
        jobs_active=_count(data, "jobs_active"),
        jobs_total=_count(data, "jobs_total"),
        jobs_failed=_count(data, "jobs_failed"),
        load=float(load),
        max_concurrency=max_concurrency,
        interval=float(interval),
        migration=_text(data, "migration", required=False),
        side=side,
    )

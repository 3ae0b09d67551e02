"""A worker's heartbeat as the registry takes it, and when a worker counts as stale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from switchover.core.workers import WorkerView, parse_heartbeat
from switchover.errors import ValidationError

BEAT = {
    "instance": "core-voice-worker@host-1:42",
    "name": "core-voice-worker",
    "version": "0.1.0",
    "jobs_active": 3,
    "jobs_total": 120,
    "jobs_failed": 1,
    "load": 0.12,
    "max_concurrency": 25,
    "interval": 10,
    "migration": "core_worker",
    "side": "candidate",
}


def test_a_worker_is_active_until_it_misses_three_heartbeats() -> None:
    seen = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    view = WorkerView(parse_heartbeat(BEAT), seen - timedelta(hours=1), seen)
    assert view.status(seen + timedelta(seconds=30)) == "active"
    assert view.status(seen + timedelta(seconds=31)) == "stale"
    shown = view.to_dict(seen + timedelta(seconds=5))
    assert shown["seconds_since_seen"] == 5.0 and shown["jobs_active"] == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("load", 1.5),
        ("load", "high"),
        ("jobs_active", -1),
        ("jobs_total", True),
        ("max_concurrency", 10**9),
        ("interval", 0),
        ("side", "core"),
        ("name", ""),
        ("instance", "has space"),
    ],
)
def test_a_bad_heartbeat_is_refused_naming_its_field(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_heartbeat({**BEAT, field: value})
    assert raised.value.field == field and raised.value.message.startswith(field)

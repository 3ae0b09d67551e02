"""Notifications the notify tests send."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from switchover.control.notify import Notification

AT = datetime(2025, 3, 4, 12, 30, tzinfo=UTC)
REASONS = ["error rate 0.4 % ≤ 1 %", "p95 latency +12 ms ≤ +50 ms"]


def note(event: str = "phase_change", **fields: Any) -> Notification:
    return Notification(
        event=event,
        migration="voice_v2",
        text="voice_v2: advanced canary (1 %) → pilot (10 %)",
        at=AT,
        severity="P2",
        fields={"phase": "pilot", "percentage": 10, "reasons": REASONS, **fields},
    )

"""The worker registry as a service: store a heartbeat, list the workers.

A heartbeat is telemetry, like an observation batch: it changes no rollout, so it is no
command and writes no audit row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from switchover.core.clock import Clock
from switchover.core.workers import parse_heartbeat
from switchover.store import workers as rows


class WorkerRegistry:
    def __init__(self, store: Any, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def beat(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Keep a worker's heartbeat; ValidationError naming the field when it is bad."""
        hb = parse_heartbeat(data)
        now = self.clock.now()
        with self.store.transaction() as tx:
            rows.beat(tx, hb, now)
        return {"instance": hb.instance, "last_seen": now.isoformat()}

    def list(self) -> list[dict[str, Any]]:
        now = self.clock.now()
        with self.store.read() as tx:
            return [w.to_dict(now) for w in rows.listed(tx)]

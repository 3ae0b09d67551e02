"""The recorder's sink into the store: append partial rollups, prune past the retention."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from switchover.core.rollup import Rollup, RollupKey
from switchover.store.repository import Store

DEFAULT_RETENTION_DAYS = 7.0
DEFAULT_KEEP_SAMPLES = 200
PRUNE_EVERY_SECONDS = 3600.0


class StoreSink:
    """Appends partial rollups; prunes those older than the retention once an hour."""

    def __init__(
        self,
        store: Store,
        *,
        retention_days: float = DEFAULT_RETENTION_DAYS,
        keep_samples: int = DEFAULT_KEEP_SAMPLES,
        time_fn: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.retention_days = retention_days
        self.keep_samples = keep_samples
        self._time = time_fn
        self._last_prune: float | None = None

    def write(
        self, rollups: Sequence[tuple[RollupKey, Rollup]], samples: Sequence[dict[str, Any]]
    ) -> None:
        now = self._time()
        rows = [_sample_row(s, now) for s in samples]
        with self.store.transaction() as tx:
            tx.insert_rollups(rollups)
            tx.add_shadow_samples(rows, keep_per_migration=self.keep_samples)
            due = self._prune_due(now)
            if due:
                tx.prune_rollups(retention_cutoff(now, self.retention_days))
        if due:
            self._last_prune = now

    def prune_if_due(self) -> None:
        """Drop rollups past the retention, at most once every PRUNE_EVERY_SECONDS."""
        now = self._time()
        if self._prune_due(now):
            with self.store.transaction() as tx:
                tx.prune_rollups(retention_cutoff(now, self.retention_days))
            self._last_prune = now

    def _prune_due(self, now: float) -> bool:
        return self._last_prune is None or now - self._last_prune >= PRUNE_EVERY_SECONDS


def retention_cutoff(now: float, retention_days: float) -> int:
    """The first minute still kept."""
    return int((now - retention_days * 86400) // 60)


def _sample_row(sample: dict[str, Any], now: float) -> dict[str, Any]:
    body = {k: v for k, v in sample.items() if k not in ("migration", "operation", "kind", "at")}
    return {
        "migration": sample["migration"],
        "operation": sample["operation"],
        "kind": sample.get("kind", "mismatch"),
        "at": datetime.fromtimestamp(sample.get("at", now), UTC),
        "sample": body,
    }

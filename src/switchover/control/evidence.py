"""Per-minute evidence for the controller, kept in memory and read incrementally.

Judging 100 migrations every minute must not re-read and re-decode an hour of rollups
each time. The cache loads a migration's window once, then follows the rollups table
by id (``rollups_after``): each tick reads only the rows appended since the last one.
Per-minute statistics (quantiles, exceedance counts) are computed once per minute and
recomputed only when a late row for that minute arrives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from switchover.core.judge import Evidence, MinuteStats, minute_stats
from switchover.core.rollup import Rollup, RollupKey
from switchover.core.window import SIDES
from switchover.store.ports import Repository

ALL = None
"""The operation key under which every operation is merged."""

_Series = dict[int, Rollup]


class EvidenceCache:
    def __init__(self, store: Repository | None, *, horizon_minutes: int = 62) -> None:
        self.store = store
        self.horizon = horizon_minutes
        self._last_id: int | None = None
        self._rollups: dict[str, dict[tuple[str | None, str], _Series]] = {}
        self._stats: dict[str, dict[tuple[str | None, str], dict[int, MinuteStats]]] = {}

    # feeding ------------------------------------------------------------------------

    def add(self, key: RollupKey, rollup: Rollup) -> None:
        """Merge one rollup (a row read from the store, or the simulator's traffic)."""
        series = self._rollups.setdefault(key.migration, {})
        stats = self._stats.setdefault(key.migration, {})
        for op in (key.operation, ALL):
            per_minute = series.setdefault((op, key.side), {})
            existing = per_minute.get(key.minute)
            if existing is None:
                existing = per_minute[key.minute] = Rollup()
            existing.merge(rollup)
            cached = stats.get((op, key.side))
            if cached is not None:
                cached.pop(key.minute, None)

    def track(self, migrations: Iterable[str], now_minute: int) -> None:
        """Load the window of migrations not followed yet, then follow the table."""
        if self.store is None:
            return
        new = [m for m in migrations if m not in self._rollups]
        with self.store.read() as tx:
            if self._last_id is None:
                self._last_id = tx.max_rollup_id()
            for name in new:
                self._rollups[name] = {}
                rows = tx.rollups(
                    name, now_minute - self.horizon, now_minute + 1, max_id=self._last_id
                )
                for row in rows:
                    self.add(row.key, row.rollup)

    def refresh(self, now_minute: int, *, page: int = 5000) -> int:
        """Read rows appended since the last refresh; returns how many."""
        if self.store is None or self._last_id is None:
            return 0
        total = 0
        while True:
            with self.store.read() as tx:
                rows = tx.rollups_after(self._last_id, limit=page)
            for row_id, row in rows:
                self._last_id = row_id
                if row.key.migration in self._rollups:
                    self.add(row.key, row.rollup)
            total += len(rows)
            if len(rows) < page:
                break
        self.evict(now_minute - self.horizon)
        return total

    def evict(self, before_minute: int) -> None:
        for name, series in self._rollups.items():
            stats = self._stats.get(name, {})
            for key, per_minute in series.items():
                old = [m for m in per_minute if m < before_minute]
                for m in old:
                    del per_minute[m]
                    stats.get(key, {}).pop(m, None)

    # reading ------------------------------------------------------------------------

    def minutes(
        self, migration: str, start: int, end: int, operation: str | None
    ) -> Mapping[str, Sequence[MinuteStats]]:
        series = self._rollups.get(migration, {})
        stats = self._stats.setdefault(migration, {})
        out: dict[str, list[MinuteStats]] = {}
        for side in SIDES:
            per_minute = series.get((operation, side))
            cached = stats.setdefault((operation, side), {})
            picked: list[MinuteStats] = []
            if per_minute:
                if end - start < len(per_minute):
                    keys = [m for m in range(start, end) if m in per_minute]
                else:
                    keys = sorted(m for m in per_minute if start <= m < end)
                for m in keys:
                    s = cached.get(m)
                    if s is None:
                        s = cached[m] = minute_stats(m, per_minute[m])
                    picked.append(s)
            out[side] = picked
        return out

    def evidence(self, migration: str) -> Evidence:
        def read(
            start: int, end: int, operation: str | None
        ) -> Mapping[str, Sequence[MinuteStats]]:
            return self.minutes(migration, start, end, operation)

        return read

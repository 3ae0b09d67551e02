"""The controller's evidence, kept in memory and read incrementally.

Judging 100 migrations every minute must not re-read and re-decode their rollups each
time, and a phase may last weeks. The cache loads a migration's recent minutes once,
then follows the rollups table (:class:`~switchover.store.follower.RollupFollower`):
each tick reads only the rows appended since the last one, and the rows whose
transactions committed out of id order. It keeps:

- the last ``horizon`` minutes one by one (:class:`~switchover.core.evidence.MinuteStats`,
  computed once per minute and again only when a late row for that minute arrives), for
  the windows that end now;
- a **running pool** per span start that the judge asks for (the phase's first minute,
  the start of legacy's baseline): one merged rollup of every minute from that start,
  extended by the minutes since the last judgement. A late row for a minute the pool
  already holds is merged into it too. So the 20,000th minute of a phase costs what the
  first did.

After a restart, a running pool that starts before the minutes in memory is read from
the store once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from switchover.core.evidence import SIDES, Evidence, MinuteStats, Pool, minute_stats
from switchover.core.rollup import Rollup, RollupKey
from switchover.store.follower import RollupFollower
from switchover.store.ports import Repository

ALL = None
"""The operation key under which every operation is merged."""
SHORT_SPAN = 8
"""Spans of at most this many minutes are summed minute by minute, not kept running."""

_Series = dict[int, Rollup]
_Key = tuple[str | None, str]


@dataclass(slots=True)
class _Running:
    """Every minute of one operation and side in [start, sealed), merged."""

    start: int
    sealed: int
    rollup: Rollup
    used: int
    """The minute the judge last asked for it: pools not asked for are dropped."""


class EvidenceCache:
    def __init__(self, store: Repository | None, *, horizon_minutes: int = 62) -> None:
        self.store = store
        self.horizon = horizon_minutes
        self.follower = RollupFollower(store) if store is not None else None
        self._rollups: dict[str, dict[_Key, _Series]] = {}
        """Per operation (never ALL) and side, per minute."""
        self._all: dict[str, dict[str, _Series]] = {}
        """Every operation of a minute, per side: the one operation's own rollup when a
        minute has one (most migrations judge one), else a merge; built when read."""
        self._stats: dict[str, dict[_Key, dict[int, MinuteStats]]] = {}
        self._running: dict[str, dict[tuple[str | None, str, int], _Running]] = {}
        self._complete_from: dict[str, int | None] = {}
        """The first minute held one by one for each migration; None: every minute added."""
        self._now = 0

    # feeding ------------------------------------------------------------------------

    def add(self, key: RollupKey, rollup: Rollup) -> None:
        """Merge one rollup (a row read from the store, or the simulator's traffic).

        The cache keeps ``rollup`` itself when it is the first of its minute: the caller
        hands it over and does not change it afterwards.
        """
        series = self._rollups.setdefault(key.migration, {})
        per_minute = series.setdefault((key.operation, key.side), {})
        existing = per_minute.get(key.minute)
        if existing is None:
            per_minute[key.minute] = rollup
        else:
            existing.merge(rollup)
        self._all.setdefault(key.migration, {}).setdefault(key.side, {}).pop(key.minute, None)
        stats = self._stats.get(key.migration, {})
        for op in (key.operation, ALL):
            cached = stats.get((op, key.side))
            if cached is not None:
                cached.pop(key.minute, None)
        for (r_op, r_side, _), pool in self._running.get(key.migration, {}).items():
            if (
                r_side == key.side
                and (r_op is ALL or r_op == key.operation)
                and pool.start <= key.minute < pool.sealed
            ):
                pool.rollup.merge(rollup)

    def track(self, migrations: Iterable[str], now_minute: int) -> None:
        """Load the recent minutes of migrations not followed yet, then follow the table."""
        self._now = max(self._now, now_minute)
        if self.store is None:
            return
        new = [m for m in migrations if m not in self._rollups]
        assert self.follower is not None
        last_id = self.follower.start()
        with self.store.read() as tx:
            for name in new:
                self._rollups[name] = {}
                self._complete_from[name] = now_minute - self.horizon
                rows = tx.rollups(name, now_minute - self.horizon, now_minute + 1, max_id=last_id)
                for row in rows:
                    self.add(row.key, row.rollup)

    def refresh(self, now_minute: int) -> int:
        """Read rows appended since the last refresh, and late ones; returns how many.
        Then forget the minutes older than the horizon, and the running pools no longer
        asked for."""
        self._now = max(self._now, now_minute)
        total = 0
        if self.follower is not None and self.follower.last_id is not None:
            rows = self.follower.poll()
            for _, row in rows:
                if row.key.migration in self._rollups:
                    self.add(row.key, row.rollup)
            total = len(rows)
        self.evict(now_minute - self.horizon)
        return total

    def evict(self, before_minute: int) -> None:
        for name, series in self._rollups.items():
            stats = self._stats.get(name, {})
            for per_minute in series.values():
                for m in [m for m in per_minute if m < before_minute]:
                    del per_minute[m]
            for by_minute in [*self._all.get(name, {}).values(), *stats.values()]:
                for m in [m for m in by_minute if m < before_minute]:
                    del by_minute[m]
            held_from = self._complete_from.get(name)
            self._complete_from[name] = (
                before_minute if held_from is None else max(held_from, before_minute)
            )
        for running in self._running.values():
            for k in [k for k, pool in running.items() if pool.used < before_minute]:
                del running[k]

    # reading ------------------------------------------------------------------------

    def _rollup(
        self, migration: str, operation: str | None, side: str, minute: int
    ) -> Rollup | None:
        """One minute of one operation (or of every operation) and side."""
        series = self._rollups.get(migration)
        if not series:
            return None
        if operation is not ALL:
            per_minute = series.get((operation, side))
            return per_minute.get(minute) if per_minute else None
        merged = self._all.setdefault(migration, {}).setdefault(side, {})
        found = merged.get(minute)
        if found is None:
            parts = [
                per_minute[minute]
                for (_, s), per_minute in series.items()
                if s == side and minute in per_minute
            ]
            if not parts:
                return None
            if len(parts) == 1:
                found = parts[0]
            else:
                found = Rollup()
                for part in parts:
                    found.merge(part)
            merged[minute] = found
        return found

    def minutes(
        self, migration: str, start: int, end: int, operation: str | None
    ) -> Mapping[str, Sequence[MinuteStats]]:
        stats = self._stats.setdefault(migration, {})
        out: dict[str, list[MinuteStats]] = {}
        for side in SIDES:
            cached = stats.setdefault((operation, side), {})
            picked = []
            for m in range(start, end):
                s = cached.get(m)
                if s is None:
                    rollup = self._rollup(migration, operation, side, m)
                    if rollup is None:
                        continue
                    s = cached[m] = minute_stats(m, rollup)
                picked.append(s)
            out[side] = picked
        return out

    def pools(
        self, migration: str, start: int, end: int, operation: str | None
    ) -> Mapping[str, Pool]:
        if end - start <= SHORT_SPAN:
            sides = self.minutes(migration, start, end, operation)
            return {side: Pool.of_minutes(sides[side], start, end) for side in SIDES}
        return {
            side: Pool.of_rollup(self._pool(migration, operation, side, start, end), start, end)
            for side in SIDES
        }

    def _pool(
        self, migration: str, operation: str | None, side: str, start: int, end: int
    ) -> Rollup:
        running = self._running.setdefault(migration, {})
        key = (operation, side, start)
        pool = running.get(key)
        if pool is not None and end < pool.sealed:
            # asked for less than it holds (a judgement of an earlier moment): a one-off
            rollup, upto = self._load(migration, operation, side, start, end)
            rollup.merge(self._merged(migration, operation, side, upto, end))
            return rollup
        if pool is None:
            rollup, upto = self._load(migration, operation, side, start, end)
            pool = running[key] = _Running(start, upto, rollup, end)
        if end > pool.sealed:
            pool.rollup.merge(self._merged(migration, operation, side, pool.sealed, end))
            pool.sealed = end
        pool.used = max(pool.used, self._now, end)
        return pool.rollup

    def _merged(
        self, migration: str, operation: str | None, side: str, start: int, end: int
    ) -> Rollup:
        """The minutes in memory from ``start`` to ``end``, merged."""
        out = Rollup()
        held_from = self._complete_from.get(migration)
        if held_from is not None:  # older minutes came from the store (see _load)
            start = max(start, held_from)
        for m in range(start, end):
            r = self._rollup(migration, operation, side, m)
            if r is not None:
                out.merge(r)
        return out

    def _load(
        self, migration: str, operation: str | None, side: str, start: int, end: int
    ) -> tuple[Rollup, int]:
        """What the store holds from ``start`` up to the minutes kept in memory (or
        ``end``), and the minute it stops at."""
        out = Rollup()
        held_from = self._complete_from.get(migration)
        if self.store is None or held_from is None or start >= held_from:
            return out, start
        upto = min(held_from, end)
        with self.store.read() as tx:
            rows = tx.rollups(migration, start, upto, max_id=self._followed())
        for row in rows:
            if row.key.side == side and (operation is ALL or row.key.operation == operation):
                out.merge(row.rollup)
        return out, upto

    def _followed(self) -> int | None:
        return self.follower.last_id if self.follower is not None else None

    def evidence(self, migration: str) -> Evidence:
        return _MigrationEvidence(self, migration)


class _MigrationEvidence:
    """One migration's :class:`~switchover.core.evidence.Evidence`."""

    __slots__ = ("cache", "migration")

    def __init__(self, cache: EvidenceCache, migration: str) -> None:
        self.cache, self.migration = cache, migration

    def pools(self, start: int, end: int, operation: str | None) -> Mapping[str, Pool]:
        return self.cache.pools(self.migration, start, end, operation)

    def minutes(
        self, start: int, end: int, operation: str | None
    ) -> Mapping[str, Sequence[MinuteStats]]:
        return self.cache.minutes(self.migration, start, end, operation)

"""Migrations and recorded rollups held in memory: a backend for tests and embedding.

>>> backend = MemoryBackend([Migration("voice_v2", features={"stt": True}, percentage=50)])
>>> client = Client(backend, background=False)
>>> client.migration("voice_v2").decide("stt", {"user_id": "42"}).side

:meth:`MemoryBackend.put` adds or replaces a migration and moves the version, so a
client with a background thread sees it at once (and one without, at its next
``refresh()``). What the client's recorder flushes is kept in :attr:`rollups` and
:attr:`samples`, and ``window`` and ``status`` read it back as the store would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from switchover.core.clock import Clock, SystemClock
from switchover.core.migration import Migration
from switchover.core.rollup import Rollup, RollupKey, StoredRollup, minute_of
from switchover.core.status import rollout_status
from switchover.core.window import window_stats
from switchover.errors import NotFoundError, ValidationError

DEFAULT_WINDOW = timedelta(minutes=15)
_SLICE = 0.05
"""How often a waiting refresh thread checks its stop event."""


class MemoryBackend:
    def __init__(self, migrations: Iterable[Migration] = (), *, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self._migrations = {m.name: m for m in migrations}
        self._version = 1
        self._changed = threading.Condition()
        self.rollups: list[tuple[RollupKey, Rollup]] = []
        """Every rollup the recorder flushed, in order."""
        self.samples: list[dict[str, Any]] = []
        """Every shadow sample the recorder flushed, in order."""

    # the user's side --------------------------------------------------------------------

    def put(self, migration: Migration) -> None:
        """Add or replace a migration; clients see it at their next refresh."""
        with self._changed:
            self._migrations[migration.name] = migration
            self._version += 1
            self._changed.notify_all()

    def remove(self, name: str) -> None:
        with self._changed:
            if self._migrations.pop(name, None) is not None:
                self._version += 1
                self._changed.notify_all()

    def get(self, name: str) -> Migration:
        with self._changed:
            m = self._migrations.get(name)
            known = sorted(self._migrations)
        if m is None:
            hint = f"; known migrations: {', '.join(known)}" if known else ""
            raise NotFoundError(f"migration {name!r} does not exist{hint}", field="name")
        return m

    # snapshot source --------------------------------------------------------------------

    def version(self) -> int:
        return self._version

    def load(self) -> tuple[int, list[Migration]]:
        with self._changed:
            return self._version, list(self._migrations.values())

    def wait_for_change(self, timeout: float, stop: threading.Event) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            seen = self._version
            while self._version == seen and not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._changed.wait(min(remaining, _SLICE))

    def close(self) -> None:
        """Nothing to release: what was recorded stays readable."""
        return None

    # rollups ------------------------------------------------------------------------------

    def write(
        self, rollups: Sequence[tuple[RollupKey, Rollup]], samples: Sequence[dict[str, Any]]
    ) -> None:
        with self._changed:
            self.rollups.extend(rollups)
            self.samples.extend(samples)

    def window(
        self,
        name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        operation: str | None = None,
        last: timedelta | None = None,
    ) -> dict[str, Any]:
        # the report's shape is the store's; WindowReport lives beside the store's reader
        from switchover.metrics.service import WindowReport

        until = until or self.clock.now()
        since = since or until - (last or DEFAULT_WINDOW)
        if since >= until:
            raise ValidationError("the window's start must be before its end", field="since")
        m = self.get(name)
        first, end = minute_of(since.timestamp()), minute_of(until.timestamp()) + 1
        with self._changed:
            rows = [
                StoredRollup(key, rollup)
                for key, rollup in self.rollups
                if key.migration == name
                and first <= key.minute < end
                and (operation is None or key.operation == operation)
            ]
        report = WindowReport(
            migration=name,
            operation=operation,
            since=since,
            until=until,
            percentage=m.percentage,
            enabled=m.enabled,
            sides=window_stats(rows),
        )
        return report.to_dict()

    def status(self, name: str) -> dict[str, Any]:
        """The rollout status; the tenants known are the migration's own overrides."""
        return rollout_status(self.get(name), (), None).to_dict()

    def __repr__(self) -> str:
        return f"<MemoryBackend version={self._version} migrations={sorted(self._migrations)}>"

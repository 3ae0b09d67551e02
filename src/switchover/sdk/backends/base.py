"""The client's transport seam: what a backend answers, and a bare source as one.

A client talks to one :class:`Backend` and never asks which kind it is. A backend is a
:class:`SnapshotSource` (the current version, every migration at that version, a wait
for the next change) that also takes the recorder's rollups (``write``) and answers the
two reads a handle offers (``window`` and ``status``). The implementations:

- ``MemoryBackend`` (``backends/memory.py``): migrations and rollups in memory, for
  tests and for embedding; imports nothing beyond the core.
- ``StoreBackend`` (``backends/store.py``): the SQLite or PostgreSQL store, through
  SQLAlchemy; on PostgreSQL it waits on LISTEN/NOTIFY.
- ``HttpBackend`` (``backends/http.py``): a running ``switchover serve``, through httpx.
- :class:`SourceBackend`: any bare snapshot source; decisions only, rollups dropped.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from switchover.core.migration import Migration
from switchover.core.rollup import Rollup, RollupKey, WriteReport


class SnapshotSource(Protocol):
    """Where a client's snapshot comes from."""

    def version(self) -> int:
        """The current version: cheap, polled every refresh interval."""
        ...

    def load(self) -> tuple[int, list[Migration]]:
        """Every migration, and the version they are at."""
        ...

    def wait_for_change(self, timeout: float, stop: threading.Event) -> None:
        """Return when something may have changed, after ``timeout`` at the latest."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class Backend(SnapshotSource, Protocol):
    """A snapshot source that also keeps what the client records and reads it back."""

    def write(
        self, rollups: Sequence[tuple[RollupKey, Rollup]], samples: Sequence[dict[str, Any]]
    ) -> WriteReport | None:
        """Keep flushed rollups and shadow samples (the recorder's sink); may raise.
        ``None`` when all was kept, else what was refused and why."""
        ...

    def window(
        self,
        name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        operation: str | None = None,
        last: timedelta | None = None,
    ) -> dict[str, Any]:
        """Per side over a window: calls, error and fallback rates, quantiles, outcomes."""
        ...

    def status(self, name: str) -> dict[str, Any]:
        """The migration's rollout status: the migration, tenants on the candidate."""
        ...


class SourceBackend:
    """A snapshot source (and optionally a rollup sink) as a backend. Bare, it decides and
    recorded calls go nowhere; the store and HTTP backends add their sink and reads."""

    def __init__(self, source: SnapshotSource, sink: Any = None) -> None:
        self.source = source
        self._sink = sink

    def version(self) -> int:
        return self.source.version()

    def load(self) -> tuple[int, list[Migration]]:
        return self.source.load()

    def wait_for_change(self, timeout: float, stop: threading.Event) -> None:
        self.source.wait_for_change(timeout, stop)

    def close(self) -> None:
        self.source.close()

    def write(
        self, rollups: Sequence[tuple[RollupKey, Rollup]], samples: Sequence[dict[str, Any]]
    ) -> WriteReport | None:
        """What the sink refused, if anything, for the recorder's counts."""
        return None if self._sink is None else self._sink.write(rollups, samples)

    def window(
        self,
        name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        operation: str | None = None,
        last: timedelta | None = None,
    ) -> dict[str, Any]:
        raise NotImplementedError("window needs a backend that keeps rollups (store or server)")

    def status(self, name: str) -> dict[str, Any]:
        raise NotImplementedError("status needs a backend that keeps history (store or server)")


def as_backend(obj: Backend | SnapshotSource) -> Backend:
    """``obj`` itself if it is a whole backend, else a bare source wrapped in one."""
    return obj if isinstance(obj, Backend) else SourceBackend(obj)

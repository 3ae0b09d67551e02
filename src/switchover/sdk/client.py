"""``switchover.connect(url)``: decisions in about a microsecond, from a local snapshot.

The client loads every migration once, compiles each for fast decisions, and keeps
them fresh from a background thread: every ``refresh_interval`` seconds it asks the
source for the store version and reloads when it moved; on PostgreSQL it also waits
on LISTEN/NOTIFY, so a change reaches it within milliseconds. If the source becomes
unreachable the last snapshot keeps serving and :meth:`Client.health` reports how
stale it is; with no snapshot at all every decision is legacy, reason
``store_unreachable``. :meth:`MigrationHandle.decide` never raises for a store problem.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from switchover.core.clock import Clock, SystemClock
from switchover.core.decision import (
    CompiledMigration,
    Decision,
    unknown_migration,
    unreachable,
)
from switchover.core.migration import Migration
from switchover.sdk.sources import SnapshotSource, source_for
from switchover.store.engine import DEFAULT_URL

log = logging.getLogger("switchover.sdk")

_EMPTY: Mapping[str, Any] = {}


class MigrationHandle:
    """One migration as seen by this process."""

    __slots__ = ("_client", "name")

    def __init__(self, client: Client, name: str) -> None:
        self._client = client
        self.name = name

    def decide(
        self, feature: str | None = None, context: Mapping[str, Any] | None = None
    ) -> Decision:
        """Which side serves this call. Never raises for a store problem."""
        compiled = self._client._compiled.get(self.name)
        if compiled is None:
            return self._client._no_migration(self.name, feature)
        return compiled.decide(feature, context if context is not None else _EMPTY)

    def is_candidate(
        self, feature: str | None = None, context: Mapping[str, Any] | None = None
    ) -> bool:
        return self.decide(feature, context).candidate

    @property
    def snapshot(self) -> Migration | None:
        """The migration as this process last loaded it, or None."""
        compiled = self._client._compiled.get(self.name)
        return compiled.migration if compiled is not None else None

    def status(self) -> dict[str, Any]:
        """Seed 003 §5.5's rollout status, read from the store (may raise StoreError)."""
        return self._client._status(self.name)

    def __repr__(self) -> str:
        return f"<MigrationHandle {self.name!r}>"


class Client:
    def __init__(
        self,
        source: SnapshotSource,
        *,
        refresh_interval: float = 1.0,
        clock: Clock | None = None,
        background: bool = True,
        status_reader: Any = None,
    ) -> None:
        if refresh_interval <= 0:
            raise ValueError("refresh_interval must be positive")
        self._source = source
        self._clock = clock or SystemClock()
        self.refresh_interval = refresh_interval
        self._compiled: dict[str, CompiledMigration] = {}
        self._loaded = False
        self._version: int | None = None
        self._last_ok: float | None = None
        self._last_error: str | None = None
        self._failures = 0
        self._status_reader = status_reader
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.refresh()
        if background:
            self._thread = threading.Thread(
                target=self._run, name="switchover-snapshot", daemon=True
            )
            self._thread.start()

    # decisions ----------------------------------------------------------------------

    def migration(self, name: str) -> MigrationHandle:
        return MigrationHandle(self, name)

    def _no_migration(self, name: str, feature: str | None) -> Decision:
        return unknown_migration(name, feature) if self._loaded else unreachable(name, feature)

    # freshness ----------------------------------------------------------------------

    def refresh(self) -> bool:
        """Check the source once; reload when the version moved. False if unreachable."""
        with self._lock:
            try:
                version = self._source.version()
                if version != self._version or not self._loaded:
                    version, migrations = self._source.load()
                    self._compiled = {m.name: CompiledMigration(m) for m in migrations}
                    self._version = version
                    self._loaded = True
            except Exception as exc:
                self._failures += 1
                if self._last_error is None:
                    log.warning(
                        "switchover: snapshot refresh failed (%s); serving the last snapshot",
                        type(exc).__name__,
                    )
                self._last_error = f"{type(exc).__name__}: {_first_line(exc)}"
                return False
            if self._last_error is not None:
                log.info("switchover: snapshot source reachable again at version %s", version)
            self._last_error = None
            self._last_ok = self._clock.monotonic()
            return True

    def staleness(self) -> float | None:
        """Seconds since the snapshot was last confirmed current; None if never loaded."""
        if self._last_ok is None:
            return None
        return max(0.0, self._clock.monotonic() - self._last_ok)

    def health(self) -> dict[str, Any]:
        staleness = self.staleness()
        return {
            "loaded": self._loaded,
            "version": self._version,
            "migrations": sorted(self._compiled),
            "staleness_seconds": None if staleness is None else round(staleness, 3),
            "stale": self._last_error is not None,
            "last_error": self._last_error,
            "failed_refreshes": self._failures,
        }

    @property
    def version(self) -> int | None:
        return self._version

    def _run(self) -> None:
        while not self._stop.is_set():
            self._source.wait_for_change(self.refresh_interval, self._stop)
            if self._stop.is_set():
                break
            self.refresh()

    def _status(self, name: str) -> dict[str, Any]:
        if self._status_reader is None:
            raise NotImplementedError("status needs a store or server URL")
        return self._status_reader(name)

    # lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with contextlib.suppress(Exception):
            self._source.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""


def connect(
    url: str | None = None,
    *,
    token: str | None = None,
    refresh_interval: float = 1.0,
    background: bool = True,
    clock: Clock | None = None,
) -> Client:
    """A client for the store at ``url`` (a database URL, or a switchover server URL).

    ``url`` defaults to ``SWITCHOVER_DATABASE_URL`` or the embedded SQLite store.
    For a server URL the token defaults to ``SWITCHOVER_TOKEN``.
    """
    url = url or os.environ.get("SWITCHOVER_DATABASE_URL") or DEFAULT_URL
    token = token or os.environ.get("SWITCHOVER_TOKEN")
    source = source_for(url, token)
    return Client(
        source,
        refresh_interval=refresh_interval,
        clock=clock,
        background=background,
        status_reader=_status_reader(source),
    )


def _status_reader(source: SnapshotSource) -> Any:
    from switchover.sdk.sources import HttpSource, StoreSource

    if isinstance(source, StoreSource):
        from switchover.rollout.service import RolloutService

        service = RolloutService(source.store)
        return lambda name: service.status(name).to_dict()
    if isinstance(source, HttpSource):
        return lambda name: source._get(f"/v1/migrations/{name}/status")
    return None

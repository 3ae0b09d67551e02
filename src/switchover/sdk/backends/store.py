"""The store itself as a backend: SQLite or PostgreSQL, through SQLAlchemy.

:class:`StoreSource` reads the snapshot: the store version (polled), every migration,
and on PostgreSQL a LISTEN connection, so a change reaches every process in
milliseconds instead of a full polling interval. :class:`StoreBackend` adds what the
client records (the store's rollup sink, with its retention) and the two reads.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from switchover.core.clock import Clock
from switchover.core.migration import Migration
from switchover.metrics.service import MetricsService
from switchover.rollout.service import RolloutService
from switchover.sdk.backends.base import SourceBackend
from switchover.store.engine import create_store_engine, parse_url
from switchover.store.repository import NOTIFY_CHANNEL, Store
from switchover.store.rollup_sink import DEFAULT_RETENTION_DAYS, StoreSink

_SLICE = 0.25


class StoreSource:
    def __init__(self, url: str) -> None:
        self.url = parse_url(url)
        self.store = Store(
            create_store_engine(url, pool_size=2, max_overflow=2)
            if self.url.get_backend_name() == "postgresql"
            else create_store_engine(url)
        )
        self._listener: Any = None

    def version(self) -> int:
        return self.store.store_version()

    def load(self) -> tuple[int, list[Migration]]:
        return self.store.snapshot()

    def wait_for_change(self, timeout: float, stop: threading.Event) -> None:
        if not self.store.is_postgres:
            stop.wait(timeout)
            return
        deadline = time.monotonic() + timeout
        try:
            conn = self._listen_connection()
            while not stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                # short slices so that close() is never kept waiting for a whole interval
                for _ in conn.notifies(timeout=min(remaining, _SLICE), stop_after=1):
                    return
        except Exception:
            self._drop_listener()
            stop.wait(timeout)

    def _listen_connection(self) -> Any:
        import psycopg

        if self._listener is None or self._listener.closed:
            conninfo = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
            conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self._listener = conn
        return self._listener

    def _drop_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                self._listener.close()
        self._listener = None

    def close(self) -> None:
        self._drop_listener()
        self.store.dispose()


class StoreBackend(SourceBackend):
    """Snapshot, rollups, window and status, all from the store at ``url``."""

    def __init__(
        self,
        url: str,
        *,
        retention_days: float = DEFAULT_RETENTION_DAYS,
        clock: Clock | None = None,
    ) -> None:
        source = StoreSource(url)
        now = (lambda: clock.now().timestamp()) if clock is not None else time.time
        super().__init__(
            source, StoreSink(source.store, retention_days=retention_days, time_fn=now)
        )
        self.source: StoreSource = source
        self.store = source.store
        self._metrics = MetricsService(self.store, clock)
        self._rollout = RolloutService(self.store)

    def window(
        self,
        name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        operation: str | None = None,
        last: timedelta | None = None,
    ) -> dict[str, Any]:
        report = self._metrics.window(
            name, since=since, until=until, last=last, operation=operation
        )
        return report.to_dict()

    def status(self, name: str) -> dict[str, Any]:
        return self._rollout.status(name).to_dict()

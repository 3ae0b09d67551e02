"""Where a client's snapshot comes from: the store itself, or a switchover server.

A source answers three questions: which version is current (cheap, polled every
interval), what every migration looks like at that version, and, optionally, it can
block until something changes (PostgreSQL LISTEN/NOTIFY), so a change reaches every
process in milliseconds instead of a full polling interval.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Protocol

import httpx

from switchover.core.migration import Migration
from switchover.errors import StoreError
from switchover.store.engine import create_store_engine, parse_url
from switchover.store.repository import NOTIFY_CHANNEL, Store

_SLICE = 0.25


class SnapshotSource(Protocol):
    def version(self) -> int: ...

    def load(self) -> tuple[int, list[Migration]]: ...

    def wait_for_change(self, timeout: float, stop: threading.Event) -> None:
        """Return when something may have changed, after ``timeout`` at the latest."""
        ...

    def close(self) -> None: ...


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


class HttpSource:
    """Reads the snapshot from a running ``switchover serve`` (a viewer token is enough)."""

    def __init__(self, url: str, token: str | None, timeout: float = 5.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def _get(self, path: str) -> Any:
        try:
            response = self.http.get(path)
        except httpx.HTTPError as exc:
            raise StoreError(
                f"the switchover server is unreachable ({type(exc).__name__})"
            ) from exc
        if response.status_code != 200:
            raise StoreError(f"the switchover server answered {response.status_code} for {path}")
        return response.json()

    def version(self) -> int:
        return int(self._get("/v1/snapshot/version")["version"])

    def load(self) -> tuple[int, list[Migration]]:
        data = self._get("/v1/snapshot")
        return int(data["version"]), [Migration.from_dict(m) for m in data["migrations"]]

    def wait_for_change(self, timeout: float, stop: threading.Event) -> None:
        stop.wait(timeout)

    def close(self) -> None:
        self.http.close()


def source_for(url: str, token: str | None = None) -> SnapshotSource:
    if url.startswith(("http://", "https://")):
        return HttpSource(url, token)
    return StoreSource(url)

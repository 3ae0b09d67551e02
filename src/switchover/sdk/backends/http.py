"""A running ``switchover serve`` as a backend, through httpx.

For processes without database access: the snapshot comes from ``/v1/snapshot``
(a viewer token is enough), rollups go to ``POST /v1/rollups`` (operator token, one
idempotency key a batch, the same key when the recorder retries it), and
the window and status are the server's metrics and status endpoints. Transport
errors and unexpected statuses become :class:`~switchover.errors.StoreError`.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import httpx

from switchover.core.migration import Migration
from switchover.errors import StoreError
from switchover.sdk.backends.base import SourceBackend
from switchover.sdk.sinks import HttpSink

DEFAULT_TIMEOUT = 5.0


class HttpSource:
    """Reads the snapshot from a running ``switchover serve`` (a viewer token is enough)."""

    def __init__(
        self,
        url: str,
        token: str | None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(
            base_url=url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )

    def get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET ``path``; its JSON body, or StoreError when unreachable or not 200."""
        try:
            response = self.http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise StoreError(
                f"the switchover server is unreachable ({type(exc).__name__})"
            ) from exc
        if response.status_code != 200:
            raise StoreError(f"the switchover server answered {response.status_code} for {path}")
        return response.json()

    def version(self) -> int:
        return int(self.get_json("/v1/snapshot/version")["version"])

    def load(self) -> tuple[int, list[Migration]]:
        data = self.get_json("/v1/snapshot")
        return int(data["version"]), [Migration.from_dict(m) for m in data["migrations"]]

    def wait_for_change(self, timeout: float, stop: threading.Event) -> None:
        stop.wait(timeout)

    def close(self) -> None:
        self.http.close()


class HttpBackend(SourceBackend):
    """Snapshot, rollups, window and status, all from the switchover server at ``url``.

    ``transport`` replaces httpx's network transport (``httpx.MockTransport`` in tests).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        source = HttpSource(url, token, timeout, transport=transport)
        super().__init__(source, HttpSink(source.http))
        self.source: HttpSource = source

    def window(
        self,
        name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        operation: str | None = None,
        last: timedelta | None = None,
    ) -> dict[str, Any]:
        params: dict[str, str] = {}
        if since is not None:
            params["since"] = since.isoformat()
        if until is not None:
            params["until"] = until.isoformat()
        if operation is not None:
            params["operation"] = operation
        if last is not None:
            params["window"] = f"{int(last.total_seconds())}s"
        return self.source.get_json(f"/v1/migrations/{name}/metrics", params)

    def status(self, name: str) -> dict[str, Any]:
        return self.source.get_json(f"/v1/migrations/{name}/status")

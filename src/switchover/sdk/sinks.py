"""The recorder's sink into a switchover server, for processes without database access."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from switchover.core.rollup import Rollup, RollupKey
from switchover.errors import StoreError


class HttpSink:
    """Posts rollups to ``POST /v1/rollups`` of a switchover server (operator token)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def write(
        self, rollups: Sequence[tuple[RollupKey, Rollup]], samples: Sequence[dict[str, Any]]
    ) -> None:
        payload = {
            "rollups": [{"key": key._asdict(), "rollup": r.to_dict()} for key, r in rollups],
            "samples": list(samples),
        }
        try:
            response = self.http.post("/v1/rollups", json=payload)
        except httpx.HTTPError as exc:
            raise StoreError(
                f"the switchover server is unreachable ({type(exc).__name__})"
            ) from exc
        if response.status_code >= 300:
            raise StoreError(
                f"the switchover server answered {response.status_code} to /v1/rollups"
            )

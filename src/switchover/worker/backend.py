"""The control plane as a worker sees it: runtime configs and inbound routes over HTTP."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from switchover.core.dispatch import CallRequest, DispatchRefused, Refusal
from switchover.worker.config_client import ConfigRejected, ConfigUnavailable


class Backend:
    """A small synchronous client (thread-safe), used from worker threads."""

    def __init__(self, base_url: str, token: str | None, *, timeout: float = 5.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        try:
            r = self.http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise ConfigUnavailable(
                f"{self.base_url} could not be reached ({type(exc).__name__})"
            ) from exc
        if r.status_code == 200:
            return r.json()
        try:
            error = r.json().get("error") or {}
        except ValueError:
            error = {}
        code = str(error.get("code") or r.status_code)
        message = str(error.get("message") or r.text[:200])
        if r.status_code >= 500:
            raise ConfigUnavailable(
                f"{self.base_url} answered {r.status_code}: {message}", code=error.get("code")
            )
        raise ConfigRejected(r.status_code, code, message, error.get("reason"))

    def runtime_config(self, agent_id: str, campaign_id: str | None) -> dict[str, Any]:
        params = {"campaignId": campaign_id} if campaign_id else None
        body = self._get(f"/api/v1/agents/{quote(agent_id, safe='')}/runtime-config", params)
        return dict(body["config"])

    def inbound_route(self, number: str) -> CallRequest:
        try:
            body = self._get(f"/api/v1/phone-numbers/{quote(number, safe='')}/inbound-route")
        except ConfigRejected as exc:
            reason = {r.value: r for r in Refusal}.get(exc.reason or "", Refusal.UNKNOWN_NUMBER)
            raise DispatchRefused(reason, exc.message, field="phone_number") from None
        m = body["metadata"]
        return CallRequest(
            agent_id=m["agent_id"],
            campaign_id=m["campaign_id"],
            lead_id=None,
            call_type="inbound",
            phone_number=m["phone_number"],
        )

    def heartbeat(self, body: dict[str, Any]) -> None:
        """One heartbeat to the worker registry; raises on a refusal or transport error."""
        r = self.http.post("/v1/workers/heartbeat", json=body)
        if r.status_code != 200:
            raise ConfigUnavailable(f"{self.base_url} answered {r.status_code}: {r.text[:200]}")

    def healthy(self) -> tuple[bool, str]:
        """Whether the control plane answers and accepts the token, and a word on why not."""
        try:
            r = self.http.get("/v1/snapshot/version")
        except httpx.HTTPError as exc:
            return False, f"not reachable ({type(exc).__name__})"
        if r.status_code in (401, 403):
            return False, f"token refused ({r.status_code}): set SWITCHOVER_TOKEN to a worker token"
        if r.status_code != 200:
            return False, f"answered {r.status_code}"
        return True, "reachable, token accepted"

    def close(self) -> None:
        self.http.close()

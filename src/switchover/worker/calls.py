"""Dispatch in the worker: job metadata -> the call and its agent's runtime config."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from switchover.core.dispatch import CallRequest, DispatchRefused, Refusal, parse_metadata
from switchover.worker.config_client import (
    ConfigClient,
    ConfigRejected,
    ConfigUnavailable,
    ResolvedConfig,
)

InboundLookup = Callable[[str], CallRequest]


@dataclass(frozen=True)
class Dispatched:
    call: CallRequest
    resolved: ResolvedConfig

    @property
    def config(self) -> dict[str, Any]:
        return self.resolved.config


class Dispatcher:
    def __init__(self, configs: ConfigClient, inbound: InboundLookup | None = None) -> None:
        self.configs = configs
        self.inbound = inbound

    async def dispatch(self, metadata: str | bytes | Mapping[str, Any] | None) -> Dispatched:
        """The call and its config, or :class:`DispatchRefused` with a reason."""
        call = parse_metadata(metadata)
        if call.agent_id is None:
            if self.inbound is None or call.phone_number is None:
                raise DispatchRefused(
                    Refusal.NO_AGENT, "the job metadata has no agent_id", field="agent_id"
                )
            routed = await asyncio.to_thread(self.inbound, call.phone_number)
            call = CallRequest(
                agent_id=routed.agent_id,
                campaign_id=call.campaign_id or routed.campaign_id,
                lead_id=call.lead_id,
                call_type="inbound",
                phone_number=routed.phone_number,
            )
        assert call.agent_id is not None
        try:
            resolved = await self.configs.get(call.agent_id, call.campaign_id)
        except ConfigRejected as exc:
            reason = Refusal.AGENT_INACTIVE if exc.status == 400 else Refusal.UNKNOWN_AGENT
            if exc.status in (401, 403):
                reason = Refusal.CONFIG_UNAVAILABLE
            raise DispatchRefused(reason, exc.message, field="agent_id") from None
        except ConfigUnavailable as exc:
            raise DispatchRefused(
                Refusal.CONFIG_UNAVAILABLE,
                f"no runtime config for agent {call.agent_id!r}: {exc} (and none cached)",
                field="agent_id",
                cause=exc.code,
            ) from None
        return Dispatched(call, resolved)

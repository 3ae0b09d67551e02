"""Which agent serves a call (seed 000 step 2.2), decided from plain data.

Outbound: the job's metadata names the agent (``agent_id``) with ``campaign_id``,
``lead_id`` and ``call_type``. Inbound: the dialled number leads to its campaign, and
the campaign to its primary agent, else its first. A call that cannot be placed is
refused with a reason code and a sentence that says what to fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from switchover.core.agents import Campaign, PhoneNumber, normalize_number
from switchover.errors import SwitchoverError


class Refusal(StrEnum):
    BAD_METADATA = "bad_metadata"
    NO_AGENT = "no_agent_id"
    UNKNOWN_CALL_TYPE = "unknown_call_type"
    UNKNOWN_NUMBER = "unknown_number"
    NO_CAMPAIGN = "no_campaign"
    EMPTY_CAMPAIGN = "campaign_has_no_agents"
    UNKNOWN_AGENT = "unknown_agent"
    AGENT_INACTIVE = "agent_inactive"
    AT_CAPACITY = "at_capacity"
    DRAINING = "draining"
    CONFIG_UNAVAILABLE = "config_unavailable"


class DispatchRefused(SwitchoverError):
    """A call that this worker will not take; ``reason`` is a :class:`Refusal`."""

    code = "refused"
    exit_code = 3
    http_status = 404

    def __init__(
        self, reason: Refusal, message: str, *, field: str | None = None, cause: str | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.reason = reason
        self.cause = cause
        """What the control plane said was wrong (its error code, e.g. ``secret_key``)."""

    @property
    def label(self) -> str:
        """``config_unavailable`` or, when the cause is known, ``config_unavailable:secret_key``."""
        return f"{self.reason.value}:{self.cause}" if self.cause else self.reason.value

    def to_dict(self) -> dict[str, str | None]:
        return {**super().to_dict(), "reason": self.reason.value, "cause": self.cause}


CALL_TYPES = ("outbound", "inbound")


@dataclass(frozen=True, slots=True)
class CallRequest:
    """What a job's metadata says about its call."""

    agent_id: str | None
    campaign_id: str | None
    lead_id: str | None
    call_type: str
    phone_number: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "campaign_id": self.campaign_id,
            "lead_id": self.lead_id,
            "call_type": self.call_type,
            "phone_number": self.phone_number,
        }


def _opt_str(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    raise DispatchRefused(
        Refusal.BAD_METADATA, f"job metadata field {name!r} must be a string", field=name
    )


def parse_metadata(raw: str | bytes | Mapping[str, Any] | None) -> CallRequest:
    """A call request from a job's metadata (a JSON object, as the seed's backend writes it).

    Outbound calls must name ``agent_id``; inbound calls may instead name the dialled
    ``phone_number``, which :func:`route_inbound` turns into an agent.
    """
    if raw is None or raw == "" or raw == b"":
        raise DispatchRefused(
            Refusal.BAD_METADATA,
            "the job has no metadata: the backend must set the room metadata to JSON with "
            '"agent_id" (seed 000 step 2.2)',
            field="metadata",
        )
    if isinstance(raw, str | bytes):
        try:
            data = json.loads(raw)
        except ValueError:
            raise DispatchRefused(
                Refusal.BAD_METADATA, "the job metadata is not JSON", field="metadata"
            ) from None
    else:
        data = raw
    if not isinstance(data, Mapping):
        raise DispatchRefused(
            Refusal.BAD_METADATA, "the job metadata must be a JSON object", field="metadata"
        )
    call_type = _opt_str(data, "call_type") or "outbound"
    if call_type not in CALL_TYPES:
        raise DispatchRefused(
            Refusal.UNKNOWN_CALL_TYPE,
            f"call_type {call_type!r} is not known: use outbound or inbound",
            field="call_type",
        )
    call = CallRequest(
        agent_id=_opt_str(data, "agent_id"),
        campaign_id=_opt_str(data, "campaign_id"),
        lead_id=_opt_str(data, "lead_id"),
        call_type=call_type,
        phone_number=_opt_str(data, "phone_number"),
    )
    if call.agent_id is None and not (call_type == "inbound" and call.phone_number):
        raise DispatchRefused(
            Refusal.NO_AGENT,
            "the job metadata has no agent_id"
            + (
                " (an inbound call may give phone_number instead)"
                if call_type == "inbound"
                else ": outbound calls must name their agent"
            ),
            field="agent_id",
        )
    return call


def choose_agent(campaign: Campaign) -> str:
    """The campaign's primary agent, else its first."""
    for member in campaign.agents:
        if member.is_primary:
            return member.agent_id
    if not campaign.agents:
        raise DispatchRefused(
            Refusal.EMPTY_CAMPAIGN,
            f"campaign {campaign.id!r} has no agents: add one with "
            f"'switchover agents campaign set {campaign.id} --agents AGENT_ID'",
            field="campaign_id",
        )
    return campaign.agents[0].agent_id


def route_inbound(
    number: str,
    numbers: Mapping[str, PhoneNumber],
    campaigns: Mapping[str, Campaign],
) -> CallRequest:
    """The call request for an inbound call to ``number``, or a refusal saying why not."""
    normalized = normalize_number(number)
    record = numbers.get(normalized)
    if record is None:
        raise DispatchRefused(
            Refusal.UNKNOWN_NUMBER,
            f"no phone number {normalized} is registered: add it with "
            f"'switchover agents number set {normalized} --campaign CAMPAIGN_ID'",
            field="number",
        )
    if record.campaign_id is None or record.campaign_id not in campaigns:
        raise DispatchRefused(
            Refusal.NO_CAMPAIGN,
            f"phone number {normalized} has no inbound campaign: set one with "
            f"'switchover agents number set {normalized} --campaign CAMPAIGN_ID'",
            field="number",
        )
    campaign = campaigns[record.campaign_id]
    return CallRequest(
        agent_id=choose_agent(campaign),
        campaign_id=campaign.id,
        lead_id=None,
        call_type="inbound",
        phone_number=normalized,
    )

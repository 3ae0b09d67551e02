"""Dispatch from call metadata (seed 000 step 2.2): outbound, inbound, and clear refusals."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from switchover.core.agents import Campaign, CampaignAgent, PhoneNumber
from switchover.core.dispatch import (
    CallRequest,
    DispatchRefused,
    Refusal,
    parse_metadata,
    route_inbound,
)
from switchover.worker.calls import Dispatcher
from switchover.worker.config_client import ConfigClient, ConfigRejected, ConfigUnavailable

OUTBOUND = {
    "agent_id": "cmgr32z4q000039dudjfah00c",
    "campaign_id": "camp456",
    "lead_id": "lead123",
    "phone_number": "+14155550123",
    "call_type": "outbound",
    "created_at": "2025-10-16T14:19:00.000Z",
}


def test_outbound_metadata_as_the_seed_writes_it() -> None:
    call = parse_metadata(json.dumps(OUTBOUND))
    assert (call.agent_id, call.campaign_id, call.lead_id, call.call_type) == (
        "cmgr32z4q000039dudjfah00c",
        "camp456",
        "lead123",
        "outbound",
    )


@pytest.mark.parametrize(
    ("raw", "reason", "words"),
    [
        ("", Refusal.BAD_METADATA, "no metadata"),
        ("{not json", Refusal.BAD_METADATA, "not JSON"),
        ("[1, 2]", Refusal.BAD_METADATA, "JSON object"),
        ('{"campaign_id": "c"}', Refusal.NO_AGENT, "outbound calls must name their agent"),
        ('{"agent_id": "a", "call_type": "fax"}', Refusal.UNKNOWN_CALL_TYPE, "outbound or inbound"),
        ('{"agent_id": {"x": 1}}', Refusal.BAD_METADATA, "agent_id"),
    ],
)
def test_bad_metadata_is_refused_with_a_reason(raw: str, reason: Refusal, words: str) -> None:
    with pytest.raises(DispatchRefused) as info:
        parse_metadata(raw)
    assert info.value.reason is reason and words in info.value.message


CAMPAIGNS = {
    "reception": Campaign(
        "reception", "Reception", (CampaignAgent("support"), CampaignAgent("greeter", True))
    ),
    "quotes": Campaign("quotes", "Quotes", (CampaignAgent("sales"), CampaignAgent("support"))),
    "empty": Campaign("empty", "Empty", ()),
}
NUMBERS = {
    "+14155550100": PhoneNumber("+14155550100", "reception"),
    "+14155550199": PhoneNumber("+14155550199", "quotes"),
    "+14155550142": PhoneNumber("+14155550142", None),
    "+14155550143": PhoneNumber("+14155550143", "empty"),
}


def test_inbound_goes_to_the_primary_agent_else_the_first() -> None:
    primary = route_inbound("+1 (415) 555-0100", NUMBERS, CAMPAIGNS)
    assert (primary.agent_id, primary.campaign_id, primary.call_type) == (
        "greeter",
        "reception",
        "inbound",
    )
    assert route_inbound("0014155550199", NUMBERS, CAMPAIGNS).agent_id == "sales"


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("+14155550111", Refusal.UNKNOWN_NUMBER),
        ("+14155550142", Refusal.NO_CAMPAIGN),
        ("+14155550143", Refusal.EMPTY_CAMPAIGN),
    ],
)
def test_inbound_refusals_say_what_to_fix(number: str, reason: Refusal) -> None:
    with pytest.raises(DispatchRefused) as info:
        route_inbound(number, NUMBERS, CAMPAIGNS)
    assert info.value.reason is reason and "switchover agents" in info.value.message


def _fetch(agent_id: str, campaign_id: str | None) -> dict[str, Any]:
    if agent_id == "gone":
        raise ConfigRejected(404, "not_found", "no agent 'gone'")
    if agent_id == "off":
        raise ConfigRejected(400, "inactive", "agent 'off' is not active")
    if agent_id == "unreachable":
        raise ConfigUnavailable("backend down")
    return {"agent_id": agent_id, "campaign_id": campaign_id, "llm_provider": "openai"}


def test_dispatcher_resolves_outbound_and_inbound_calls() -> None:
    routes: list[str] = []

    def inbound(number: str) -> CallRequest:
        routes.append(number)
        return route_inbound(number, NUMBERS, CAMPAIGNS)

    d = Dispatcher(ConfigClient(_fetch), inbound)
    out = asyncio.run(d.dispatch(OUTBOUND))
    assert out.config["agent_id"] == OUTBOUND["agent_id"] and out.config["campaign_id"] == "camp456"
    inbound_call = asyncio.run(d.dispatch({"call_type": "inbound", "phone_number": "+14155550100"}))
    assert inbound_call.call.agent_id == "greeter" and inbound_call.config["campaign_id"] == (
        "reception"
    )
    assert routes == ["+14155550100"]


@pytest.mark.parametrize(
    ("agent_id", "reason"),
    [
        ("gone", Refusal.UNKNOWN_AGENT),
        ("off", Refusal.AGENT_INACTIVE),
        ("unreachable", Refusal.CONFIG_UNAVAILABLE),
    ],
)
def test_dispatcher_refuses_calls_it_cannot_serve(agent_id: str, reason: Refusal) -> None:
    d = Dispatcher(ConfigClient(_fetch))
    with pytest.raises(DispatchRefused) as info:
        asyncio.run(d.dispatch({"agent_id": agent_id}))
    assert info.value.reason is reason

"""The agent registry over HTTP, and what core workers read (seed 000 steps 2.1 and 2.2).

Paths are the seed's (``/api/v1/...``). Readers below ``worker`` see which keys an agent
has, never their values; the runtime config, keys included, needs ``worker`` or higher.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from switchover.access import Principal
from switchover.agents.service import access_log
from switchover.api.auth import requires
from switchover.bootstrap import App
from switchover.core.access import Role
from switchover.errors import ValidationError

Viewer = Annotated[Principal, Depends(requires(Role.VIEWER))]
Worker = Annotated[Principal, Depends(requires(Role.WORKER))]
Operator = Annotated[Principal, Depends(requires(Role.OPERATOR))]


class CampaignBody(BaseModel):
    name: str | None = Field(None, description="A label for people; default: the id.")
    agents: list[str | dict[str, Any]] = Field(
        default_factory=list,
        description='Agent ids, or {"agent_id", "is_primary"}; the first is the fallback.',
    )


class NumberBody(BaseModel):
    campaign_id: str | None = Field(None, description="The campaign that takes inbound calls.")
    label: str = ""


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def _ensure_access_log() -> None:
    """The access log is on by default: one line per runtime-config read, never a key."""
    if access_log.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    access_log.addHandler(handler)
    access_log.setLevel(logging.INFO)
    access_log.propagate = False


def router(app: App) -> APIRouter:
    api = APIRouter(prefix="/api/v1", tags=["agents"])
    agents = app.agents
    agents.hot_seconds = 1.0
    _ensure_access_log()

    # --- what workers read ---------------------------------------------------------------

    @api.get("/agents/{agent_id}/runtime-config")
    async def runtime_config(
        agent_id: str,
        who: Worker,
        campaign_id: Annotated[
            str | None, Query(alias="campaignId", description="The call's campaign.")
        ] = None,
    ) -> Response:
        """Seed 000 step 2.1: the agent's runtime config with defaults, keys ``null`` when
        the agent has none (the worker uses its environment), ``cached_until`` = now + 5 min.
        404 for an unknown agent or campaign, 400 for an inactive agent."""
        answer = agents.hot_config(agent_id, campaign_id, reader=who.name)
        if answer is None:
            answer = await run_in_threadpool(
                agents.runtime_config, agent_id, campaign_id, reader=who.name
            )
        return _json(answer)

    @api.get("/phone-numbers/{number}/inbound-route")
    def inbound_route(number: str, _: Worker) -> dict[str, Any]:
        """Seed 000 step 2.2, inbound: the metadata to put on the call's room (the agent is
        the campaign's primary, else its first); 404 with a reason when there is none."""
        call = agents.route_inbound(number)
        return {"success": True, "metadata": call.to_dict()}

    # --- agents --------------------------------------------------------------------------

    @api.get("/agents")
    def list_agents(_: Viewer) -> list[dict[str, Any]]:
        return [v.to_dict() for v in agents.list()]

    @api.get("/agents/{agent_id}")
    def show_agent(agent_id: str, _: Viewer) -> dict[str, Any]:
        return agents.get(agent_id).to_dict()

    @api.put("/agents/{agent_id}")
    def put_agent(agent_id: str, body: dict[str, Any], who: Operator) -> dict[str, Any]:
        """Create or replace an agent (fields as in docs/worker.md); ``keys`` given are set,
        ``null`` clears one, keys not given stay."""
        if body.get("id", agent_id) != agent_id:
            raise ValidationError(
                f"the body's id {body.get('id')!r} differs from the path's {agent_id!r}",
                field="id",
            )
        return agents.put({**body, "id": agent_id}, actor=who.name).to_dict()

    @api.post("/agents/{agent_id}/activate")
    def activate(agent_id: str, who: Operator) -> dict[str, Any]:
        return agents.set_active(agent_id, True, actor=who.name).to_dict()

    @api.post("/agents/{agent_id}/deactivate")
    def deactivate(agent_id: str, who: Operator) -> dict[str, Any]:
        return agents.set_active(agent_id, False, actor=who.name).to_dict()

    @api.delete("/agents/{agent_id}")
    def delete_agent(agent_id: str, who: Operator) -> dict[str, str]:
        agents.delete(agent_id, actor=who.name)
        return {"deleted": agent_id}

    @api.post("/agents/import")
    def import_agents(body: dict[str, Any], who: Operator) -> dict[str, Any]:
        """The import document (``agents``, ``campaigns``, ``phone_numbers``), all or
        nothing. Keys are given by value: ``{"env": "VAR"}`` references are refused (the
        server never reads its own environment for a caller; the CLI's ``agents import``
        resolves them where it runs)."""
        return agents.import_data(body, actor=who.name).to_dict()

    # --- campaigns and numbers -----------------------------------------------------------

    @api.get("/campaigns")
    def list_campaigns(_: Viewer) -> list[dict[str, Any]]:
        return [c.to_dict() for c in agents.campaigns()]

    @api.put("/campaigns/{campaign_id}")
    def put_campaign(campaign_id: str, body: CampaignBody, who: Operator) -> dict[str, Any]:
        ids: list[str] = []
        primary: str | None = None
        for item in body.agents:
            agent_id = item if isinstance(item, str) else item.get("agent_id")
            ids.append(str(agent_id))
            if isinstance(item, dict) and item.get("is_primary") is True:
                if primary is not None:
                    raise ValidationError("more than one agent is primary", field="agents")
                primary = str(agent_id)
        return agents.put_campaign(campaign_id, body.name, ids, primary, actor=who.name).to_dict()

    @api.delete("/campaigns/{campaign_id}")
    def delete_campaign(campaign_id: str, who: Operator) -> dict[str, str]:
        agents.delete_campaign(campaign_id, actor=who.name)
        return {"deleted": campaign_id}

    @api.get("/phone-numbers")
    def list_numbers(_: Viewer) -> list[dict[str, Any]]:
        return [n.to_dict() for n in agents.numbers()]

    @api.put("/phone-numbers/{number}")
    def put_number(number: str, body: NumberBody, who: Operator) -> dict[str, Any]:
        return agents.put_number(number, body.campaign_id, body.label, actor=who.name).to_dict()

    @api.delete("/phone-numbers/{number}")
    def delete_number(number: str, who: Operator) -> dict[str, str]:
        agents.delete_number(number, actor=who.name)
        return {"deleted": number}

    return api

"""The agent registry on SQLite and PostgreSQL: import, encryption at rest, runtime config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from switchover.agents.keyring import Keyring, generate_key
from switchover.agents.service import AgentService
from switchover.bootstrap import App
from switchover.core.dispatch import DispatchRefused, Refusal
from switchover.errors import (
    InactiveError,
    NotFoundError,
    SecretKeyError,
    ValidationError,
)
from switchover.store import tables as t

EXAMPLE = json.loads((Path(__file__).parents[2] / "examples" / "agents.json").read_text())
GREETER = "cmgr32z4q000039dudjfah00c"
SUPPORT = "cmgr3b1xk000139du8h2kq7pz"
RETIRED = "cmgr3d2ze000339du4r5s6t7u"
SECRET = "sk-greeting-very-secret-123"


@pytest.fixture
def agents(app: App) -> AgentService:
    return AgentService(app.store, app.clock, Keyring([generate_key()]))


def _import(agents: AgentService) -> None:
    agents.import_data(EXAMPLE, actor="alice", env={"GREETING_OPENAI_API_KEY": SECRET})


def _everything(app: App) -> dict[str, list]:
    with app.store.engine.connect() as conn:
        return {
            name: sorted(map(tuple, conn.execute(sa.select(table))), key=str)
            for name, table in (
                ("agents", t.agents),
                ("keys", t.agent_keys),
                ("campaigns", t.campaigns),
                ("members", t.campaign_agents),
                ("numbers", t.phone_numbers),
            )
        }


def test_example_file_imports_and_reimports_as_updates(agents: AgentService) -> None:
    first = agents.import_data(EXAMPLE, actor="alice", env={"GREETING_OPENAI_API_KEY": SECRET})
    assert first.created == {"agents": 4, "campaigns": 2, "phone_numbers": 2}
    assert first.keys_set == 1
    again = agents.import_data(EXAMPLE, actor="bob", env={"GREETING_OPENAI_API_KEY": SECRET})
    assert again.updated == {"agents": 4, "campaigns": 2, "phone_numbers": 2}
    assert [v.agent.id for v in agents.list() if not v.agent.is_active] == [RETIRED]
    assert agents.get(GREETER).keys_set == ("llm_api_key",)
    assert agents.get(GREETER).agent.updated_by == "bob"


def test_keys_are_encrypted_at_rest_and_decrypt_only_with_the_key(
    app: App, agents: AgentService
) -> None:
    _import(agents)
    stored = json.dumps(_everything(app), default=str)
    assert SECRET not in stored
    assert agents.runtime_config(GREETER)["config"]["llm_api_key"] == SECRET
    other = AgentService(app.store, app.clock, Keyring([generate_key()]))
    with pytest.raises(SecretKeyError, match="another key"):
        other.runtime_config(GREETER)
    rotated = AgentService(app.store, app.clock, Keyring([generate_key(), agents.keyring._keys[0]]))
    assert rotated.runtime_config(GREETER)["config"]["llm_api_key"] == SECRET
    no_key = AgentService(app.store, app.clock, Keyring([]))
    assert no_key.runtime_config(SUPPORT)["config"]["llm_api_key"] is None  # no keys: fine
    with pytest.raises(SecretKeyError, match="SWITCHOVER_SECRET_KEY is not set"):
        no_key.set_key(SUPPORT, "tts_api_key", "ck-1")


def test_runtime_config_for_a_campaign_and_its_refusals(agents: AgentService) -> None:
    _import(agents)
    answer = agents.runtime_config(GREETER, "camp_inbound_reception")
    cfg = answer["config"]
    assert cfg["is_primary"] is True and cfg["voice_id"] == "echo" and cfg["temperature"] == 0.6
    assert agents.runtime_config(SUPPORT, "camp_outbound_quotes")["config"]["is_primary"] is False
    with pytest.raises(NotFoundError) as unknown:
        agents.runtime_config("nobody")
    assert unknown.value.http_status == 404
    with pytest.raises(InactiveError) as inactive:
        agents.runtime_config(RETIRED)
    assert inactive.value.http_status == 400 and "switchover agents activate" in str(inactive.value)
    with pytest.raises(NotFoundError, match="not in campaign"):
        agents.runtime_config(GREETER, "camp_outbound_quotes")
    with pytest.raises(NotFoundError, match="no campaign"):
        agents.runtime_config(GREETER, "camp_nope")


def test_inbound_routing_from_the_store(agents: AgentService) -> None:
    _import(agents)
    call = agents.route_inbound("+1 415 555 0100")
    assert (call.agent_id, call.campaign_id) == (GREETER, "camp_inbound_reception")
    assert agents.route_inbound("+14155550199").agent_id == "cmgr3c7pa000239dubv0m1yqe"
    agents.put_number("+14155550142", None, "unassigned")
    with pytest.raises(DispatchRefused) as info:
        agents.route_inbound("+14155550142")
    assert info.value.reason is Refusal.NO_CAMPAIGN
    agents.delete_campaign("camp_outbound_quotes")
    with pytest.raises(DispatchRefused) as gone:
        agents.route_inbound("+14155550199")
    assert gone.value.reason is Refusal.NO_CAMPAIGN


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["agents"][1].update(temperature=9), "temperature"),
        (lambda d: d["campaigns"][0]["agents"].append({"agent_id": "ghost"}), "agents"),
        (lambda d: d["phone_numbers"][0].update(campaign_id="camp_ghost"), "phone_numbers"),
        (lambda d: d["phone_numbers"][1].update(number="call me"), "number"),
        (lambda d: d["agents"].append(dict(d["agents"][0])), "agents"),
        (lambda d: d.update(extra=[]), "extra"),
    ],
)
def test_a_bad_import_writes_nothing(app: App, agents: AgentService, mutate, field: str) -> None:
    data = json.loads(json.dumps(EXAMPLE))
    mutate(data)
    before = _everything(app)
    with pytest.raises(ValidationError) as info:
        agents.import_data(data, actor="alice", env={"GREETING_OPENAI_API_KEY": SECRET})
    assert info.value.field == field
    assert _everything(app) == before


def test_agent_changes_keys_and_deletion(agents: AgentService) -> None:
    _import(agents)
    agents.set_key(SUPPORT, "tts_api_key", "ck-support")
    assert agents.runtime_config(SUPPORT)["config"]["tts_api_key"] == "ck-support"
    agents.set_key(SUPPORT, "tts_api_key", None)
    assert agents.runtime_config(SUPPORT)["config"]["tts_api_key"] is None
    agents.set_active(RETIRED, True, actor="alice")
    assert agents.runtime_config(RETIRED)["config"]["agent_id"] == RETIRED
    from switchover.errors import ConflictError

    with pytest.raises(ConflictError, match="camp_inbound_reception"):
        agents.delete(GREETER)
    agents.delete(RETIRED)
    with pytest.raises(NotFoundError):
        agents.get(RETIRED)

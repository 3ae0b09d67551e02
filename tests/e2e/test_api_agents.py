"""The agent registry and the runtime-config endpoint over HTTP, on both engines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from switchover.agents.keyring import Keyring, generate_key
from switchover.api.app import create_app
from switchover.bootstrap import App

EXAMPLE = json.loads((Path(__file__).parents[2] / "examples" / "agents.json").read_text())
GREETER = "cmgr32z4q000039dudjfah00c"
RETIRED = "cmgr3d2ze000339du4r5s6t7u"
SECRET = "sk-greeting-very-secret-123"


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    app.agents.keyring = Keyring([generate_key()])
    app.agents.import_data(EXAMPLE, actor="seed", env={"GREETING_OPENAI_API_KEY": SECRET})
    with TestClient(create_app(app)) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_runtime_config_needs_a_worker_token_and_answers_as_the_seed(
    client: TestClient, tokens: dict[str, str], app: App, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"/api/v1/agents/{GREETER}/runtime-config?campaignId=camp_inbound_reception"
    assert client.get(url).status_code == 401
    denied = client.get(url, headers=auth(tokens["viewer"]))
    assert denied.status_code == 403 and SECRET not in denied.text
    caplog.set_level(logging.INFO, logger="switchover.agents.access")
    for role in ("worker", "operator"):
        r = client.get(url, headers=auth(tokens[role]))
        assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["config"]["agent_id"] == GREETER
    assert body["config"]["llm_api_key"] == SECRET and body["config"]["tts_api_key"] is None
    until = datetime.fromisoformat(body["cached_until"].replace("Z", "+00:00"))
    assert until - app.clock.now() == timedelta(minutes=5)
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "switchover.agents.access"]
    assert lines[-1] == (
        f"runtime config fetched for agent {GREETER} (campaign: camp_inbound_reception) "
        "by operator-bot"
    )
    assert not any(SECRET in line for line in caplog.text.splitlines())


def test_runtime_config_404_and_400(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["worker"])
    missing = client.get("/api/v1/agents/nobody/runtime-config", headers=h)
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "agent_id"
    inactive = client.get(f"/api/v1/agents/{RETIRED}/runtime-config", headers=h)
    assert inactive.status_code == 400
    assert inactive.json()["error"]["code"] == "inactive"
    wrong = client.get(
        f"/api/v1/agents/{GREETER}/runtime-config?campaignId=camp_outbound_quotes", headers=h
    )
    assert wrong.status_code == 404 and wrong.json()["error"]["field"] == "campaignId"


def test_readers_below_worker_see_which_keys_exist_never_their_values(
    client: TestClient, tokens: dict[str, str]
) -> None:
    h = auth(tokens["viewer"])
    listed = client.get("/api/v1/agents", headers=h)
    one = client.get(f"/api/v1/agents/{GREETER}", headers=h)
    assert listed.status_code == one.status_code == 200
    assert one.json()["keys_set"] == ["llm_api_key"]
    assert SECRET not in listed.text and SECRET not in one.text
    assert len(listed.json()) == 4
    campaigns = client.get("/api/v1/campaigns", headers=h).json()
    assert {c["id"] for c in campaigns} == {"camp_inbound_reception", "camp_outbound_quotes"}


def test_operators_manage_agents_campaigns_and_numbers(
    client: TestClient, tokens: dict[str, str]
) -> None:
    op, worker = auth(tokens["operator"]), auth(tokens["worker"])
    assert client.put("/api/v1/agents/new-1", json={"name": "N"}, headers=worker).status_code == 403
    made = client.put(
        "/api/v1/agents/new-1",
        json={"name": "New", "llm_model": "gpt-4o", "keys": {"tts_api_key": "ck-new"}},
        headers=op,
    )
    assert made.status_code == 200 and made.json()["keys_set"] == ["tts_api_key"]
    assert "ck-new" not in made.text
    bad = client.put("/api/v1/agents/new-1", json={"name": "New", "temperature": 7}, headers=op)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "temperature"
    camp = client.put(
        "/api/v1/campaigns/camp-new",
        json={"agents": ["new-1", {"agent_id": GREETER, "is_primary": True}]},
        headers=op,
    )
    assert camp.status_code == 200
    num = client.put(
        "/api/v1/phone-numbers/+14155550177", json={"campaign_id": "camp-new"}, headers=op
    )
    assert num.status_code == 200
    route = client.get("/api/v1/phone-numbers/+14155550177/inbound-route", headers=worker)
    assert route.json()["metadata"] == {
        "agent_id": GREETER,
        "campaign_id": "camp-new",
        "lead_id": None,
        "call_type": "inbound",
        "phone_number": "+14155550177",
    }
    unknown = client.get("/api/v1/phone-numbers/+14155550000/inbound-route", headers=worker)
    assert unknown.status_code == 404 and unknown.json()["error"]["reason"] == "unknown_number"
    assert (
        client.post(f"/api/v1/agents/{GREETER}/deactivate", headers=op).json()["is_active"] is False
    )
    cfg = client.get(f"/api/v1/agents/{GREETER}/runtime-config", headers=worker)
    assert cfg.status_code == 400


def test_import_over_http_is_all_or_nothing(client: TestClient, tokens: dict[str, str]) -> None:
    op = auth(tokens["operator"])
    doc = {"agents": [{"id": "x1", "name": "X"}], "campaigns": [{"id": "c", "agents": ["ghost"]}]}
    r = client.post("/api/v1/agents/import", json=doc, headers=op)
    assert r.status_code == 422 and "ghost" in r.json()["error"]["message"]
    assert client.get("/api/v1/agents/x1", headers=op).status_code == 404
    ok = client.post(
        "/api/v1/agents/import", json={"agents": [{"id": "x1", "name": "X"}]}, headers=op
    )
    assert ok.status_code == 200 and ok.json()["created"]["agents"] == 1


def test_an_http_import_never_reads_the_servers_environment(
    client: TestClient, tokens: dict[str, str], app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator token must not turn the server's own secrets into an agent's key."""
    monkeypatch.setenv("SWITCHOVER_SECRET_KEY", "the-servers-own-secret")
    answers = []
    for var in ("SWITCHOVER_SECRET_KEY", "NO_SUCH_VARIABLE_HERE"):
        doc = {"agents": [{**EXAMPLE["agents"][0], "keys": {"llm_api_key": {"env": var}}}]}
        r = client.post("/api/v1/agents/import", json=doc, headers=auth(tokens["operator"]))
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == "keys.llm_api_key"
        answers.append(r.json()["error"]["message"].replace(var, "VAR"))
    assert answers[0] == answers[1]  # the answer does not tell which variables exist
    config = client.get(
        f"/api/v1/agents/{GREETER}/runtime-config", headers=auth(tokens["worker"])
    ).json()["config"]
    assert config["llm_api_key"] == SECRET  # unchanged: the refused import wrote nothing


def test_every_registry_change_is_audited_without_key_values(
    client: TestClient, tokens: dict[str, str], app: App
) -> None:
    h = auth(tokens["operator"])
    body = {**EXAMPLE["agents"][0], "name": "Renamed", "keys": {"llm_api_key": "sk-new-9876"}}
    assert client.put(f"/api/v1/agents/{GREETER}", json=body, headers=h).status_code == 200
    assert client.post(f"/api/v1/agents/{RETIRED}/activate", headers=h).status_code == 200
    assert client.put("/api/v1/phone-numbers/+15550001111", json={}, headers=h).status_code == 200
    assert client.delete("/api/v1/phone-numbers/+15550001111", headers=h).status_code == 200
    rows = list(reversed(app.rollout.audit("@agents", limit=20)))
    assert [r.action for r in rows] == [
        "import",
        "agent_put",
        "agent_activate",
        "number_put",
        "number_delete",
    ]
    assert {r.actor for r in rows[1:]} == {"operator-bot"}
    put = rows[1]
    assert put.before is not None and put.after is not None
    assert put.after["name"] == "Renamed" and put.before["name"] != "Renamed"
    text = json.dumps([r.to_dict() for r in rows])
    assert SECRET not in text and "sk-new-9876" not in text
    listed = client.get("/v1/migrations/@agents/audit", headers=auth(tokens["viewer"]))
    assert listed.status_code == 200 and len(listed.json()) == 5


def test_a_key_the_server_cannot_decrypt_is_a_503_that_says_why(
    client: TestClient, tokens: dict[str, str], app: App
) -> None:
    app.agents.keyring = Keyring([generate_key()])  # as if the server started with another key
    r = client.get(f"/api/v1/agents/{GREETER}/runtime-config", headers=auth(tokens["worker"]))
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] == "secret_key" and error["field"] == "SWITCHOVER_SECRET_KEY"
    assert "when it started" in error["message"] and SECRET not in r.text

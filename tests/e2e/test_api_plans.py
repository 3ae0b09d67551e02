"""Plans over HTTP on both engines: roles, apply errors, manual control, verdicts, secrets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from switchover.api.app import create_app
from switchover.bootstrap import App
from switchover.control.controller import Controller

NAME = "voice_v2"
SLACK = "https://hooks.slack.example/services/T000/B000/SECRETPATHTOKEN"
PLAN = f"""\
plan: api_plan
interval: 1m
phases:
  - {{name: canary, percentage: 5, features: [stt], duration: 1h}}
  - {{name: full, percentage: 100, features: [stt, tts], duration: 1h}}
notify:
  - url: {SLACK}
    secret_env: SWITCHOVER_TEST_WEBHOOK_SECRET
"""


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    app.rollout.create(NAME, features=["stt", "tts"], actor="seed")
    with TestClient(create_app(app)) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_plan_over_http(app: App, client: TestClient, tokens: dict[str, str]) -> None:
    viewer, operator = auth(tokens["viewer"]), auth(tokens["operator"])
    body = {"source": PLAN, "source_name": "api.yaml", "reason": "go"}

    refused = client.put(f"/v1/migrations/{NAME}/plan", json=body, headers=viewer)
    assert refused.status_code == 403
    assert client.get(f"/v1/migrations/{NAME}/plan", headers=viewer).status_code == 404

    bad = client.put(
        f"/v1/migrations/{NAME}/plan",
        json={**body, "source": PLAN.replace("percentage: 100", "percentage: 1")},
        headers=operator,
    )
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["field"] == "phases[1].percentage" and "api.yaml" in error["message"]
    assert client.get(f"/v1/migrations/{NAME}/plan", headers=viewer).status_code == 404

    applied = client.put(f"/v1/migrations/{NAME}/plan", json=body, headers=operator)
    assert applied.status_code == 200, applied.text
    assert applied.json()["status"] == "running"

    # the controller starts the first phase; the server's own decisions see it at once
    Controller(app.store, app.clock, settle=0).tick()
    shown = client.get(f"/v1/migrations/{NAME}/plan", headers=viewer).json()
    assert shown["phase"] == "canary" and shown["verdicts"][0]["action"] == "start"
    # webhook URLs carry tokens: readers see the host only
    assert "SECRETPATHTOKEN" not in str(shown) and "hooks.slack.example" in str(shown)
    listed = client.get("/v1/plans", headers=viewer).json()
    assert [p["migration"] for p in listed] == [NAME] and "SECRETPATHTOKEN" not in str(listed)

    verdicts = client.get(f"/v1/migrations/{NAME}/verdicts", headers=viewer).json()
    assert verdicts[0]["action"] == "start" and "checks" in verdicts[0]

    promoted = client.post(f"/v1/migrations/{NAME}/plan/promote", json={}, headers=operator)
    assert promoted.status_code == 200 and promoted.json()["phase"] == "full"
    decision = client.post(
        "/v1/decide",
        json={"migration": NAME, "feature": "tts", "contexts": [{"user_id": "u1"}]},
        headers=viewer,
    ).json()
    assert decision["decisions"][0]["side"] == "candidate"

    assert client.post(f"/v1/migrations/{NAME}/plan/explode", headers=operator).status_code == 422
    assert client.post(f"/v1/migrations/{NAME}/plan/pause", headers=viewer).status_code == 403

    rollback = client.post(
        f"/v1/migrations/{NAME}/rollback",
        json={"level": "partial", "target_percentage": 5, "reason": "too hot"},
        headers=operator,
    )
    assert rollback.status_code == 200, rollback.text
    assert rollback.json()["plan"]["phase"] == "canary"
    assert app.rollout.get(NAME).percentage == 5
    audit = client.get(f"/v1/migrations/{NAME}/audit", headers=viewer).json()
    assert audit[0]["actor"] == "operator-bot" and audit[0]["reason"] == "too hot"

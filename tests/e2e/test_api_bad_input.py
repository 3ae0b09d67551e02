"""Bad input over HTTP gets a 4xx naming the field, on both engines, and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from switchover.api.app import create_app
from switchover.bootstrap import App

NAME = "voice_v2"


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    app.rollout.create(NAME, features=["stt"], actor="seed")
    with TestClient(create_app(app), raise_server_exceptions=False) as c:
        yield c


PUT_PCT = ("PUT", f"/v1/migrations/{NAME}/percentage")
CASES: list[tuple[str, str, str, dict[str, Any] | str | None, int, str]] = [
    # (id, method, path, body, status, field)
    ("huge_integer", *PUT_PCT, '{"percentage": ' + "9" * 5000 + "}", 422, "body"),
    (
        "superscript_version",
        *PUT_PCT,
        {"percentage": 5, "expected_version": "²"},
        422,
        "expected_version",
    ),
    ("percentage_out_of_range", *PUT_PCT, {"percentage": 10**30}, 422, "percentage"),
    (
        "huge_audit_limit",
        "GET",
        f"/v1/migrations/{NAME}/audit?limit=744479396716009881600",
        None,
        422,
        "limit",
    ),
    ("nul_in_reason", *PUT_PCT, {"percentage": 5, "reason": "a\x00b"}, 422, "reason"),
    (
        "nul_in_tenant",
        "PUT",
        f"/v1/migrations/{NAME}/tenants/a%00b",
        {"override": "allow"},
        422,
        "tenant",
    ),
    (
        "unknown_override",
        "PUT",
        f"/v1/migrations/{NAME}/tenants/t1",
        {"override": "maybe"},
        422,
        "override",
    ),
    (
        "unknown_rollback_level",
        "POST",
        f"/v1/migrations/{NAME}/rollback",
        {"level": "most"},
        422,
        "level",
    ),
    (
        "data_rollback_without_backup",
        "POST",
        f"/v1/migrations/{NAME}/rollback",
        {"level": "data"},
        422,
        "backup_id",
    ),
    (
        "absurd_plan",
        "PUT",
        f"/v1/migrations/{NAME}/plan",
        {
            "source": "plan: x\ninterval: 9999999999999w\nphases:\n"
            "  - {name: a, percentage: 5, duration: 1m}\n"
        },
        422,
        "interval",
    ),
    (
        "plan_with_a_duplicate_key",
        "PUT",
        f"/v1/migrations/{NAME}/plan",
        {"source": "plan: x\nplan: y\nphases:\n  - {name: a, percentage: 5, duration: 1m}\n"},
        422,
        "plan",
    ),
    ("unknown_plan_action", "POST", f"/v1/migrations/{NAME}/plan/launch", {}, 422, "action"),
    (
        "description_with_nul",
        "POST",
        "/v1/migrations",
        {"name": "other", "description": "x\x00"},
        422,
        "description",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_4xx_naming_the_field_and_nothing_changes(
    app: App, client: TestClient, tokens: dict[str, str], case: tuple[Any, ...]
) -> None:
    _, method, path, body, status, field = case
    before = (app.rollout.list(), len(app.rollout.audit(NAME)), app.plans.find(NAME))
    headers = {"Authorization": f"Bearer {tokens['operator']}"}
    if isinstance(body, str):
        r = client.request(
            method, path, content=body, headers=headers | {"content-type": "application/json"}
        )
    else:
        r = client.request(method, path, json=body, headers=headers)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["field"] == field, error
    assert (app.rollout.list(), len(app.rollout.audit(NAME)), app.plans.find(NAME)) == before
    # the same connection answers the next request
    assert client.get("/healthz").status_code == 200


def test_the_openapi_spec_documents_errors_and_the_bearer_scheme(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["token"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["token"]["description"],
    }
    put = spec["paths"]["/v1/migrations/{name}/percentage"]["put"]
    assert {"401", "403", "404", "409", "422", "503"} <= set(put["responses"])
    assert put["security"] == [{"token": []}]
    assert "security" not in spec["paths"]["/healthz"]["get"]

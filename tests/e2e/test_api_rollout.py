"""The HTTP API end to end: the real FastAPI app over a real store, on both engines.

Every request goes through ``TestClient`` (lifespan included, so decisions come from the
app's own snapshot client) with real bearer tokens. Failed requests are checked for the
documented error body ``{"error": {"code", "field", "message"}}`` and for leaving the
store exactly as it was: migration, audit log and store version.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from switchover.access import hash_token
from switchover.api.app import create_app
from switchover.bootstrap import App
from switchover.core.bucketing import in_rollout
from switchover.core.decision import decide as core_decide
from switchover.core.migration import Override

NAME = "voice_v2"
FEATURES = ["stt", "tts", "caching"]


# --- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with TestClient(create_app(app)) as c:
        yield c


@pytest.fixture
def migration(app: App) -> str:
    app.rollout.create(NAME, features=FEATURES, stickiness="user_id", actor="seed")
    return NAME


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stored(app: App, name: str = NAME) -> dict[str, Any]:
    """Everything a failed request must leave alone."""
    return {
        "migration": app.rollout.get(name).to_dict(),
        "audit": [e.to_dict() for e in app.rollout.audit(name, limit=1000)],
        "store_version": app.store.store_version(),
        "known_tenants": app.rollout.status(name).tenants_known,
    }


def assert_error(resp: Any, status: int, code: str, field: str | None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "field", "message"} <= set(error), error
    assert error["code"] == code, error
    assert error["field"] == field, error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    return error


def wait_for(check: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


# --- health, docs -----------------------------------------------------------------------


def test_health_docs_and_openapi_need_no_token(client: TestClient, migration: str) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200
    body = health.json()
    assert body["ok"] is True
    assert body["snapshot"]["loaded"] is True
    assert body["snapshot"]["stale"] is False
    # the snapshot behind /healthz catches up with the store on its own
    assert wait_for(lambda: NAME in client.get("/healthz").json()["snapshot"]["migrations"])

    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for path in (
        "/v1/decide",
        "/v1/migrations",
        "/v1/migrations/{name}/percentage",
        "/v1/migrations/{name}/status",
        "/v1/snapshot",
        "/v1/tokens",
    ):
        assert path in paths, path

    docs = client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "swagger" in docs.text.lower()
    assert "/openapi.json" in docs.text


# --- authentication ---------------------------------------------------------------------

PROTECTED = [
    ("GET", "/v1/migrations", None),
    ("GET", f"/v1/migrations/{NAME}/status", None),
    ("GET", "/v1/snapshot", None),
    ("GET", "/v1/snapshot/version", None),
    ("POST", "/v1/decide", {"migration": NAME, "contexts": [{"user_id": "1"}]}),
    ("PUT", f"/v1/migrations/{NAME}/percentage", {"percentage": 50}),
    ("POST", f"/v1/migrations/{NAME}/kill", None),
    ("GET", "/v1/tokens", None),
]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer swo_not-a-real-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
    ids=["no-token", "bad-token", "empty-bearer", "basic-scheme"],
)
def test_requests_without_a_valid_token_get_401_and_change_nothing(
    app: App, client: TestClient, migration: str, tokens: dict[str, str], headers: dict
) -> None:
    before = stored(app)
    for method, path, body in PROTECTED:
        resp = client.request(method, path, headers=headers, json=body)
        assert_error(resp, 401, "unauthorized", "token")
    assert stored(app) == before


def test_token_revoked_through_the_api_is_refused_at_once(
    app: App, client: TestClient, migration: str, tokens: dict[str, str]
) -> None:
    viewer = auth(tokens["viewer"])
    assert client.get("/v1/migrations", headers=viewer).status_code == 200  # now cached

    resp = client.delete("/v1/tokens/viewer-bot", headers=auth(tokens["admin"]))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"revoked": "viewer-bot"}

    assert_error(client.get("/v1/migrations", headers=viewer), 401, "unauthorized", "token")
    listed = {t["name"]: t for t in client.get("/v1/tokens", headers=auth(tokens["admin"])).json()}
    assert listed["viewer-bot"]["revoked"] is True
    assert listed["admin-bot"]["revoked"] is False
    # other tokens are unaffected by the cache being cleared
    assert client.get("/v1/migrations", headers=auth(tokens["operator"])).status_code == 200
    # revoking twice names the token
    again = client.delete("/v1/tokens/viewer-bot", headers=auth(tokens["admin"]))
    assert_error(again, 404, "not_found", "name")
    # the last admin token cannot revoke itself away; with a second admin it can
    last = client.delete("/v1/tokens/admin-bot", headers=auth(tokens["admin"]))
    assert_error(last, 409, "conflict", "name")
    assert client.get("/v1/tokens", headers=auth(tokens["admin"])).status_code == 200
    app.tokens.create("admin-two", "admin", actor="test")
    assert client.delete("/v1/tokens/admin-bot", headers=auth(tokens["admin"])).status_code == 200
    audit = [(e.action, e.actor) for e in app.rollout.audit("@tokens", limit=10)]
    assert audit == [("token_revoke", "admin-bot"), ("token_revoke", "admin-bot")]


# --- roles ------------------------------------------------------------------------------


def _mutations(name: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("PUT", f"/v1/migrations/{name}/percentage", {"percentage": 50}),
        ("PUT", f"/v1/migrations/{name}/features/stt", {"enabled": True}),
        ("PUT", f"/v1/migrations/{name}/tenants/t1", {"override": "allow"}),
        ("DELETE", f"/v1/migrations/{name}/tenants/t-denied", None),
        ("POST", f"/v1/migrations/{name}/known-tenants", {"tenants": ["t9"]}),
        ("POST", f"/v1/migrations/{name}/kill", None),
        ("POST", f"/v1/migrations/{name}/resume", None),
        ("POST", "/v1/migrations", {"name": "another", "features": ["stt"]}),
    ]


@pytest.mark.parametrize("role", ["viewer", "worker"])
def test_roles_below_operator_can_read_but_not_change(
    app: App, client: TestClient, migration: str, tokens: dict[str, str], role: str
) -> None:
    app.rollout.set_tenant(NAME, "t-denied", Override.DENY, actor="seed")
    headers = auth(tokens[role])
    reads = [
        ("GET", "/v1/migrations", None),
        ("GET", f"/v1/migrations/{NAME}", None),
        ("GET", f"/v1/migrations/{NAME}/status", None),
        ("GET", f"/v1/migrations/{NAME}/audit", None),
        ("GET", "/v1/snapshot", None),
        ("GET", "/v1/snapshot/version", None),
        ("POST", "/v1/decide", {"migration": NAME, "contexts": [{"user_id": "1"}]}),
    ]
    for method, path, body in reads:
        resp = client.request(method, path, headers=headers, json=body)
        assert resp.status_code == 200, (path, resp.text)

    before = stored(app)
    for method, path, body in _mutations(NAME):
        resp = client.request(method, path, headers=headers, json=body)
        error = assert_error(resp, 403, "forbidden", "token")
        assert role in error["message"] and "operator" in error["message"]
    assert stored(app) == before
    assert [m.name for m in app.rollout.list()] == [NAME]


def test_operator_changes_are_applied_and_audited_under_the_token_name(
    app: App, client: TestClient, migration: str, tokens: dict[str, str]
) -> None:
    ops = auth(tokens["operator"])
    steps = [
        ("PUT", f"/v1/migrations/{NAME}/percentage", {"percentage": 30, "reason": "canary"}),
        ("PUT", f"/v1/migrations/{NAME}/features/stt", {"enabled": True, "reason": "stt on"}),
        ("PUT", f"/v1/migrations/{NAME}/tenants/acme", {"override": "allow", "reason": "vip"}),
        ("PUT", f"/v1/migrations/{NAME}/tenants/bad", {"override": "deny", "reason": "flaky"}),
        ("DELETE", f"/v1/migrations/{NAME}/tenants/bad?reason=fixed", None),
        ("POST", f"/v1/migrations/{NAME}/kill", {"reason": "p0"}),
        ("POST", f"/v1/migrations/{NAME}/resume", {"reason": "all clear"}),
    ]
    version = 1
    for method, path, body in steps:
        resp = client.request(method, path, headers=ops, json=body)
        assert resp.status_code == 200, (path, resp.text)
        data = resp.json()
        version += 1
        assert data["version"] == version
        assert data["updated_by"] == "operator-bot"

    final = app.rollout.get(NAME)
    assert final.percentage == 30
    assert final.enabled is True
    assert final.features == {"caching": False, "stt": True, "tts": False}
    assert final.allowed_tenants == ["acme"]
    assert final.denied_tenants == []
    assert final.version == version

    audit = client.get(f"/v1/migrations/{NAME}/audit", headers=ops).json()
    ours = [e for e in reversed(audit) if e["action"] != "create"]
    assert [(e["action"], e["actor"], e["reason"]) for e in ours] == [
        ("set_percentage", "operator-bot", "canary"),
        ("enable_feature", "operator-bot", "stt on"),
        ("tenant_allow", "operator-bot", "vip"),
        ("tenant_deny", "operator-bot", "flaky"),
        ("tenant_clear", "operator-bot", "fixed"),
        ("kill", "operator-bot", "p0"),
        ("resume", "operator-bot", "all clear"),
    ]
    assert [e["version"] for e in ours] == list(range(2, version + 1))
    assert ours[0]["before"]["percentage"] == 0 and ours[0]["after"]["percentage"] == 30

    created = client.post(
        "/v1/migrations",
        headers=ops,
        json={"name": "chat_v3", "features": ["llm"], "stickiness": "call_id", "reason": "new"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["features"] == {"llm": False}
    assert created.json()["stickiness"] == "call_id"
    (entry,) = client.get("/v1/migrations/chat_v3/audit", headers=ops).json()
    assert (entry["action"], entry["actor"], entry["reason"]) == ("create", "operator-bot", "new")


def test_only_admin_manages_tokens_and_listing_never_shows_secrets(
    app: App, client: TestClient, migration: str, tokens: dict[str, str]
) -> None:
    admin = auth(tokens["admin"])
    for role in ("viewer", "worker", "operator"):
        headers = auth(tokens[role])
        assert_error(client.get("/v1/tokens", headers=headers), 403, "forbidden", "token")
        resp = client.post("/v1/tokens", headers=headers, json={"name": "x", "role": "admin"})
        assert_error(resp, 403, "forbidden", "token")
        resp = client.delete("/v1/tokens/admin-bot", headers=headers)
        assert_error(resp, 403, "forbidden", "token")
    assert {t.name for t in app.tokens.list()} == {f"{r}-bot" for r in tokens}
    assert all(t.revoked_at is None for t in app.tokens.list())

    created = client.post("/v1/tokens", headers=admin, json={"name": "ci-bot", "role": "viewer"})
    assert created.status_code == 201, created.text
    new = created.json()
    assert new["name"] == "ci-bot" and new["role"] == "viewer"
    assert new["token"].startswith("swo_")
    # the new token works, with the role it was given
    assert client.get("/v1/migrations", headers=auth(new["token"])).status_code == 200
    resp = client.put(
        f"/v1/migrations/{NAME}/percentage", headers=auth(new["token"]), json={"percentage": 5}
    )
    assert_error(resp, 403, "forbidden", "token")
    (record,) = [t for t in app.tokens.list() if t.name == "ci-bot"]
    assert record.created_by == "admin-bot"

    listing = client.get("/v1/tokens", headers=admin)
    assert listing.status_code == 200
    rows = listing.json()
    assert {r["name"]: r["role"] for r in rows} == {
        "admin-bot": "admin",
        "ci-bot": "viewer",
        "operator-bot": "operator",
        "viewer-bot": "viewer",
        "worker-bot": "worker",
    }
    for row in rows:
        assert set(row) == {"name", "role", "created_at", "created_by", "revoked"}
    for secret in [*tokens.values(), new["token"]]:
        assert secret not in listing.text
        assert hash_token(secret) not in listing.text

    dup = client.post("/v1/tokens", headers=admin, json={"name": "ci-bot", "role": "admin"})
    assert_error(dup, 409, "conflict", "name")
    bad_role = client.post("/v1/tokens", headers=admin, json={"name": "zz", "role": "root"})
    assert_error(bad_role, 422, "invalid", "role")
    assert {t.name for t in app.tokens.list()} == {*(f"{r}-bot" for r in tokens), "ci-bot"}


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize("value", [101, -1, "abc", "", "50%", 1000])
def test_percentage_out_of_range_or_not_a_number_is_422(
    app: App, client: TestClient, migration: str, tokens: dict[str, str], value: object
) -> None:
    before = stored(app)
    resp = client.put(
        f"/v1/migrations/{NAME}/percentage",
        headers=auth(tokens["operator"]),
        json={"percentage": value},
    )
    error = assert_error(resp, 422, "invalid", "percentage")
    assert "0 to 100" in error["message"]
    assert stored(app) == before


def test_percentage_true_is_not_taken_as_one_percent(
    app: App, client: TestClient, migration: str, tokens: dict[str, str]
) -> None:
    """A JSON boolean is not a percentage; the services refuse bools on purpose."""
    before = stored(app)
    resp = client.put(
        f"/v1/migrations/{NAME}/percentage",
        headers=auth(tokens["operator"]),
        json={"percentage": True},
    )
    assert_error(resp, 422, "invalid", "percentage")
    assert stored(app) == before


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (f"/v1/migrations/{NAME}/percentage", {"percentage": 12.5}, "percentage"),
        (f"/v1/migrations/{NAME}/percentage", {"percentage": None}, "percentage"),
        (f"/v1/migrations/{NAME}/percentage", {"reason": "no value"}, "percentage"),
        (f"/v1/migrations/{NAME}/features/stt", {"enabled": "maybe"}, "enabled"),
    ],
    ids=["fraction", "null", "missing", "enabled-not-bool"],
)
def test_malformed_body_gets_the_documented_error_body(
    app: App, client: TestClient, migration: str, tokens: dict[str, str], path, body, field
) -> None:
    before = stored(app)
    resp = client.put(path, headers=auth(tokens["operator"]), json=body)
    assert_error(resp, 422, "invalid", field)
    assert stored(app) == before


def test_unknown_migration_is_404_naming_it(
    app: App, client: TestClient, migration: str, tokens: dict[str, str]
) -> None:
    before = stored(app)
    ops = auth(tokens["operator"])
    requests = [
        ("GET", "/v1/migrations/nope", None),
        ("GET", "/v1/migrations/nope/status", None),
        ("GET", "/v1/migrations/nope/audit", None),
        ("PUT", "/v1/migrations/nope/percentage", {"percentage": 10}),
        ("PUT", "/v1/migrations/nope/features/stt", {"enabled": True}),
        ("PUT", "/v1/migrations/nope/tenants/t1", {"override": "allow"}),
        ("POST", "/v1/migrations/nope/known-tenants", {"tenants": ["t1"]}),
        ("POST", "/v1/migrations/nope/kill", None),
        ("POST", "/v1/migrations/nope/resume", None),
    ]
    for method, path, body in requests:
        error = assert_error(
            client.request(method, path, headers=ops, json=body), 404, "not_found", "name"
        )
        assert "'nope'" in error["message"], path
    assert stored(app) == before
    assert [m.name for m in app.rollout.list()] == [NAME]


def test_unknown_feature_is_422_listing_the_real_ones(
    app: App, client: TestClient, migration: str, tokens: dict[str, str]
) -> None:
    before = stored(app)
    for enabled in (True, False):
        resp = client.put(
            f"/v1/migrations/{NAME}/features/langgraph",
            headers=auth(tokens["operator"]),
            json={"enabled": enabled},
        )
        error = assert_error(resp, 422, "invalid", "feature")
        assert "langgraph" in error["message"]
        assert all(f in error["message"] for f in FEATURES)
    assert stored(app) == before


def test_empty_or_blank_tenant_id_is_refused(
    app: App, client: TestClient, migration: str, tokens: dict[str, str]
) -> None:
    ops = auth(tokens["operator"])
    before = stored(app)
    for path in (f"/v1/migrations/{NAME}/tenants/%20", f"/v1/migrations/{NAME}/tenants/%20%09"):
        resp = client.put(path, headers=ops, json={"override": "allow"})
        assert_error(resp, 422, "invalid", "tenant")
        assert_error(client.delete(path, headers=ops), 422, "invalid", "tenant")
    for tenants in ([""], ["  "], ["ok-tenant", ""], []):
        resp = client.post(
            f"/v1/migrations/{NAME}/known-tenants", headers=ops, json={"tenants": tenants}
        )
        assert_error(resp, 422, "invalid", "tenant")
    # an empty path segment cannot name a tenant either
    resp = client.put(f"/v1/migrations/{NAME}/tenants/", headers=ops, json={"override": "allow"})
    assert 400 <= resp.status_code < 500
    assert stored(app) == before


@pytest.mark.parametrize("value", ["maybe", "ALLOW", "", "candidate"])
def test_unknown_override_value_is_422(
    app: App, client: TestClient, migration: str, tokens: dict[str, str], value: str
) -> None:
    before = stored(app)
    resp = client.put(
        f"/v1/migrations/{NAME}/tenants/acme",
        headers=auth(tokens["operator"]),
        json={"override": value},
    )
    error = assert_error(resp, 422, "invalid", "override")
    assert "allow" in error["message"] and "deny" in error["message"]
    assert stored(app) == before


def test_stale_expected_version_is_409_with_the_current_version(
    app: App, client: TestClient, migration: str, tokens: dict[str, str]
) -> None:
    ops = auth(tokens["operator"])
    app.rollout.set_percentage(NAME, 10, actor="seed")  # now at version 2
    before = stored(app)
    requests = [
        ("PUT", f"/v1/migrations/{NAME}/percentage", {"percentage": 50}),
        ("PUT", f"/v1/migrations/{NAME}/features/stt", {"enabled": True}),
        ("PUT", f"/v1/migrations/{NAME}/tenants/acme", {"override": "deny"}),
        ("POST", f"/v1/migrations/{NAME}/kill", {}),
        ("POST", f"/v1/migrations/{NAME}/resume", {}),
    ]
    for stale in (1, 3, 0):
        for method, path, body in requests:
            resp = client.request(
                method, path, headers=ops, json={**body, "expected_version": stale}
            )
            error = assert_error(resp, 409, "conflict", "version")
            assert error["current_version"] == 2, path
    assert stored(app) == before

    ok = client.put(
        f"/v1/migrations/{NAME}/percentage",
        headers=ops,
        json={"percentage": 50, "expected_version": 2},
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["version"] == 3 and ok.json()["percentage"] == 50


def test_creating_an_existing_migration_is_409_and_keeps_the_original(
    app: App, client: TestClient, migration: str, tokens: dict[str, str]
) -> None:
    app.rollout.set_percentage(NAME, 40, actor="seed")
    before = stored(app)
    resp = client.post(
        "/v1/migrations",
        headers=auth(tokens["operator"]),
        json={"name": NAME, "features": ["other"], "stickiness": "call_id"},
    )
    error = assert_error(resp, 409, "conflict", "name")
    assert NAME in error["message"]
    assert stored(app) == before
    bad = client.post(
        "/v1/migrations", headers=auth(tokens["operator"]), json={"name": "Has Spaces"}
    )
    assert_error(bad, 422, "invalid", "name")
    assert [m.name for m in app.rollout.list()] == [NAME]


# --- decisions --------------------------------------------------------------------------


def _contexts(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    tenants = ["acme", "blocked", "t-plain", "t-other", 17, None]
    out: list[dict[str, Any]] = []
    for i in range(n):
        ctx: dict[str, Any] = {}
        kind = i % 10
        if kind < 6:
            ctx["user_id"] = f"user-{rng.randrange(10**9)}"
        elif kind == 6:
            ctx["user_id"] = rng.randrange(10**6)
        elif kind == 7:
            ctx["user_id"] = ""
        elif kind == 8:
            ctx["call_id"] = f"call-{i}"
        else:
            ctx["user_id"] = f"josé-用户-{i}"
        tenant = rng.choice(tenants)
        if tenant is not None:
            ctx["tenant_id"] = tenant
        out.append(ctx)
    return out


def _post_decide(client: TestClient, token: str, body: dict) -> Any:
    return client.post("/v1/decide", headers=auth(token), json=body)


def test_batch_decide_equals_core_decide_for_1000_contexts(
    app: App, client: TestClient, migration: str, tokens: dict[str, str]
) -> None:
    app.rollout.set_percentage(NAME, 37, actor="seed")
    app.rollout.set_feature(NAME, "stt", True, actor="seed")
    app.rollout.set_feature(NAME, "caching", True, actor="seed")
    app.rollout.set_tenant(NAME, "acme", Override.ALLOW, actor="seed")
    app.rollout.set_tenant(NAME, "blocked", Override.DENY, actor="seed")
    app.rollout.set_tenant(NAME, "17", Override.ALLOW, actor="seed")
    client.app.state.snapshot.refresh()
    m = app.rollout.get(NAME)
    contexts = _contexts(1000)

    for feature in ("stt", "tts", "caching", None):
        resp = _post_decide(
            client, tokens["viewer"], {"migration": NAME, "feature": feature, "contexts": contexts}
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["migration"] == NAME
        assert body["feature"] == feature
        assert body["version"] == m.version
        expected = [core_decide(m, feature, ctx) for ctx in contexts]
        got = [(d["side"], d["reason"]) for d in body["decisions"]]
        assert got == [(d.side.value, d.reason.value) for d in expected]
        if feature == "tts":
            assert {r for _, r in got} == {"feature_off"}
        else:
            # the sample exercises every rule, so the comparison means something
            assert {r for _, r in got} == {
                "tenant_allow",
                "tenant_deny",
                "missing_key",
                "bucket_in",
                "bucket_out",
            }

    # independently of core.decide: a caller's bucket (docs/bucketing.md) sets the side
    resp = _post_decide(
        client, tokens["viewer"], {"migration": NAME, "feature": "stt", "contexts": contexts}
    )
    for ctx, d in zip(contexts, resp.json()["decisions"], strict=True):
        if d["reason"] in ("bucket_in", "bucket_out"):
            assert (d["side"] == "candidate") == in_rollout(NAME, str(ctx["user_id"]), 37)
            assert ctx.get("tenant_id") not in ("acme", "blocked", 17)


def test_batch_decide_refuses_bad_requests(
    app: App, client: TestClient, migration: str, tokens: dict[str, str]
) -> None:
    token = tokens["viewer"]
    resp = _post_decide(
        client, token, {"migration": NAME, "feature": "video", "contexts": [{"user_id": "1"}]}
    )
    error = assert_error(resp, 422, "invalid", "feature")
    assert "video" in error["message"]
    resp = _post_decide(client, token, {"migration": "nope", "contexts": [{"user_id": "1"}]})
    error = assert_error(resp, 404, "not_found", "migration")
    assert "nope" in error["message"]
    too_many = [{"user_id": str(i)} for i in range(10_001)]
    resp = _post_decide(client, token, {"migration": NAME, "contexts": too_many})
    error = assert_error(resp, 422, "invalid", "contexts")
    assert "10000" in error["message"].replace(",", "").replace("_", "")
    # the limit itself is accepted
    resp = _post_decide(client, token, {"migration": NAME, "contexts": too_many[:10_000]})
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["decisions"]) == 10_000
    # an empty batch is an empty answer
    resp = _post_decide(client, token, {"migration": NAME, "contexts": []})
    assert resp.status_code == 200 and resp.json()["decisions"] == []


def test_decide_follows_changes_made_through_the_api(
    app: App, client: TestClient, migration: str, tokens: dict[str, str]
) -> None:
    ops, viewer = auth(tokens["operator"]), tokens["viewer"]
    contexts = [{"user_id": f"u{i}"} for i in range(200)]
    body = {"migration": NAME, "feature": "stt", "contexts": contexts}

    def reasons() -> set[str]:
        resp = _post_decide(client, viewer, body)
        assert resp.status_code == 200, resp.text
        return {d["reason"] for d in resp.json()["decisions"]}

    assert reasons() == {"feature_off"}

    resp = client.put(f"/v1/migrations/{NAME}/features/stt", headers=ops, json={"enabled": True})
    assert resp.status_code == 200, resp.text
    resp = client.put(f"/v1/migrations/{NAME}/percentage", headers=ops, json={"percentage": 100})
    assert resp.status_code == 200, resp.text
    # no explicit refresh: the API's own snapshot must catch up (within 3 s at most)
    assert wait_for(lambda: reasons() == {"bucket_in"}), reasons()

    assert client.post(f"/v1/migrations/{NAME}/kill", headers=ops).status_code == 200
    assert wait_for(lambda: reasons() == {"kill_switch"}), reasons()

    assert client.post(f"/v1/migrations/{NAME}/resume", headers=ops).status_code == 200
    client.app.state.snapshot.refresh()
    resp = _post_decide(client, viewer, body)
    assert {d["side"] for d in resp.json()["decisions"]} == {"candidate"}
    assert resp.json()["version"] == app.rollout.get(NAME).version

    # a migration created through the API is decidable straight away
    created = client.post("/v1/migrations", headers=ops, json={"name": "fresh", "features": ["a"]})
    assert created.status_code == 201
    resp = _post_decide(client, viewer, {"migration": "fresh", "feature": "a", "contexts": [{}]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["decisions"] == [{"side": "legacy", "reason": "feature_off"}]


# --- snapshot feed and status -----------------------------------------------------------


def test_snapshot_version_moves_by_one_per_change(
    app: App, client: TestClient, tokens: dict[str, str]
) -> None:
    ops, viewer = auth(tokens["operator"]), auth(tokens["viewer"])

    def version() -> int:
        resp = client.get("/v1/snapshot/version", headers=viewer)
        assert resp.status_code == 200
        return resp.json()["version"]

    v = version()
    changes = [
        ("POST", "/v1/migrations", {"name": NAME, "features": FEATURES}),
        ("PUT", f"/v1/migrations/{NAME}/percentage", {"percentage": 20}),
        ("PUT", f"/v1/migrations/{NAME}/features/tts", {"enabled": True}),
        ("PUT", f"/v1/migrations/{NAME}/tenants/acme", {"override": "allow"}),
        ("DELETE", f"/v1/migrations/{NAME}/tenants/acme", None),
        ("POST", f"/v1/migrations/{NAME}/kill", None),
        ("POST", f"/v1/migrations/{NAME}/resume", None),
        ("POST", "/v1/migrations", {"name": "second"}),
    ]
    for method, path, body in changes:
        resp = client.request(method, path, headers=ops, json=body)
        assert resp.status_code in (200, 201), (path, resp.text)
        v += 1
        assert version() == v, path
    # refused changes do not move it
    client.put(f"/v1/migrations/{NAME}/percentage", headers=ops, json={"percentage": 101})
    client.post("/v1/migrations", headers=ops, json={"name": NAME})
    assert version() == v

    snap = client.get("/v1/snapshot", headers=viewer)
    assert snap.status_code == 200
    data = snap.json()
    assert data["version"] == v
    assert data["migrations"] == client.get("/v1/migrations", headers=viewer).json()
    assert [m["name"] for m in data["migrations"]] == ["second", NAME]  # by name
    (voice,) = [m for m in data["migrations"] if m["name"] == NAME]
    assert voice["percentage"] == 20 and voice["features"]["tts"] is True
    assert voice["enabled"] is True and voice["tenants"] == {"allow": [], "deny": []}


def test_status_counts_tenants_and_shows_the_last_change(
    app: App, client: TestClient, migration: str, tokens: dict[str, str]
) -> None:
    ops, viewer = auth(tokens["operator"]), auth(tokens["viewer"])

    def status() -> dict[str, Any]:
        resp = client.get(f"/v1/migrations/{NAME}/status", headers=viewer)
        assert resp.status_code == 200, resp.text
        return resp.json()

    first = status()
    assert (first["tenants_on_candidate"], first["tenants_known"]) == (0, 0)
    assert first["last_change"]["action"] == "create"
    assert first["last_change"]["actor"] == "seed"

    resp = client.post(
        f"/v1/migrations/{NAME}/known-tenants",
        headers=ops,
        json={"tenants": ["t1", "t2", "t3", "t4"]},
    )
    assert resp.json() == {"added": 4, "given": 4}
    client.put(f"/v1/migrations/{NAME}/tenants/t1", headers=ops, json={"override": "allow"})
    client.put(
        f"/v1/migrations/{NAME}/tenants/t9",
        headers=ops,
        json={"override": "deny", "reason": "new tenant, keep on legacy"},
    )
    s = status()
    assert (s["tenants_on_candidate"], s["tenants_known"]) == (1, 5)
    assert s["overrides"] == 2
    assert s["name"] == NAME and s["percentage"] == 0 and s["enabled"] is True
    last = s["last_change"]
    assert last["action"] == "tenant_deny"
    assert last["actor"] == "operator-bot"
    assert last["reason"] == "new tenant, keep on legacy"
    assert last["version"] == s["version"] == 3
    assert "before" not in last and "after" not in last

    client.put(f"/v1/migrations/{NAME}/percentage", headers=ops, json={"percentage": 100})
    s = status()
    assert (s["tenants_on_candidate"], s["tenants_known"]) == (4, 5)  # all but denied t9
    client.post(f"/v1/migrations/{NAME}/kill", headers=ops, json={"reason": "rollback"})
    s = status()
    assert s["tenants_on_candidate"] == 0
    assert s["enabled"] is False
    assert (s["last_change"]["action"], s["last_change"]["reason"]) == ("kill", "rollback")

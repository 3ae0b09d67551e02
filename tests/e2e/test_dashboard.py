"""The dashboard over HTTP on both engines: sign-in, pages, chart data, controls, refusals."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from dashboard_forms import sign_in_form
from fastapi.testclient import TestClient

from switchover.api.app import create_app
from switchover.bootstrap import App
from switchover.core.clock import ManualClock

NAME = "voice_v2"
HX = {"HX-Request": "true"}
PLAN = """\
plan: dash
interval: 1m
phases:
  - {name: canary, percentage: 5, features: [stt], duration: 10m}
  - {name: half, percentage: 50, features: [stt, tts], duration: 10m, requires_approval: true}
  - {name: full, percentage: 100, duration: 10m}
notify:
  - url: https://hooks.slack.example/services/T000/B000/SECRETPATHTOKEN
"""


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    app.rollout.create(NAME, features=["stt", "tts"], actor="seed", description="the demo")
    with TestClient(create_app(app), follow_redirects=False) as c:
        yield c


def sign_in(client: TestClient, token: str) -> None:
    r = sign_in_form(client, token)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie


def confirm(client: TestClient, **form: str) -> str:
    r = client.post(f"/ui/migrations/{NAME}/confirm", data=form, headers=HX)
    assert r.status_code == 200, r.text
    return r.text


def apply(client: TestClient, confirmation: str) -> TestClient:
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', confirmation))
    return client.post(f"/ui/migrations/{NAME}/apply", data=fields, headers=HX)


def test_pages_need_a_token_and_the_sign_in_sets_a_strict_cookie(
    app: App, client: TestClient, tokens: dict[str, str]
) -> None:
    r = client.get(f"/migrations/{NAME}")
    assert r.status_code == 303
    assert r.headers["location"] == f"/login?next=/migrations/{NAME}"
    assert client.get(f"/ui/migrations/{NAME}/charts").status_code == 401

    wrong = sign_in_form(client, "swo_not-a-token")
    assert wrong.status_code == 401
    assert "swo_not-a-token" not in wrong.text  # a pasted secret is never echoed

    # ``next`` never leaves this server
    r = sign_in_form(client, tokens["viewer"], "//evil.example/x")
    assert r.headers["location"] == "/"

    sign_in(client, tokens["viewer"])
    page = client.get("/")
    assert page.status_code == 200
    assert f'href="/migrations/{NAME}"' in page.text
    assert "viewer-bot" in page.text
    assert tokens["viewer"] not in page.text


def test_login_code_from_serve_works_once(app: App, client: TestClient) -> None:
    token = app.tokens.create("dashboard", "operator", actor="switchover")
    code = client.app.state.login_codes.issue(token)  # type: ignore[attr-defined]
    first = client.get(f"/login?code={code}")
    assert first.status_code == 303
    assert client.get("/").status_code == 200
    client.cookies.clear()
    again = client.get(f"/login?code={code}")
    assert again.status_code == 401
    assert "used or expired" in again.text


def test_migration_page_shows_plan_verdicts_audit_tenants_and_data(
    app: App, client: TestClient, tokens: dict[str, str]
) -> None:
    app.plans.apply(NAME, PLAN, "dash.yaml", actor="alice", reason="start the canary")
    app.rollout.set_tenant(NAME, "tenant-vip", _allow(), actor="alice", reason="vip first")
    sign_in(client, tokens["viewer"])
    page = client.get(f"/migrations/{NAME}")
    assert page.status_code == 200, page.text
    html = page.text
    for phase in ("canary", "half", "full"):
        assert f'data-phase="{phase}"' in html
    assert 'data-tenant="tenant-vip"' in html
    assert "vip first" in html and "alice" in html
    # the plan's webhook path is a secret: the audit shows it redacted, never in clear
    assert "SECRETPATHTOKEN" not in html
    assert "Data migration" in html
    # a viewer gets no controls at all
    assert 'data-control="' not in html and 'id="controls"' not in html
    # everything the page loads is served here: nothing from a CDN
    assert not re.search(r'(src|href)="(https?:)?//', html)
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert client.get(asset).status_code == 200, asset


def _allow():  # type: ignore[no-untyped-def]
    from switchover.core.migration import Override

    return Override.ALLOW


def test_chart_data_comes_from_the_store(
    app: App, client: TestClient, tokens: dict[str, str], clock: ManualClock
) -> None:
    now = clock.now().timestamp()
    observations = [
        {
            "migration": NAME,
            "operation": "stt",
            "side": side,
            "latency_ms": 100.0 if side == "legacy" else 200.0,
            "ok": i % 10 != 0 or side == "legacy",
            "error_type": None if side == "legacy" or i % 10 else "Timeout",
            "outcome": {"booked": 1.0} if i % 2 else {},
            "at": now - 120 + i,
        }
        for i in range(60)
        for side in ("legacy", "candidate")
    ]
    app.metrics.ingest(observations)
    sign_in(client, tokens["viewer"])
    r = client.get(f"/ui/migrations/{NAME}/charts?window=15m")
    assert r.status_code == 200, r.text
    assert "app;dur=" in r.headers["server-timing"]
    body = r.json()
    assert body["totals"]["legacy"]["calls"] == 60
    assert body["totals"]["candidate"]["calls"] == 60
    assert body["totals"]["candidate"]["errors"] == 6
    assert body["operations"] == ["stt"]
    assert "booked" in body["series"]["outcomes"]
    drawn = [v for v in body["series"]["p95_ms"]["candidate"] if v is not None]
    assert drawn and all(190 <= v <= 210 for v in drawn)

    bad = client.get(f"/ui/migrations/{NAME}/charts?window=3w")
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "window"


def test_operator_change_is_confirmed_then_applied_and_audited(
    app: App, client: TestClient, tokens: dict[str, str]
) -> None:
    sign_in(client, tokens["operator"])
    page = client.get(f"/migrations/{NAME}").text
    assert 'data-control="percentage"' in page

    text = confirm(client, action="percentage", percentage="25", reason="ramp")
    assert "Candidate share: 0 % → 25 %" in text
    assert app.rollout.get(NAME).percentage == 0  # the confirmation changes nothing

    done = apply(client, text)
    assert done.status_code == 200, done.text
    assert done.headers["hx-trigger"] == "switchover-changed"
    assert app.rollout.get(NAME).percentage == 25
    (entry, *_) = app.rollout.audit(NAME, limit=1)
    assert (entry.actor, entry.reason) == ("operator-bot", "ramp")
    audit = client.get(f"/ui/migrations/{NAME}/audit").text
    assert "percentage: 0 → 25" in audit

    # the confirmation's version is checked: a change made meanwhile is not overwritten
    stale = confirm(client, action="percentage", percentage="50")
    app.rollout.set_percentage(NAME, 30, actor="someone-else")
    refused = apply(client, stale)
    assert refused.status_code == 409
    assert app.rollout.get(NAME).percentage == 30


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"action": "percentage", "percentage": "150"}, "percentage"),
        ({"action": "percentage", "percentage": "ten"}, "percentage"),
        ({"action": "feature", "feature": "llm", "enabled": "on"}, "feature"),
        ({"action": "feature", "enabled": "on"}, "feature"),  # was a 500 (KeyError)
        ({"action": "rollback", "level": "data"}, "backup_id"),
        ({"action": "percentage", "percentage": "50", "reason": "a\x00b"}, "reason"),
        ({"action": "tenant", "tenant": " ", "override": "allow"}, "tenant"),
        ({"action": "rollback", "level": "partial", "target_percentage": ""}, "target_percentage"),
        ({"action": "launch"}, "action"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    app: App, client: TestClient, tokens: dict[str, str], form: dict[str, str], field: str
) -> None:
    sign_in(client, tokens["operator"])
    before = app.rollout.get(NAME)
    for path in ("confirm", "apply"):
        r = client.post(f"/ui/migrations/{NAME}/{path}", data=form, headers=HX)
        assert r.status_code == 422, r.text
        assert f'data-field="{field}"' in r.text
    assert app.rollout.get(NAME) == before
    assert len(app.rollout.audit(NAME)) == 1


def test_every_control_applies_through_the_services(
    app: App, client: TestClient, tokens: dict[str, str]
) -> None:
    app.plans.apply(NAME, PLAN, "dash.yaml", actor="alice")
    app.plans.promote(NAME, actor="alice")  # into canary
    sign_in(client, tokens["operator"])
    steps: list[tuple[dict[str, str], str]] = [
        ({"action": "feature", "feature": "tts", "enabled": "on"}, "Feature tts: off → on"),
        ({"action": "tenant", "tenant": "acme", "override": "deny"}, "(deny): none → acme"),
        ({"action": "approve"}, "Next phase approved: off → on"),
        ({"action": "pause"}, "Plan: running → paused"),
        ({"action": "plan_resume"}, "Plan: paused → running"),
        ({"action": "promote"}, "Plan phase: canary → half"),
        ({"action": "kill"}, "Master switch: on → off"),
        ({"action": "resume", "plan": "on"}, "Plan: paused → running"),
        ({"action": "kill"}, "Plan: running → paused"),
        ({"action": "unkill"}, "Master switch: off → on"),
        ({"action": "rollback", "level": "partial", "target_percentage": "5"}, "50 % → 5 %"),
        ({"action": "rollback", "level": "total"}, "Candidate share: 5 % → 0 %"),
    ]
    for form, said in steps:
        text = confirm(client, **form)
        assert said in text, (form, text)
        r = apply(client, text)
        assert r.status_code == 200, (form, r.text)
    m = app.rollout.get(NAME)
    assert (m.enabled, m.percentage, m.features["tts"]) == (False, 0, True)
    assert m.tenants["acme"].value == "deny"
    actions = [e.action for e in app.rollout.audit(NAME, limit=50)]
    for expected in ("enable_feature", "tenant_deny", "promote", "kill", "resume"):
        assert expected in actions, (expected, actions)
    assert {"rollback_partial", "rollback_total"} <= set(actions)
    assert all(e.actor == "operator-bot" for e in app.rollout.audit(NAME, limit=10))
    assert app.plans.get(NAME).status.value == "aborted"


def test_viewer_and_cross_site_requests_cannot_change_anything(
    app: App, client: TestClient, tokens: dict[str, str]
) -> None:
    form = {"action": "percentage", "percentage": "40", "expected_version": "1"}
    sign_in(client, tokens["viewer"])
    for path in ("confirm", "apply"):
        r = client.post(f"/ui/migrations/{NAME}/{path}", data=form, headers=HX)
        assert r.status_code == 403, r.text
    api = client.put(
        f"/v1/migrations/{NAME}/percentage",
        json={"percentage": 40},
        headers={"Authorization": f"Bearer {tokens['viewer']}"},
    )
    assert api.status_code == 403

    # an operator's cookie without the page's own header (a form on another site)
    client.cookies.clear()
    sign_in(client, tokens["operator"])
    r = client.post(f"/ui/migrations/{NAME}/apply", data=form)
    assert r.status_code == 403
    assert app.rollout.get(NAME).percentage == 0
    assert len(app.rollout.audit(NAME)) == 1


def test_demo_controls_need_the_demo(app: App, client: TestClient, tokens: dict[str, str]) -> None:
    sign_in(client, tokens["operator"])
    r = client.post(f"/ui/migrations/{NAME}/confirm", data={"action": "demo_break"}, headers=HX)
    assert r.status_code == 422
    assert "demo traffic is not running" in r.text


def test_sign_in_refuses_a_form_from_another_site(
    app: App, client: TestClient, tokens: dict[str, str]
) -> None:
    """Login CSRF: a page elsewhere must not sign the victim's browser in as the attacker."""
    forged = client.post("/login", data={"token": tokens["operator"], "next": "/"})
    assert forged.status_code == 403
    assert "set-cookie" not in forged.headers or "switchover_session" not in forged.headers.get(
        "set-cookie", ""
    )
    assert "another site" in forged.text or "did not come from this server" in forged.text

    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    evil = client.post(
        "/login",
        data={"token": tokens["operator"], "next": "/", "csrf": csrf.group(1)},
        headers={"Origin": "http://evil.example"},
    )
    assert evil.status_code == 403 and "another site" in evil.text
    assert "switchover_session" not in evil.headers.get("set-cookie", "")
    assert client.get("/").status_code == 303  # still signed out

    fresh = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert fresh is not None
    ok = client.post(
        "/login",
        data={"token": tokens["operator"], "next": "/", "csrf": fresh.group(1)},
        headers={"Origin": str(client.base_url).rstrip("/")},
    )
    assert ok.status_code == 303 and "switchover_session" in ok.headers["set-cookie"]

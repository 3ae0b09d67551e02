"""``migration create --group``: the real CLI and the HTTP API keep the bucketing group,
``status`` shows it, decisions use it, and a bad one is refused with nothing stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from fastapi.testclient import TestClient

from switchover.api.app import create_app
from switchover.bootstrap import App, bootstrap
from switchover.commands import SetPercentage, handle
from switchover.core.bucketing import in_rollout
from switchover.settings import Settings


def _cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHOVER_")}
    return subprocess.run(
        [sys.executable, "-m", "switchover.cli.main", "--db", db, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "SWITCHOVER_ACTOR": "test"},
        check=False,
    )


def _ok(db: str, *args: str) -> Any:
    proc = _cli(db, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_cli_group_is_stored_shown_and_used(db_url: str) -> None:
    group = "Feature.flexibleRollout.10"
    created = _ok(
        db_url, "migration", "create", "checkout", "--group", group, "--stickiness", "userId"
    )
    assert created["group"] == group
    shown = _cli(db_url, "status", "checkout")
    assert "bucketing group" in shown.stdout
    assert group in shown.stdout
    bad = _cli(db_url, "migration", "create", "other", "--group", "")
    assert bad.returncode != 0
    assert "--group" in bad.stderr + bad.stdout

    app = bootstrap(Settings(database_url=db_url))
    try:
        assert [m.name for m in app.rollout.list()] == ["checkout"]
        handle(app, SetPercentage(migration="checkout", percentage=10, actor="test"))
        # Unleash's own specification: userId 174 is in at 10 %, 499 is out
        (yes, no) = app.rollout.decide("checkout", None, [{"userId": "174"}, {"userId": "499"}])
        assert (yes.candidate, no.candidate) == (True, False)
        assert in_rollout(group, "174", 10) and not in_rollout(group, "499", 10)
    finally:
        app.close()


def test_api_group_field_and_the_default(app: App, tokens: dict[str, str]) -> None:
    with TestClient(create_app(app)) as client:
        headers = {"Authorization": f"Bearer {tokens['operator']}"}
        r = client.post(
            "/v1/migrations", json={"name": "grouped", "group": "Checkout Flow"}, headers=headers
        )
        assert r.status_code == 201, r.text
        assert r.json()["group"] == "Checkout Flow"
        plain = client.post("/v1/migrations", json={"name": "plain"}, headers=headers)
        assert plain.json()["group"] == "plain"
        bad = client.post(
            "/v1/migrations", json={"name": "bad", "group": "x" * 300}, headers=headers
        )
        assert (bad.status_code, bad.json()["error"]["field"]) == (422, "group")
    assert app.rollout.get("grouped").bucketing_group == "Checkout Flow"
    assert app.rollout.get("plain").group is None
    assert [m.name for m in app.rollout.list()] == ["grouped", "plain"]

"""The demo's controls only on the demo's own migration, with the real demo traffic."""

from __future__ import annotations

import pytest
from dashboard_forms import sign_in_form
from fastapi.testclient import TestClient

from switchover.api.app import create_app
from switchover.bootstrap import App
from switchover.demo import EXAMPLE_NAME, ensure_demo
from switchover.demo.traffic import DemoTraffic

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_the_demo_panel_is_on_the_demos_migration_only(app: App, tokens: dict[str, str]) -> None:
    assert ensure_demo(app)
    app.rollout.create("other", features=["stt"], actor="seed")
    demo = DemoTraffic(app, rate=2.0, seed=3, latency_scale=0.05)
    with TestClient(create_app(app, demo=demo), follow_redirects=False) as client:
        sign_in_form(client, tokens["operator"])
        demo_page = client.get(f"/migrations/{EXAMPLE_NAME}").text
        other_page = client.get("/migrations/other").text
        assert 'data-control="demo_break"' in demo_page
        assert 'id="panel-demo"' in demo_page
        # inside the folded controls, after the status
        assert demo_page.index('id="controls"') < demo_page.index('data-control="demo_break"')
        assert 'data-control="demo_break"' not in other_page
        assert 'id="panel-demo"' not in other_page
        assert "demo_break" not in client.get("/ui/migrations/other/demo").text
        assert 'data-control="percentage"' in other_page  # the other controls stay

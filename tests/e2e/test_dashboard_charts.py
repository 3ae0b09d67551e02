"""What the charts draw besides the series, over HTTP on both engines: the plan's window
by default, gate thresholds, phase changes, holds and rollbacks, the bucket in progress."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dashboard_forms import sign_in_form
from fastapi.testclient import TestClient

from switchover.api.app import create_app
from switchover.bootstrap import App
from switchover.core.chart import chart_window, window_for
from switchover.core.clock import ManualClock

NAME = "voice_v2"
PLAN = """\
plan: charted
interval: 1m
window: 10m
recent: 2m
min_samples: 50
guardrails: ["error_rate < 3%", "p95 < 2500ms", "error_ratio <= 2"]
phases:
  - {name: canary, percentage: 20, duration: 2m, gates: ["fallback_rate < 5%"]}
  - {name: full, percentage: 100, duration: 30m}
"""


@pytest.mark.parametrize(
    ("seconds", "window"),
    [(60, "2m"), (180, "3m"), (601, "11m"), (3600, "1h"), (7200, "120m"), (86400, "24h")],
)
def test_the_plans_judging_window_is_a_chart_window(seconds: float, window: str) -> None:
    assert window_for(seconds) == window
    assert chart_window(window).span_minutes * 60 >= seconds


@pytest.fixture
def client(app: App, tokens: dict[str, str]) -> Iterator[TestClient]:
    app.rollout.create(NAME, features=["stt"], actor="seed")
    app.plans.apply(NAME, PLAN, "charted.yaml", actor="alice")
    with TestClient(create_app(app), follow_redirects=False) as c:
        sign_in_form(c, tokens["viewer"])
        yield c


def _calls(app: App, start: float, minutes: int, cand_errors: float) -> None:
    every = round(1 / cand_errors) if cand_errors else 0
    app.metrics.ingest(
        [
            {
                "migration": NAME,
                "operation": "call",
                "side": side,
                "latency_ms": 300.0,
                "ok": not (side == "candidate" and every and i % every == 0),
                "error_type": "Boom" if side == "candidate" and every and i % every == 0 else None,
                "at": start + m * 60 + i * 59.0 / n,
            }
            for m in range(minutes)
            for side, n in (("legacy", 400), ("candidate", 100))
            for i in range(n)
        ]
    )


def test_the_default_window_is_the_plans_and_thresholds_and_events_are_drawn(
    app: App, clock: ManualClock, client: TestClient
) -> None:
    page = client.get(f"/migrations/{NAME}").text
    assert '<option value="10m" selected>' in page

    controller = app.controller()
    controller.tick()  # starts the canary: a phase change
    _calls(app, clock.now().timestamp(), 3, 0.0)
    clock.advance(3 * 60 + 30)
    _calls(app, clock.now().timestamp() - 30, 3, 0.4)  # the candidate breaks
    clock.advance(3 * 60)
    controller.tick()
    assert app.plans.get(NAME).status.value == "rolled_back"

    body = client.get(f"/ui/migrations/{NAME}/charts?window=10m").json()
    assert len(body["t"]) == 10 and body["step_s"] == 60
    # the bucket in progress is the last one, and said to be
    assert body["partial_from"] == body["t"][-1] <= body["now"] < body["until"]
    kinds = [(e["kind"], e["label"]) for e in body["events"]]
    assert ("phase", "advance") in kinds and ("rollback", "rollback partial") in kinds
    assert all(body["since"] <= e["t"] <= body["until"] for e in body["events"])
    # rolled back before the first phase: the guardrails' lines only
    assert {t["chart"] for t in body["thresholds"]} == {"error_rate", "p95_ms"}

    app.plans.resume(NAME, actor="alice", reason="again")
    clock.advance(60)
    controller.tick()
    assert app.plans.get(NAME).phase_index == 0
    body = client.get(f"/ui/migrations/{NAME}/charts?window=10m").json()
    lines = {(t["chart"], t["value"], t["scope"]) for t in body["thresholds"]}
    # absolute gates only: a ratio has no line on one side's chart
    assert lines == {
        ("error_rate", 0.03, "guardrail"),
        ("p95_ms", 2500.0, "guardrail"),
        ("fallback_rate", 0.05, "gate"),
    }
    # another operation's chart: a gate on every operation still applies
    body = client.get(f"/ui/migrations/{NAME}/charts?window=10m&operation=call").json()
    assert len(body["thresholds"]) == 3


def test_a_minute_window_out_of_range_is_refused(client: TestClient) -> None:
    for bad in ("1m", "361m", "0m", "10M", "010m"):
        r = client.get(f"/ui/migrations/{NAME}/charts?window={bad}")
        assert r.status_code == 422, bad
        assert r.json()["error"]["field"] == "window"

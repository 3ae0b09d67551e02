"""The scorecard agrees with the controller: same store, same clock, same checks.

The controller judges and stores its verdict; the scorecard, built by the dashboard's
service on the same store, must show the same guardrail and gate results, the decision
matrix rows the verdict names as exceeded, and a health word read from that evidence
(not from the plan's state). Both engines.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from dashboard_forms import sign_in_form
from fastapi.testclient import TestClient

from switchover.api.app import create_app
from switchover.bootstrap import App
from switchover.control.scorecard import NO_WORSE, NOT_ENOUGH, NOT_JUDGED, WORSE, ScorecardService
from switchover.core.clock import ManualClock

NAME = "voice_v2"
PLAN = """\
plan: scored
interval: 1m
window: 10m
recent: 2m
min_samples: 50
guardrails: ["error_rate < 3%", "p95 < 2500ms"]
phases:
  - name: canary
    percentage: 20
    duration: 30m
    gates: ["error_ratio <= 1.5", "p95_ratio <= 1.3"]
  - {name: full, percentage: 100, duration: 30m}
"""


def _calls(app: App, start: float, minutes: int, per_minute: int, cand_errors: float) -> None:
    """``per_minute`` legacy calls a minute and a quarter as many on the candidate (the
    canary's 20 %), the candidate failing ``cand_errors`` of its calls."""
    every = max(1, round(1 / cand_errors)) if cand_errors else 0
    app.metrics.ingest(
        [
            {
                "migration": NAME,
                "operation": "call",
                "side": side,
                "latency_ms": 300.0 + (i % 9) * 20,
                "ok": not (side == "candidate" and every and i % every == 0),
                "error_type": "Boom" if side == "candidate" and every and i % every == 0 else None,
                "at": start + m * 60 + (i * 59.0 / n),
            }
            for m in range(minutes)
            for side, n in (("legacy", per_minute), ("candidate", per_minute // 4))
            for i in range(n)
        ]
    )


@pytest.fixture
def started(app: App, clock: ManualClock) -> App:
    app.rollout.create(NAME, features=["stt"], actor="seed")
    app.plans.apply(NAME, PLAN, "scored.yaml", actor="alice")
    app.plans.promote(NAME, actor="alice", reason="start the canary")
    return app


def _checks(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in data["checks"] if c["scope"] != "matrix"]


def test_the_scorecard_and_the_controllers_verdict_agree(started: App, clock: ManualClock) -> None:
    app = started
    t0 = clock.now().timestamp()
    _calls(app, t0 + 60, 6, 400, cand_errors=0.3)
    clock.advance(7 * 60 + 15)
    # the scorecard of the moment the controller judges (it then rolls the plan back)
    card = ScorecardService(app.store, clock).scorecard(app.plans.find(NAME), NAME)
    assert app.controller().tick(), "the controller judged"
    stored = app.plans.verdicts(NAME, limit=1)[0]

    assert card.health == WORSE
    assert card.verdict is not None
    assert card.verdict.action.value == stored.action
    assert [c.to_dict() for c in card.checks] == _checks(stored.data)
    named = {c["name"] for c in stored.data["checks"] if c["scope"] == "matrix"}
    failing = {r.check.name for r in card.matrix if r.check.result.value == "fail"}
    assert named and named <= failing
    # one row per matrix line, one per guardrail and gate
    assert len(card.matrix) == 6
    names = [c.name for c in card.checks]
    for gate in ("error_rate < 3%", "p95 < 2500ms", "error_ratio <= 1.5", "p95_ratio <= 1.3"):
        assert gate in names
    assert "error_rate < 3%" in card.why


def test_health_comes_from_the_evidence(started: App, clock: ManualClock) -> None:
    app = started
    scores = ScorecardService(app.store, clock)
    t0 = clock.now().timestamp()
    # a few calls: nothing can be shown either way
    _calls(app, t0 + 60, 1, 40, cand_errors=0.0)
    clock.advance(2 * 60 + 15)
    assert scores.scorecard(app.plans.find(NAME), NAME).health == NOT_ENOUGH
    # plenty of equal calls: every absolute check passes, the ratios are not shown worse
    _calls(app, t0 + 3 * 60, 10, 400, cand_errors=0.0)
    clock.advance(11 * 60)
    card = scores.scorecard(app.plans.find(NAME), NAME)
    assert card.health == NO_WORSE, card.why
    assert all(c.result.value != "fail" for c in card.checks)
    assert {c.name: c.result.value for c in card.checks}["error_rate < 3%"] == "pass"
    assert card.next_judgement_s is not None and 0 <= card.next_judgement_s <= 60
    # the plan's state does not make a candidate healthy: a paused plan still shows it
    app.plans.pause(NAME, actor="alice", reason="look")
    _calls(app, clock.now().timestamp(), 3, 400, cand_errors=0.4)
    clock.advance(4 * 60)
    assert scores.scorecard(app.plans.find(NAME), NAME).health == WORSE


def test_no_plan_is_not_judged(app: App, clock: ManualClock) -> None:
    app.rollout.create(NAME, features=["stt"], actor="seed")
    card = ScorecardService(app.store, clock).scorecard(None, NAME)
    assert card.health == NOT_JUDGED and card.verdict is None


@pytest.fixture
def client(started: App) -> Iterator[TestClient]:
    with TestClient(create_app(started), follow_redirects=False) as c:
        yield c


def test_the_page_shows_the_scorecard_first(
    started: App, clock: ManualClock, client: TestClient, tokens: dict[str, str]
) -> None:
    _calls(started, clock.now().timestamp() + 60, 6, 400, cand_errors=0.3)
    clock.advance(7 * 60 + 15)
    sign_in_form(client, tokens["viewer"])
    html = client.get(f"/migrations/{NAME}").text
    assert 'data-health="worse"' in html
    for name in ("error_rate &lt; 3%", "p95_ratio &lt;= 1.3", "P0: error_rate &lt;= 50%"):
        assert name in html, name
    assert "next judgement in" in html
    order = [
        html.index(marker)
        for marker in (
            "data-scorecard",
            'id="charts"',
            'id="panel-plan"',
            'id="panel-verdicts"',
            'id="panel-audit"',
            'id="panel-data"',
        )
    ]
    assert order == sorted(order)
    # the list of migrations says the same
    assert 'data-health="worse"' in client.get("/ui/migrations").text

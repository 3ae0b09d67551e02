"""Seed 001's flag model: a feature's own percentage (nested buckets) and a P0 that keeps
named features on.

The CLI and the API run for real on both engines (the CLI in-process through Typer's
runner, the API through FastAPI's test client over the real app and store); the P0 runs
the real controller in the seeded simulator.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import switchover.control.simulate as simulate_module
from switchover.api.app import create_app
from switchover.bootstrap import App
from switchover.cli.main import app as cli_app
from switchover.control.controller import Controller, Outcome
from switchover.control.simulate import SideModel, Traffic, simulate
from switchover.core.decision import CompiledMigration
from switchover.core.migration import Migration, with_feature_percentage, with_percentage
from switchover.core.plan import load_plan
from switchover.errors import ValidationError

NAME = "ai-agents"
KEYS = [f"user-{i}" for i in range(10_000)]


def _candidates(m: Migration, feature: str | None) -> set[str]:
    compiled = CompiledMigration(m)
    return {k for k in KEYS if compiled.decide(feature, {"user_id": k}).candidate}


def test_a_features_callers_are_nested_in_the_migrations_and_growing_moves_nobody_back() -> None:
    m = Migration(NAME, percentage=20, features={"whatsapp": True, "voice": True})
    m = with_feature_percentage(m, "whatsapp", 5)
    whole, feature = _candidates(m, None), _candidates(m, "whatsapp")
    assert feature < whole  # a subset: the same buckets
    assert abs(len(feature) / len(KEYS) - 0.05) < 0.01
    assert _candidates(m, "voice") == whole  # no cap: the migration's
    grown = with_percentage(with_feature_percentage(m, "whatsapp", 10), 50)
    assert feature <= _candidates(grown, "whatsapp")  # nobody goes back
    assert whole <= _candidates(grown, None)
    capped_above = with_feature_percentage(with_percentage(m, 3), "whatsapp", 5)
    assert _candidates(capped_above, "whatsapp") == _candidates(capped_above, None)  # min()
    assert capped_above.feature_percentage("whatsapp") == 3
    for bad in (101, -1, "half"):
        with pytest.raises(ValidationError) as err:
            with_feature_percentage(m, "whatsapp", bad)
        assert err.value.field == "percentage" and "'follow'" in err.value.message


def _cli(app: App, *args: str) -> Any:
    return CliRunner().invoke(
        cli_app, ["--db", app.settings.database_url, *args], env={"SWITCHOVER_ACTOR": "alice"}
    )


def test_cli_and_api_set_a_features_percentage_audit_it_and_show_it(app: App) -> None:
    app.rollout.create(NAME, features=["whatsapp", "voice"], actor="alice", reason="test")
    app.rollout.set_percentage(NAME, 20, actor="alice", reason="test")
    done = _cli(app, "feature", "enable", NAME, "whatsapp", "--percentage", "5", "--json")
    assert done.exit_code == 0, done.output
    answer = json.loads(done.output)
    assert answer["feature_percentages"] == {"whatsapp": 5}
    assert {"field": "feature_percentages.whatsapp", "before": None, "after": 5} in [
        {k: c[k] for k in ("field", "before", "after")} for c in answer["changes"]
    ]
    status = _cli(app, "status", NAME, "--json")
    shown = json.loads(status.output)
    assert shown["feature_percentages"] == {"whatsapp": 5}
    table = CliRunner().invoke(
        cli_app,
        ["--db", app.settings.database_url, "status", NAME],
        env={"COLUMNS": "200"},
    )
    assert "voice=off, whatsapp=on (5 %)" in table.output
    audit = app.rollout.audit(NAME)[0]
    assert audit.action == "enable_feature"
    assert audit.after["feature_percentages"] == {"whatsapp": 5}

    bad = _cli(app, "feature", "enable", NAME, "whatsapp", "--percentage", "150")
    assert bad.exit_code != 0 and "--percentage" in bad.output and "follow" in bad.output
    assert app.rollout.get(NAME).feature_percentages == {"whatsapp": 5}  # nothing stored

    with TestClient(create_app(app)) as client:
        _api_checks(app, client)


def _api_checks(app: App, client: TestClient) -> None:
    token = app.tokens.create("ops", "operator", actor="alice")
    headers = {"Authorization": f"Bearer {token}"}
    r = client.put(
        f"/v1/migrations/{NAME}/features/whatsapp",
        json={"enabled": True, "percentage": "follow", "reason": "full cohort"},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["feature_percentages"] == {}
    r = client.put(
        f"/v1/migrations/{NAME}/features/voice",
        json={"enabled": True, "percentage": 101},
        headers=headers,
    )
    assert r.status_code == 422 and "percentage" in r.text
    assert app.rollout.get(NAME).feature_percentages == {}


class _Recording(Controller):
    seen: ClassVar[list[Outcome]] = []

    def tick(self) -> list[Outcome]:
        outcomes = super().tick()
        type(self).seen.extend(outcomes)
        return outcomes


P0_KEEP = """
plan: keep
interval: 1m
matrix:
  p0_keep: [telemetry, vouchers]
phases:
  - {name: p10, percentage: 10, duration: 30m, features: [telemetry, vouchers, ai_voice]}
  - {name: p50, percentage: 50, duration: 30m, features: [telemetry, vouchers, ai_voice]}
"""


def test_a_p0_keeps_the_named_features_on_and_the_master_switch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: ClassVar[list[Outcome]] = []
    monkeypatch.setattr(_Recording, "seen", seen)
    monkeypatch.setattr(simulate_module, "Controller", _Recording)
    healthy = SideModel(p95_ms=400.0, error_rate=0.005)
    broken = SideModel(p95_ms=400.0, error_rate=0.7)
    plan = load_plan(P0_KEEP, "keep.yaml")
    r = simulate(plan, P0_KEEP, Traffic(50.0, healthy, broken), seed=1)
    assert r.state == "rolled_back"
    p0 = next(o for o in seen if o.verdict.action.value == "rollback_total")
    assert "every feature off but telemetry, vouchers, which stay on" in p0.verdict.summary()
    after = p0.migration_after
    assert after is not None and after.enabled and after.percentage == 10
    assert dict(after.features) == {"telemetry": True, "vouchers": True, "ai_voice": False}


def test_p0_keep_names_features_of_the_migration(app: App) -> None:
    app.rollout.create(NAME, features=["telemetry", "vouchers", "ai_voice"], actor="a")
    source = P0_KEEP.replace("[telemetry, vouchers]", "[telemetry, voucher]")
    with pytest.raises(ValidationError) as err:
        app.plans.apply(NAME, source, "keep.yaml", actor="alice")
    assert err.value.field == "matrix.p0_keep[1]" and "'voucher'" in err.value.message
    assert app.plans.find(NAME) is None

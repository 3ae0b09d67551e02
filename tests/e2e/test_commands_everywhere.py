"""Every command means the same from the CLI, the HTTP API and the dashboard.

Each case makes one change three times, on three copies of the same migration: with
the real command line, over HTTP with a token, and through the dashboard's confirm and
apply forms. The three must leave the same migration, the same plan and the same audit
rows (action, actor, reason, the fields changed), and the dashboard's confirmation must
have announced exactly the changes the audit then recorded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from dashboard_forms import sign_in_form
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from switchover.api.app import create_app
from switchover.bootstrap import App
from switchover.cli.main import app as cli_app
from switchover.commands import COMMANDS, Change
from switchover.core.changes import changed_fields
from switchover.core.clock import ManualClock
from switchover.core.migration import Override
from switchover.data.migrate import MigrateOptions, Migrator
from switchover.data.seed import seed_demo
from switchover.data.source import Source

ACTOR = "alice"
REASON = "ticket 42 [urgent]"
PLAN = """\
plan: everywhere
interval: 1m
phases:
  - {name: canary, percentage: 5, features: [stt], duration: 10m}
  - {name: half, percentage: 50, features: [stt, tts], duration: 10m}
  - {name: full, percentage: 100, duration: 10m}
"""
HX = {"HX-Request": "true"}
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

Setup = Callable[[App, str], None]


def _plan_running(app: App, name: str) -> None:
    app.plans.apply(name, PLAN, "plan.yaml", actor="seed")
    app.plans.promote(name, actor="seed")


def _killed(app: App, name: str) -> None:
    app.rollout.kill(name, actor="seed")


def _plan_then_killed(app: App, name: str) -> None:
    _plan_running(app, name)
    app.plans.pause(name, actor="seed")
    app.rollout.kill(name, actor="seed")


def _paused(app: App, name: str) -> None:
    _plan_running(app, name)
    app.plans.pause(name, actor="seed")


def _at_40(app: App, name: str) -> None:
    app.rollout.set_percentage(name, 40, actor="seed")


def _tenant_allowed(app: App, name: str) -> None:
    app.rollout.set_tenant(name, "t1", Override.ALLOW, actor="seed")


@dataclass(frozen=True)
class Case:
    id: str
    cli: tuple[str, ...]
    api: tuple[str, str, dict[str, Any] | None]
    form: dict[str, str]
    setup: Setup | None = None
    actions: tuple[str, ...] = ()
    needs_backup: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case(
        "set_percentage",
        ("rollout", "set", "{name}", "--percentage", "30"),
        ("PUT", "/v1/migrations/{name}/percentage", {"percentage": 30}),
        {"action": "percentage", "percentage": "30"},
        actions=("set_percentage",),
    ),
    Case(
        "set_feature",
        ("feature", "enable", "{name}", "stt"),
        ("PUT", "/v1/migrations/{name}/features/stt", {"enabled": True}),
        {"action": "feature", "feature": "stt", "enabled": "on"},
        actions=("enable_feature",),
    ),
    Case(
        "set_tenant",
        ("tenant", "enable", "{name}", "t1"),
        ("PUT", "/v1/migrations/{name}/tenants/t1", {"override": "allow"}),
        {"action": "tenant", "tenant": "t1", "override": "allow"},
        actions=("tenant_allow",),
    ),
    Case(
        "clear_tenant",
        ("tenant", "clear", "{name}", "t1"),
        ("PUT", "/v1/migrations/{name}/tenants/t1", {"override": "clear"}),
        {"action": "tenant", "tenant": "t1", "override": "clear"},
        setup=_tenant_allowed,
        actions=("tenant_clear",),
    ),
    Case(
        "kill_pauses_a_running_plan",
        ("kill", "{name}"),
        ("POST", "/v1/migrations/{name}/kill", {}),
        {"action": "kill"},
        setup=_plan_running,
        actions=("kill", "plan_pause"),
    ),
    Case(
        "resume_switch_only",
        ("resume", "{name}"),
        ("POST", "/v1/migrations/{name}/resume", {}),
        {"action": "resume"},
        setup=_plan_then_killed,
        actions=("resume",),
    ),
    Case(
        "resume_with_plan",
        ("resume", "{name}", "--plan"),
        ("POST", "/v1/migrations/{name}/resume", {"plan": True}),
        {"action": "resume", "plan": "on"},
        setup=_plan_then_killed,
        actions=("resume", "plan_resume"),
    ),
    Case(
        "promote",
        ("promote", "{name}"),
        ("POST", "/v1/migrations/{name}/plan/promote", {}),
        {"action": "promote"},
        setup=_plan_running,
        actions=("promote", "plan_promote"),
    ),
    Case(
        "pause",
        ("pause", "{name}"),
        ("POST", "/v1/migrations/{name}/plan/pause", {}),
        {"action": "pause"},
        setup=_plan_running,
        actions=("plan_pause",),
    ),
    Case(
        "plan_resume",
        ("plan", "resume", "{name}"),
        ("POST", "/v1/migrations/{name}/plan/resume", {}),
        {"action": "plan_resume"},
        setup=_paused,
        actions=("plan_resume",),
    ),
    Case(
        "approve",
        ("approve", "{name}"),
        ("POST", "/v1/migrations/{name}/plan/approve", {}),
        {"action": "approve"},
        setup=_plan_running,
        actions=("plan_approve",),
    ),
    Case(
        "abort",
        ("abort", "{name}"),
        ("POST", "/v1/migrations/{name}/plan/abort", {}),
        {"action": "abort"},
        setup=_plan_running,
        actions=("rollback_total", "plan_abort"),
    ),
    Case(
        "rollback_tenant",
        ("rollback", "{name}", "--level", "tenant", "--tenant-id", "t9"),
        ("POST", "/v1/migrations/{name}/rollback", {"level": "tenant", "tenant_id": "t9"}),
        {"action": "rollback", "level": "tenant", "tenant": "t9"},
        actions=("rollback_tenant",),
    ),
    Case(
        "rollback_partial",
        ("rollback", "{name}", "--level", "partial", "--target-percentage", "10"),
        ("POST", "/v1/migrations/{name}/rollback", {"level": "partial", "target_percentage": 10}),
        {"action": "rollback", "level": "partial", "target_percentage": "10"},
        setup=_at_40,
        actions=("rollback_partial",),
    ),
    Case(
        "rollback_total",
        ("rollback", "{name}", "--level", "total"),
        ("POST", "/v1/migrations/{name}/rollback", {"level": "total"}),
        {"action": "rollback", "level": "total"},
        setup=_plan_running,
        actions=("rollback_total", "plan_abort"),
    ),
    Case(
        "rollback_data",
        ("rollback", "{name}", "--level", "data", "--backup-id", "{backup}", "--yes"),
        ("POST", "/v1/migrations/{name}/rollback", {"level": "data", "backup_id": "{backup}"}),
        {"action": "rollback", "level": "data", "backup_id": "{backup}"},
        setup=_at_40,
        actions=("rollback_total", "rollback_data"),
        needs_backup=True,
    ),
]

ALL_THREE = {
    "SetPercentage",
    "SetFeature",
    "SetTenant",
    "Kill",
    "Resume",
    "PlanAction",
    "Rollback",
}
"""The changes an operator makes to a running migration: on every entry point."""
NOT_ON_THE_DASHBOARD = {
    "CreateMigration": "migrations are created from a file or a script, not a page",
    "RegisterTenants": "a list of tenant ids comes from a script",
    "ApplyPlan": "a plan is a reviewed YAML file",
    "Restore": "a restore outside a rollback runs where the operator watches it (CLI)",
    "CreateToken": "a token is shown once: in a terminal, not in a page",
    "RevokeToken": "tokens are an admin's CLI or API work",
}


def test_every_command_is_accounted_for() -> None:
    names = {c.__name__ for c in COMMANDS}
    assert names == ALL_THREE | set(NOT_ON_THE_DASHBOARD)
    covered = {"SetPercentage", "SetFeature", "SetTenant", "Kill", "Resume", "PlanAction"}
    covered.add("Rollback")
    assert covered == ALL_THREE


def _fill(text: str, name: str, backup: str) -> str:
    return text.replace("{name}", name).replace("{backup}", backup)


def _via_cli(app: App, case: Case, name: str, backup: str) -> None:
    args = [_fill(a, name, backup) for a in case.cli]
    result = CliRunner().invoke(
        cli_app,
        ["--db", app.settings.database_url, *args, "--by", ACTOR, "--reason", REASON, "--json"],
        env={"SWITCHOVER_DATA_URL": app.settings.agent_data_url},
    )
    assert result.exit_code == 0, (args, result.output)


def _via_api(client: TestClient, token: str, case: Case, name: str, backup: str) -> None:
    method, path, body = case.api
    payload = {
        k: _fill(v, name, backup) if isinstance(v, str) else v for k, v in (body or {}).items()
    }
    payload["reason"] = REASON
    r = client.request(
        method,
        _fill(path, name, backup),
        json=payload,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text


def _via_dashboard(client: TestClient, case: Case, name: str, backup: str) -> list[str]:
    form = {k: _fill(v, name, backup) for k, v in case.form.items()} | {"reason": REASON}
    r = client.post(f"/ui/migrations/{name}/confirm", data=form, headers=HX)
    assert r.status_code == 200 and "Confirm" in r.text, r.text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', r.text))
    announced = re.findall(r"<li>(.*?)</li>", r.text)
    done = client.post(f"/ui/migrations/{name}/apply", data=fields, headers=HX)
    assert done.status_code == 200, done.text
    return announced


def _audit(app: App, name: str) -> list[tuple[str, str, str, list[tuple[str, Any, Any]]]]:
    rows = [e for e in reversed(app.rollout.audit(name, limit=50)) if e.actor == ACTOR]
    return [
        (e.action, e.actor, e.reason, changed_fields(e.before or {}, e.after or {})) for e in rows
    ]


def _state(app: App, name: str) -> dict[str, Any]:
    m = app.rollout.get(name).to_dict()
    for key in ("name", "group", "created_at", "updated_at", "version"):  # group: the name
        m.pop(key, None)
    plan = app.plans.find(name)
    return {
        "migration": m,
        "plan": None
        if plan is None
        else (plan.status.value, plan.phase_index, plan.approved_index),
    }


@pytest.fixture
def wired(app: App, tmp_path: Any) -> Iterator[tuple[App, TestClient, str]]:
    app.settings = replace(app.settings, data_url=f"sqlite:///{tmp_path / 'agents.db'}")
    token = app.tokens.create(ACTOR, "operator", actor="test")
    with TestClient(create_app(app), follow_redirects=False) as client:
        yield app, client, token


def _backup(app: App) -> str:
    src = Source(app.settings.agent_data_url)
    seed_demo(src, configs=20, calls=20, users=0, now=NOW)
    run = Migrator(src, ManualClock(NOW)).migrate(MigrateOptions(skip_invalid=True))
    src.dispose()
    assert run.backup_id
    return run.backup_id


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_one_meaning_and_one_audit_row_everywhere(
    wired: tuple[App, TestClient, str], case: Case
) -> None:
    app, client, token = wired
    backup = _backup(app) if case.needs_backup else ""
    names = {"cli": "via_cli", "api": "via_api", "web": "via_web"}
    for name in names.values():
        app.rollout.create(name, features=["stt", "tts"], actor="seed")
        if case.setup:
            case.setup(app, name)

    _via_cli(app, case, names["cli"], backup)
    _via_api(client, token, case, names["api"], backup)
    assert sign_in_form(client, token).status_code == 303
    announced = _via_dashboard(client, case, names["web"], backup)

    audits = {k: _audit(app, n) for k, n in names.items()}
    states = {k: _state(app, n) for k, n in names.items()}
    assert [a[0] for a in audits["cli"]] == list(case.actions), audits["cli"]
    assert audits["api"] == audits["cli"], "the API and the CLI wrote different audit rows"
    assert audits["web"] == audits["cli"], "the dashboard and the CLI wrote different audit rows"
    assert states["api"] == states["cli"] and states["web"] == states["cli"]
    assert all(row[2] == REASON for row in audits["web"]), "the reason must reach the audit"

    # the confirmation announced each field the change then wrote, with its true values
    written = [
        str(Change(fld, before, after)) + "."
        for action, _actor, _reason, fields in audits["web"]
        if not action.startswith("plan_") and action != "rollback_data"
        for fld, before, after in fields
    ]
    assert written or all(a.startswith("plan_") for a in case.actions), audits["web"]
    for line in written:
        assert line in announced, (line, announced)

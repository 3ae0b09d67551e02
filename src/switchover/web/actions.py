"""The dashboard's operator controls: a form becomes a command, previewed, then handled.

Every control goes through two requests. ``describe`` turns the form into the command
the CLI and the API would build and asks :func:`switchover.commands.preview` what it
would change (before → after, read now); it validates everything and writes nothing.
``apply`` hands the same command, with the version the operator saw, to
:func:`switchover.commands.handle`: if someone else changed the migration in between,
the change is refused and the operator looks again. The demo's own controls (break,
heal, restart) are not changes to a migration and stay here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from switchover import commands
from switchover.access import Principal
from switchover.bootstrap import App
from switchover.commands import model as cmd
from switchover.core import migration as mig
from switchover.errors import SwitchoverError, ValidationError

DEMO_ACTIONS = ("demo_break", "demo_heal", "demo_restart")
PLAN_ACTIONS = {
    "promote": "promote",
    "pause": "pause",
    "plan_resume": "resume",
    "approve": "approve",
    "abort": "abort",
}
ACTIONS = (
    "percentage",
    "feature",
    "tenant",
    "kill",
    "resume",
    *PLAN_ACTIONS,
    "rollback",
    *DEMO_ACTIONS,
)
ALIASES = {"unkill": "resume"}
"""Older names of a control, still accepted from a page loaded before an upgrade."""

LABELS = {
    "percentage": "Candidate share",
    "target_percentage": "Target %",
    "tenant_id": "Tenant",
    "tenant": "Tenant",
    "override": "Override",
    "feature": "Feature",
    "enabled": "To",
    "level": "Rollback level",
    "backup_id": "Backup",
    "reason": "Reason",
    "by": "Signed-in operator",
}
"""The form's labels, for errors that name a field."""


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


def worded(exc: SwitchoverError) -> str:
    """An error in the form's words ("Target % 150 is not …")."""
    return exc.worded(label)


class DemoControl(Protocol):
    """The first run's simulated traffic (``switchover.demo.traffic.DemoTraffic``)."""

    def start(self) -> None: ...
    def stop(self, timeout: float = ...) -> None: ...
    def break_candidate(self, error_rate: float = ...) -> None: ...
    def heal_candidate(self) -> None: ...
    def status(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Action:
    kind: str
    params: dict[str, str] = field(default_factory=dict)
    reason: str | None = None

    def form(self) -> dict[str, str]:
        """The hidden fields that carry this action from the confirmation to ``apply``."""
        out = {"action": self.kind, **self.params}
        if self.reason:
            out["reason"] = self.reason
        return out


_KEYS = {
    "percentage": ("percentage",),
    "feature": ("feature", "enabled"),
    "tenant": ("tenant", "override"),
    "resume": ("plan",),
    "rollback": ("level", "tenant", "target_percentage", "backup_id"),
}


def parse(form: Mapping[str, Any]) -> Action:
    kind = str(form.get("action") or "")
    kind = ALIASES.get(kind, kind)
    if kind not in ACTIONS:
        raise ValidationError(
            f"action {kind!r} is not known; use one of {', '.join(ACTIONS)}", field="action"
        )
    reason = str(form.get("reason") or "").strip() or None
    params = {k: str(form.get(k) or "").strip() for k in _KEYS.get(kind, ())}
    if kind == "feature" and not params["feature"]:
        raise ValidationError("choose a `feature` to switch", field="feature")
    if kind == "feature" and params["enabled"] not in ("on", "off"):
        raise ValidationError("`enabled` must be 'on' or 'off'", field="enabled")
    if kind == "resume":
        params["plan"] = "on" if params["plan"] in ("on", "true", "1") else ""
    return Action(kind, {k: v for k, v in params.items() if v}, reason)


def command(action: Action, name: str, actor: str, expected_version: int | None) -> cmd.Command:
    """The command the CLI and the API build for the same change."""
    p = action.params
    base: dict[str, Any] = {
        "migration": name,
        "actor": actor,
        "reason": action.reason or "",
        "expected_version": expected_version,
    }
    kind = action.kind
    if kind == "percentage":
        return cmd.SetPercentage(percentage=p.get("percentage", ""), **base)
    if kind == "feature":
        return cmd.SetFeature(feature=p["feature"], enabled=p["enabled"] == "on", **base)
    if kind == "tenant":
        return cmd.SetTenant(tenant=p.get("tenant", ""), override=p.get("override", ""), **base)
    if kind == "kill":
        return cmd.Kill(**base)
    if kind == "resume":
        return cmd.Resume(plan=bool(p.get("plan")), **base)
    if kind in PLAN_ACTIONS:
        return cmd.PlanAction(action=PLAN_ACTIONS[kind], **base)
    if kind == "rollback":
        level = p.get("level", "")
        return cmd.Rollback(
            level=level,
            tenant_id=p.get("tenant") or None,
            target_percentage=p.get("target_percentage") or None,
            backup_id=p.get("backup_id") or None,
            **base,
        )
    raise ValidationError(f"{kind} is not a change to a migration", field="action")


def describe(
    app: App, name: str, action: Action, who: Principal, demo: DemoControl | None
) -> tuple[str, list[str], int]:
    """A title, the lines of what will change, and the version they were read at.

    Raises a SwitchoverError and changes nothing."""
    m = app.rollout.get(name)
    if action.kind in DEMO_ACTIONS:
        title, lines = _describe_demo(action.kind, m, demo)
        return title, lines, m.version
    shown = commands.preview(app, command(action, name, who.name, m.version))  # type: ignore[arg-type]
    return shown.title, shown.lines, m.version


def _describe_demo(kind: str, m: mig.Migration, demo: DemoControl | None) -> tuple[str, list[str]]:
    if demo is None:
        raise ValidationError(
            "the demo traffic is not running in this server (serve --demo on a demo store)",
            field="action",
        )
    if kind == "demo_restart":
        return "Restart the demo plan", [
            f"The plan starts again from 0 % (now {m.percentage} %), master switch on; "
            "the controller enters the canary at its next interval.",
        ]
    if kind == "demo_break":
        return "Break the demo candidate", [
            "The simulated candidate pipeline starts failing 30 % of its calls.",
            "The router falls back to legacy for them; the controller's guardrails should "
            "roll the plan back within a few intervals. Heal it from the same panel.",
        ]
    return "Heal the demo candidate", ["The simulated candidate's error rate returns to normal."]


def apply(
    app: App,
    name: str,
    action: Action,
    who: Principal,
    *,
    expected_version: int | None,
    demo: DemoControl | None,
) -> str:
    """Make the change; returns what the page says afterwards."""
    if action.kind not in DEMO_ACTIONS:
        outcome = commands.handle(app, command(action, name, who.name, expected_version))
        return outcome.message + "."
    if demo is None:
        raise ValidationError("the demo traffic is not running in this server", field="action")
    if action.kind == "demo_restart":
        from switchover.demo import restart_demo

        restart_demo(app)
        return "The demo plan starts again from 0 %."
    if action.kind == "demo_break":
        demo.break_candidate(0.3)
        return "The demo candidate is broken: watch its error rate and the controller."
    demo.heal_candidate()
    return "The demo candidate is healed."

"""The dashboard's operator controls: parse a form, say what will change, then do it.

Every control goes through two requests. ``describe`` turns the form into the lines
the confirmation shows (before → after, and what the controller will do next); it
validates everything and changes nothing. ``apply`` makes the change through the same
services as the CLI and the API, with the version the operator saw: if someone else
changed the migration in between, the change is refused and the operator looks again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from switchover.access import Principal
from switchover.bootstrap import App
from switchover.core import migration as mig
from switchover.core.migration import Migration, Override
from switchover.core.plan_state import PlanState, PlanStatus
from switchover.demo import restart_demo
from switchover.errors import ValidationError

ACTIONS = (
    "percentage",
    "feature",
    "tenant",
    "kill",
    "unkill",
    "promote",
    "pause",
    "plan_resume",
    "approve",
    "rollback",
    "demo_break",
    "demo_heal",
    "demo_restart",
)
ROLLBACK_LEVELS = ("partial", "total", "tenant")
TENANT_CHOICES = ("allow", "deny", "clear")


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


def parse(form: Mapping[str, Any]) -> Action:
    kind = str(form.get("action") or "")
    if kind not in ACTIONS:
        raise ValidationError(
            f"action {kind!r} is not known; use one of {', '.join(ACTIONS)}", field="action"
        )
    reason = str(form.get("reason") or "").strip() or None
    keys = {
        "percentage": ("percentage",),
        "feature": ("feature", "enabled"),
        "tenant": ("tenant", "override"),
        "rollback": ("level", "tenant", "target_percentage"),
    }.get(kind, ())
    params = {k: str(form.get(k) or "").strip() for k in keys}
    if kind == "percentage":
        params["percentage"] = str(mig.parse_percentage(params["percentage"]))
    elif kind == "feature":
        if params["enabled"] not in ("on", "off"):
            raise ValidationError("enabled must be 'on' or 'off'", field="enabled")
    elif kind == "tenant":
        params["tenant"] = mig.validate_tenant_id(params["tenant"])
        if params["override"] not in TENANT_CHOICES:
            raise ValidationError(
                "override must be allow (always the candidate), deny (always legacy) "
                "or clear (follow the percentage)",
                field="override",
            )
    elif kind == "rollback":
        level = params["level"]
        if level not in ROLLBACK_LEVELS:
            raise ValidationError(
                f"level {level!r} is not one of {', '.join(ROLLBACK_LEVELS)}", field="level"
            )
        if level == "tenant":
            params["tenant"] = mig.validate_tenant_id(params["tenant"])
        if level == "partial":
            if not params["target_percentage"]:
                raise ValidationError(
                    "a partial rollback needs a target percentage below the current one",
                    field="target_percentage",
                )
            try:
                pct = mig.parse_percentage(params["target_percentage"])
            except ValidationError as exc:
                raise ValidationError(
                    exc.message.replace("percentage", "target percentage", 1),
                    field="target_percentage",
                ) from None
            params["target_percentage"] = str(pct)
    return Action(kind, {k: v for k, v in params.items() if v}, reason)


def _side(m: Migration, tenant: str) -> str:
    override = m.tenants.get(tenant)
    if override is Override.ALLOW:
        return "always the candidate (allow)"
    if override is Override.DENY:
        return "always legacy (deny)"
    return "follows the percentage"


def _plan_note(plan: PlanState | None) -> str | None:
    if plan is None or plan.status is not PlanStatus.RUNNING or plan.phase_index < 0:
        return None
    phase = plan.plan.phases[plan.phase_index]
    return (
        f"The plan is running (phase {phase.name}, {phase.percentage} %): the controller "
        "sets the percentage again when it advances or rolls back; pause the plan to hold "
        "a hand-set value."
    )


def describe(
    action: Action, m: Migration, plan: PlanState | None, demo: DemoControl | None
) -> tuple[str, list[str]]:
    """A title and the lines of what will change. Raises ValidationError, changes nothing."""
    p = action.params
    name = m.name
    if action.kind == "percentage":
        new = int(p["percentage"])
        lines = [f"Candidate share: {m.percentage} % → {new} % of callers."]
        if new > m.percentage:
            lines.append("Callers already on the candidate stay there (sticky buckets).")
        elif new < m.percentage:
            lines.append(f"Callers in buckets {new + 1} to {m.percentage} go back to legacy.")
        else:
            lines.append("This is the current value: nothing will change.")
        if not m.enabled:
            lines.append("The master switch is off: every call stays on legacy until unkilled.")
        note = _plan_note(plan)
        return f"Set {name} to {new} %", [*lines, *([note] if note else [])]
    if action.kind == "feature":
        feature = mig.require_feature(m, p["feature"])
        now_on = m.features[feature]
        want = p["enabled"] == "on"
        state = {True: "on", False: "off"}
        lines = [f"Feature {feature}: {state[now_on]} → {state[want]}."]
        if not want:
            lines.append(f"Every {feature} call goes to legacy, whatever the percentage.")
        return f"Switch {feature} {state[want]} in {name}", lines
    if action.kind == "tenant":
        tenant = p["tenant"]
        new = {"allow": Override.ALLOW, "deny": Override.DENY, "clear": None}[p["override"]]
        after = (
            "always the candidate (allow)"
            if new is Override.ALLOW
            else "always legacy (deny)"
            if new is Override.DENY
            else "follows the percentage"
        )
        return f"Tenant {tenant} in {name}", [f"Tenant {tenant}: {_side(m, tenant)} → {after}."]
    if action.kind == "kill":
        return f"Kill {name}", [
            "Master switch: on → off. Every call goes to legacy at once.",
            "The plan stops advancing until the migration is switched back on.",
        ]
    if action.kind == "unkill":
        return f"Switch {name} back on", [
            f"Master switch: off → on. Calls follow the percentage ({m.percentage} %) again.",
        ]
    if action.kind in ("promote", "pause", "plan_resume", "approve"):
        return _describe_plan(action.kind, name, plan)
    if action.kind == "rollback":
        level = p["level"]
        if level == "total":
            return f"Total rollback of {name}", [
                f"Candidate share: {m.percentage} % → 0 %; master switch off.",
                "The plan is aborted: nothing more happens until a plan is applied again.",
            ]
        if level == "tenant":
            tenant = p["tenant"]
            return f"Roll tenant {tenant} back", [
                f"Tenant {tenant}: {_side(m, tenant)} → always legacy (deny).",
            ]
        target = int(p["target_percentage"])
        if target >= m.percentage and m.enabled:
            raise ValidationError(
                f"target percentage {target} is not below the current {m.percentage} %; "
                "a rollback lowers the percentage",
                field="target_percentage",
            )
        return f"Partial rollback of {name}", [
            f"Candidate share: {m.percentage} % → {target} %.",
            "The plan steps back to the last phase at or below that share and stops "
            "advancing until resumed.",
        ]
    if demo is None:
        raise ValidationError(
            "the demo traffic is not running in this server (serve --demo on a demo store)",
            field="action",
        )
    if action.kind == "demo_restart":
        return "Restart the demo plan", [
            f"The plan starts again from 0 % (now {m.percentage} %), master switch on; "
            "the controller enters the canary at its next interval.",
        ]
    if action.kind == "demo_break":
        return "Break the demo candidate", [
            "The simulated candidate pipeline starts failing 30 % of its calls.",
            "The router falls back to legacy for them; the controller's guardrails should "
            "roll the plan back within a few intervals. Heal it from the same panel.",
        ]
    return "Heal the demo candidate", ["The simulated candidate's error rate returns to normal."]


def _describe_plan(kind: str, name: str, plan: PlanState | None) -> tuple[str, list[str]]:
    if plan is None:
        raise ValidationError(
            f"{name} has no plan; apply one with 'switchover plan apply {name} FILE'",
            field="action",
        )
    phases = plan.plan.phases
    here = phases[plan.phase_index] if plan.phase_index >= 0 else None
    nxt = phases[plan.phase_index + 1] if plan.phase_index + 1 < len(phases) else None
    where = f"phase {here.name} ({here.percentage} %)" if here else "before its first phase"
    if kind == "promote":
        if nxt is None:
            return f"Complete {name}", [f"The plan is in {where}: promoting completes it."]
        return f"Promote {name}", [
            f"Plan: {where} → phase {nxt.name} ({nxt.percentage} %), now, "
            "without waiting for its gates.",
        ]
    if kind == "pause":
        return f"Pause the plan of {name}", [
            f"Plan: {plan.status.value} → paused, in {where}.",
            "No advance while paused; rollbacks on evidence still happen.",
        ]
    if kind == "plan_resume":
        return f"Resume the plan of {name}", [
            f"Plan: {plan.status.value} → running, in {where}.",
            "The phase's window starts again now: evidence from before does not count.",
        ]
    if nxt is None:
        raise ValidationError(
            f"the plan of {name} is in its last phase; there is nothing to approve",
            field="action",
        )
    return f"Approve the next phase of {name}", [
        f"Approve phase {nxt.name} ({nxt.percentage} %): the controller enters it when "
        f"{where} has passed its gates and minimum time.",
    ]


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
    p = action.params
    kw: dict[str, Any] = {"actor": who.name, "reason": action.reason}
    versioned = {**kw, "expected_version": expected_version}
    rollout, plans = app.rollout, app.plans
    kind = action.kind
    if kind == "percentage":
        m = rollout.set_percentage(name, int(p["percentage"]), **versioned)
        return f"{name} is at {m.percentage} %."
    if kind == "feature":
        rollout.set_feature(name, p["feature"], p["enabled"] == "on", **versioned)
        return f"Feature {p['feature']} is {p['enabled']}."
    if kind == "tenant":
        override = {"allow": Override.ALLOW, "deny": Override.DENY, "clear": None}[p["override"]]
        rollout.set_tenant(name, p["tenant"], override, **versioned)
        return f"Tenant {p['tenant']}: {p['override']}."
    if kind == "kill":
        rollout.kill(name, **versioned)
        return f"{name} is killed: every call goes to legacy."
    if kind == "unkill":
        rollout.resume(name, **versioned)
        return f"{name} is switched back on."
    if kind in ("promote", "pause", "approve"):
        state = getattr(plans, kind)(name, **kw)
        return f"Plan of {name}: {state.status.value}, phase {state.phase_index + 1}."
    if kind == "plan_resume":
        state = plans.resume(name, **kw)
        return f"Plan of {name}: {state.status.value}."
    if kind == "rollback":
        plans.rollback(
            name,
            p["level"],
            tenant_id=p.get("tenant"),
            target_percentage=p.get("target_percentage"),
            **kw,
        )
        return f"{name}: {p['level']} rollback done."
    if demo is None:
        raise ValidationError("the demo traffic is not running in this server", field="action")
    if kind == "demo_restart":
        restart_demo(app)
        return "The demo plan starts again from 0 %."
    if kind == "demo_break":
        demo.break_candidate(0.3)
        return "The demo candidate is broken: watch its error rate and the controller."
    demo.heal_candidate()
    return "The demo candidate is healed."

"""What each dashboard page shows, gathered from the services as plain dicts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from switchover.bootstrap import App
from switchover.core.changes import changed_fields
from switchover.core.judge import human_duration
from switchover.core.migration import Migration
from switchover.core.plan_state import PlanState, PlanStatus
from switchover.core.redact import redact
from switchover.data import backup as backups
from switchover.data.migrate import list_runs
from switchover.errors import SwitchoverError
from switchover.store.repository import AuditEntry

GOOD = ("advance", "complete", "start", "continue")
BAD = ("rollback_partial", "rollback_total")


def ago(now: datetime, then: datetime | str | None) -> str:
    if then is None:
        return "never"
    if isinstance(then, str):
        then = datetime.fromisoformat(then)
    seconds = (now - then).total_seconds()
    if seconds < 1:
        return "just now"
    return f"{human_duration(seconds)} ago"


def health(m: Migration, plan: PlanState | None, last: dict[str, Any] | None) -> tuple[str, str]:
    """A word and a tone (ok, warn, bad, idle) for the list and the page header."""
    if not m.enabled:
        return "killed: all calls on legacy", "bad"
    if plan is not None and plan.status is PlanStatus.ROLLED_BACK:
        return "rolled back", "bad"
    if plan is not None and plan.status is PlanStatus.ABORTED:
        return "aborted", "bad"
    if plan is not None and plan.status is PlanStatus.COMPLETED:
        return "completed", "ok"
    if last is None:
        return ("waiting for a first verdict", "idle") if plan else ("no plan", "idle")
    if last["action"] in BAD:
        return "rolled back", "bad"
    if last["action"] == "hold":
        return "holding", "warn"
    return "healthy", "ok"


def _phase_of(plan: PlanState | None) -> str | None:
    if plan is None or plan.phase_index < 0:
        return None
    phase = plan.plan.phases[plan.phase_index]
    return f"{phase.name} ({phase.percentage} %)"


def overview(app: App) -> list[dict[str, Any]]:
    now = app.clock.now()
    plans = {p.migration: p for p in app.plans.list()}
    rows = []
    for m in app.rollout.list():
        plan = plans.get(m.name)
        verdicts = app.plans.verdicts(m.name, limit=1) if plan else []
        last = verdicts[0].to_dict(detail=False) if verdicts else None
        word, tone = health(m, plan, last)
        rows.append(
            {
                "name": m.name,
                "description": m.description,
                "state": m.state.value,
                "enabled": m.enabled,
                "percentage": m.percentage,
                "plan_status": plan.status.value if plan else None,
                "phase": _phase_of(plan),
                "last_verdict": last,
                "last_verdict_ago": ago(now, last["at"]) if last else None,
                "health": word,
                "tone": tone,
            }
        )
    return rows


def timeline(plan: PlanState, now: datetime) -> list[dict[str, Any]]:
    out = []
    in_phase = max(0.0, (now - plan.phase_started_at).total_seconds())
    for i, phase in enumerate(plan.plan.phases):
        if i < plan.phase_index or plan.status is PlanStatus.COMPLETED:
            where = "done"
        elif i == plan.phase_index:
            where = "current"
        else:
            where = "next"
        progress = None
        if where == "current" and phase.duration > 0:
            progress = min(100, round(100 * in_phase / phase.duration))
        out.append(
            {
                "index": i,
                "name": phase.name,
                "percentage": phase.percentage,
                "duration": human_duration(phase.duration) if phase.duration else "no minimum",
                "gates": [g.text for g in phase.gates],
                "requires_approval": phase.requires_approval,
                "approved": plan.approved_index is not None and plan.approved_index >= i,
                "where": where,
                "progress": progress,
                "in_phase": human_duration(in_phase) if where == "current" else None,
            }
        )
    return out


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """``field: old → new`` for what an audit row changed, secrets redacted."""
    return [
        f"{key}: {_short(redact(old, limit=80))} → {_short(redact(new, limit=80))}"
        for key, old, new in changed_fields(before, after)
    ]


def _short(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def audit_rows(entries: list[AuditEntry], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": e.id,
            "action": e.action,
            "actor": e.actor,
            "at": e.at.isoformat(),
            "ago": ago(now, e.at),
            "reason": redact(e.reason, limit=300),
            "changes": ["created"]
            if e.action == "create"
            else _changes(e.before or {}, e.after or {})[:8],
        }
        for e in entries
    ]


def verdict_rows(app: App, name: str, now: datetime, limit: int = 8) -> list[dict[str, Any]]:
    rows = []
    for v in app.plans.verdicts(name, limit=limit):
        d = v.to_dict(detail=False)
        d["ago"] = ago(now, v.at)
        d["tone"] = "bad" if v.action in BAD else "warn" if v.action == "hold" else "ok"
        rows.append(d)
    return rows


def data_view(app: App, now: datetime) -> dict[str, Any]:
    """Data-migration runs and backups; an unreachable source is said, not raised."""
    try:
        source = app.data_source
        runs = [r.to_dict() for r in list_runs(source, limit=10)]
        found = [b.to_dict() for b in backups.list_backups(source)][:10]
    except SwitchoverError as exc:
        return {"error": exc.message, "runs": [], "backups": []}
    for r in runs:
        r["ago"] = ago(now, r["started_at"])
        r.pop("holder", None)
    for b in found:
        b["ago"] = ago(now, b["created_at"])
    return {"error": None, "runs": runs, "backups": found}


def migration_view(app: App, name: str) -> dict[str, Any]:
    now = app.clock.now()
    status = app.rollout.status(name)
    m = status.migration
    plan = app.plans.find(name)
    verdicts = verdict_rows(app, name, now) if plan else []
    word, tone = health(m, plan, verdicts[0] if verdicts else None)
    return {
        "m": m.to_dict(),
        "health": word,
        "tone": tone,
        "tenants_known": status.tenants_known,
        "tenants_on_candidate": status.tenants_on_candidate,
        "overrides": sorted(
            ({"tenant": t, "override": o.value} for t, o in m.tenants.items()),
            key=lambda r: r["tenant"],
        ),
        "plan": None
        if plan is None
        else {
            "name": plan.plan.name,
            "status": plan.status.value,
            "phase": _phase_of(plan),
            "awaiting_approval": plan.approval_requested,
            "timeline": timeline(plan, now),
            "has_next": plan.phase_index + 1 < len(plan.plan.phases),
        },
        "verdicts": verdicts,
    }

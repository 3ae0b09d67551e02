"""What each dashboard page shows, gathered from the services as plain dicts."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from switchover.bootstrap import App
from switchover.control.scorecard import (
    NO_WORSE,
    NOT_ENOUGH,
    NOT_JUDGED,
    RESULT_WORDS,
    WORSE,
    Scorecard,
    ScorecardService,
)
from switchover.core.changes import changed_fields
from switchover.core.chart import WINDOWS, window_for
from switchover.core.checks import matrix_gates, ms, p_text, pct, ratio
from switchover.core.judge import human_duration
from switchover.core.migration import Migration
from switchover.core.plan import Gate, gate_kind
from switchover.core.plan_state import PlanState, PlanStatus
from switchover.core.redact import redact
from switchover.core.verdict import Result
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


def state_of(m: Migration, plan: PlanState | None) -> tuple[str, str]:
    """Where the rollout stands (a word and a tone): killed, rolled back, paused..."""
    if not m.enabled:
        return "killed: all calls on legacy", "bad"
    if plan is None:
        return "no plan", "idle"
    if plan.status is PlanStatus.ROLLED_BACK:
        return "rolled back", "bad"
    if plan.status is PlanStatus.ABORTED:
        return "aborted", "bad"
    if plan.status is PlanStatus.COMPLETED:
        return "completed", "ok"
    if plan.status is PlanStatus.PAUSED:
        return "paused", "warn"
    if plan.phase_index < 0:
        return "waiting to start", "idle"
    return "running", "ok"


HEALTH_TONES = {WORSE: "bad", NO_WORSE: "ok", NOT_ENOUGH: "warn", NOT_JUDGED: "idle"}


def health(card: Scorecard) -> tuple[str, str]:
    """The candidate against legacy, from the scorecard's evidence: a word and a tone."""
    return card.health, HEALTH_TONES[card.health]


def _phase_of(plan: PlanState | None) -> str | None:
    if plan is None or plan.phase_index < 0:
        return None
    phase = plan.plan.phases[plan.phase_index]
    return f"{phase.name} ({phase.percentage} %)"


def overview(app: App, scores: ScorecardService) -> list[dict[str, Any]]:
    now = app.clock.now()
    plans = {p.migration: p for p in app.plans.list()}
    rows = []
    for m in app.rollout.list():
        plan = plans.get(m.name)
        verdicts = app.plans.verdicts(m.name, limit=1) if plan else []
        last = verdicts[0].to_dict(detail=False) if verdicts else None
        word, tone = health(scores.scorecard(plan, m.name))
        state, state_tone = state_of(m, plan)
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
                "rollout": state,
                "rollout_tone": state_tone,
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


FOLDED = ("continue",)
"""Actions whose runs of identical verdicts fold into one line."""


def plan_gates(plan: PlanState | None) -> dict[str, Gate]:
    """Every gate a verdict of this plan may have checked, by its text."""
    if plan is None:
        return {}
    p = plan.plan
    gates = [*p.guardrails, *(g for phase in p.phases for g in phase.gates)]
    gates += [g for _, g in matrix_gates(p.matrix, p.operation)]
    return {g.text: g for g in gates}


def verdict_rows(app: App, name: str, now: datetime, limit: int = 60) -> list[dict[str, Any]]:
    """The newest verdicts, a run of identical ``continue`` verdicts folded into one row
    (``count``, the oldest one's ``since``); each with its checks, to open."""
    rows: list[dict[str, Any]] = []
    gates = plan_gates(app.plans.find(name))
    for v in app.plans.verdicts(name, limit=limit):
        d = v.to_dict(detail=True)
        d["ago"] = ago(now, v.at)
        d["tone"] = "bad" if v.action in BAD else "warn" if v.action == "hold" else "ok"
        d["count"] = 1
        d["checks"] = [check_row(c, gates.get(c["name"])) for c in d["checks"]]
        prev = rows[-1] if rows else None
        if (
            prev is not None
            and v.action in FOLDED
            and (prev["action"], prev["phase"], prev["severity"]) == (v.action, v.phase, v.severity)
        ):
            prev["count"] += 1
            prev["since"] = d["ago"]
            continue
        rows.append(d)
    return rows[:12]


def check_row(c: dict[str, Any], gate: Gate | None = None) -> dict[str, Any]:
    """A stored or live check (its ``to_dict``) as a scorecard row: values with units,
    the comparison, the samples and the statistic."""
    kind = gate.kind if gate is not None else _kind_of(c["name"])
    if c["name"].startswith("sample ratio"):
        kind = "sample_ratio"
    unit = UNITS.get(kind, "")
    effect = c.get("effect")
    samples = c.get("samples") or {}
    return {
        "name": c["name"],
        "scope": c["scope"],
        "window": c.get("window"),
        "legacy": _value(c.get("legacy"), unit),
        "candidate": _value(c.get("candidate"), unit),
        "comparison": _comparison(kind, effect, gate),
        "samples": f"{samples.get('candidate', 0):,} / {samples.get('legacy', 0):,}",
        "statistic": _statistic(c),
        "result": c["result"],
        "result_word": RESULT_WORDS.get(Result(c["result"]), c["result"]),
        "reason": c.get("reason", ""),
    }


UNITS = {
    "sample_ratio": "%",
    "rate": "%",
    "outcome": "%",
    "rate_ratio": "%",
    "rate_diff": "%",
    "outcome_drop": "%",
    "latency": "ms",
    "ttfb": "ms",
    "latency_ratio": "ms",
    "ttfb_ratio": "ms",
    "mean_ratio": "ms",
}
RATIOS = ("rate_ratio", "latency_ratio", "ttfb_ratio", "mean_ratio")
DIFFS = ("rate_diff", "outcome_drop")


def _kind_of(text: str) -> str:
    """A stored check's kind, from its gate text (``P1: error_rate <= 10%``)."""
    words = text.split()
    if words and words[0] in ("P0:", "P1:", "P2:"):
        words = words[1:]
    return gate_kind(words[0]) if words else "unknown"


def _value(x: Any, unit: str) -> str:
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if unit == "%":
        return pct(x)
    if unit == "ms":
        return ms(x)
    return f"{x:,.3g}"


def _comparison(kind: str, effect: Any, gate: Gate | None) -> str:
    if effect is None or isinstance(effect, str):
        return "—" if effect is None else f"ratio {effect}"
    if kind in RATIOS:
        return f"ratio {ratio(effect)}"
    if kind in DIFFS:
        return f"{effect * 100:+.2f} pts"
    if kind == "sample_ratio":
        return "—"
    if gate is not None and kind in ("rate", "outcome"):
        return f"limit {pct(gate.value)}"
    if gate is not None and kind in ("latency", "ttfb"):
        return f"limit {ms(gate.value)}"
    return f"{effect:.3g}"


def _statistic(c: dict[str, Any]) -> str:
    parts = [c.get("method") or ""]
    if c.get("p_value") is not None:
        parts.append(p_text(c["p_value"]))
    elif isinstance(c.get("log_e"), float) and isinstance(c.get("threshold"), float):
        parts.append(f"log e {c['log_e']:.2f} of {c['threshold']:.2f}")
    return " · ".join(p for p in parts if p)


def scorecard_view(card: Scorecard) -> dict[str, Any]:
    gates = card.gates or (None,) * len(card.checks)
    nxt = card.next_judgement_s
    return {
        "health": card.health,
        "tone": HEALTH_TONES[card.health],
        "why": card.why,
        "phase": card.phase,
        "action": card.verdict.action.value if card.verdict else None,
        "severity": card.verdict.severity.value if card.verdict else None,
        "summary": card.verdict.summary() if card.verdict else None,
        "rows": [check_row(c.to_dict(), g) for c, g in zip(card.checks, gates, strict=True)],
        "matrix": [
            {**check_row(r.check.to_dict(), r.gate), "level": r.level.value} for r in card.matrix
        ],
        "next_s": None if nxt is None else math.ceil(nxt),
    }


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


def migration_view(
    app: App, name: str, scores: ScorecardService | None = None, *, verdicts: bool = True
) -> dict[str, Any]:
    """What a migration's panels show; the scorecard (and health) only given ``scores``."""
    now = app.clock.now()
    status = app.rollout.status(name)
    m = status.migration
    plan = app.plans.find(name)
    rows = verdict_rows(app, name, now) if plan and verdicts else []
    if scores is None:
        card = Scorecard(name, now, NOT_JUDGED, None)
    else:
        card = scores.scorecard(plan, name)
    word, tone = health(card)
    state, state_tone = state_of(m, plan)
    return {
        "m": m.to_dict(),
        "health": word,
        "tone": tone,
        "rollout": state,
        "rollout_tone": state_tone,
        "card": scorecard_view(card),
        "last_verdict": rows[0] if rows else None,
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
            "window_s": plan.plan.window,
        },
        "verdicts": rows,
    }


# --- charts -------------------------------------------------------------------------------

CHART_OF = {
    "error_rate": "error_rate",
    "fallback_rate": "fallback_rate",
    "p95": "p95_ms",
    "ttfb_p95": "ttfb_p95_ms",
}
"""Absolute gates' metrics drawn as a threshold on a chart, by the chart's key."""
EVENT_KINDS = {
    "advance": "phase",
    "complete": "phase",
    "rollback_partial": "rollback",
    "rollback_total": "rollback",
    "kill": "rollback",
    "resume": "change",
    "set_percentage": "change",
}


def default_window(v: dict[str, Any]) -> str:
    """The plan's judging window (a migration without a plan: the last hour)."""
    plan = v.get("plan")
    return window_for(plan["window_s"]) if plan else "1h"


def chart_windows(v: dict[str, Any]) -> list[str]:
    first = default_window(v)
    return [first, *(w for w in WINDOWS if w != first)]


def thresholds(plan: PlanState | None, operation: str | None) -> list[dict[str, Any]]:
    """The guardrails and the current phase's absolute gates, as lines on their charts."""
    if plan is None:
        return []
    p = plan.plan
    phase_gates = p.phases[plan.phase_index].gates if plan.phase_index >= 0 else ()
    out = []
    for scope, gates in (("guardrail", p.guardrails), ("gate", phase_gates)):
        for g in gates:
            if g.kind not in ("rate", "latency", "ttfb", "outcome"):
                continue
            gate_op = g.operation if g.operation is not None else p.operation
            if gate_op is not None and operation is not None and gate_op != operation:
                continue
            chart = CHART_OF.get(g.metric)
            if chart is None and g.metric.startswith("outcome."):
                chart = "outcome:" + g.metric.removeprefix("outcome.")
            if chart is not None:
                out.append({"chart": chart, "value": g.value, "label": g.text, "scope": scope})
    return out


def chart_events(app: App, name: str, since: float, until: float) -> list[dict[str, Any]]:
    """Phase changes, rollbacks and the operators' changes from the audit, and the first
    hold of each run of holds from the verdicts, between ``since`` and ``until`` (s)."""
    out = []
    for e in app.rollout.audit(name, limit=200):
        kind = EVENT_KINDS.get(e.action)
        t = e.at.timestamp()
        if kind is not None and since <= t <= until:
            out.append({"t": t, "kind": kind, "label": e.action.replace("_", " ")})
    previous = None
    for v in reversed(app.plans.verdicts(name, limit=120)):
        t = v.at.timestamp()
        if v.action == "hold" and previous != "hold" and since <= t <= until:
            out.append({"t": t, "kind": "hold", "label": f"hold {v.severity}"})
        previous = v.action
    return sorted(out, key=lambda e: e["t"])


def chart_marks(app: App, name: str, body: dict[str, Any], operation: str | None) -> dict[str, Any]:
    """What the charts draw over the series: thresholds, events, the partial bucket."""
    now = app.clock.now().timestamp()
    t = body["t"]
    return {
        "now": now,
        "partial_from": t[-1] if t and t[-1] <= now < body["until"] else None,
        "thresholds": thresholds(app.plans.find(name), operation),
        "events": chart_events(app, name, body["since"], body["until"]),
    }

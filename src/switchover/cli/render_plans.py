"""Tables for plans, verdicts and simulations."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from switchover.core.judge import human_duration


def _phase_rows(spec: dict[str, Any], current: int, status: str) -> Table:
    table = Table(title=f"plan {spec['name']}", title_justify="left")
    for col in ("", "phase", "%", "features", "min. duration", "gates", "approval"):
        table.add_column(col)
    for i, p in enumerate(spec["phases"]):
        marker = (
            "▶"
            if i == current and status not in ("completed", "aborted")
            else ("✓" if i < current or (i == current and status == "completed") else "")
        )
        table.add_row(
            marker,
            p["name"],
            str(p["percentage"]),
            ", ".join(p["features"]) if p["features"] is not None else "(unchanged)",
            human_duration(p["duration_seconds"]),
            "\n".join(escape(g["gate"]) for g in p["gates"]) or "-",
            "required" if p["requires_approval"] else "",
        )
    return table


def plan_view(state: dict[str, Any], verdicts: list[dict[str, Any]]) -> list[Any]:
    spec = state["spec"]
    out: list[Any] = []
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("migration", state["migration"])
    head.add_row("plan", f"{spec['name']} ({escape(state['source_name'])})")
    head.add_row("status", state["status"])
    phase = state["phase"] or "(not started)"
    head.add_row("phase", f"{phase} at {state['percentage']}%")
    if "seconds_in_phase" in state and state["phase"]:
        head.add_row(
            "time in phase",
            f"{human_duration(state['seconds_in_phase'])} of "
            f"{human_duration(state['minimum_duration_seconds'])} minimum",
        )
    if state.get("awaiting_approval"):
        head.add_row("waiting", f"approval: switchover approve {state['migration']}")
    head.add_row(
        "judging",
        f"every {human_duration(spec['interval_seconds'])} over the last "
        f"{human_duration(spec['window_seconds'])} "
        f"(spikes: {human_duration(spec['recent_seconds'])}), "
        f"{spec['min_samples']} calls minimum, {spec['confidence'] * 100:g}% confidence",
    )
    if spec["guardrails"]:
        head.add_row("guardrails", ", ".join(escape(g["gate"]) for g in spec["guardrails"]))
    out.append(head)
    out.append(_phase_rows(spec, state["phase_index"], state["status"]))
    if verdicts:
        out.append(verdict_table(verdicts))
    return out


def verdict_table(verdicts: list[dict[str, Any]]) -> Table:
    table = Table(title="verdicts (newest first)", title_justify="left")
    for col in ("at", "phase", "action", "sev", "why"):
        table.add_column(col)
    for v in verdicts:
        reasons = v.get("reasons") or [v["summary"]]
        table.add_row(
            v["at"][:19].replace("T", " "),
            v["phase"],
            v["action"],
            v["severity"],
            escape("\n".join(reasons[:4])),
        )
    return table


def plan_status_rows(table: Table, plan: dict[str, Any]) -> None:
    """Extra rows for ``switchover status``: phase, time in phase, last verdict and why."""
    phase = plan["phase"] or "(not started)"
    table.add_row("plan", f"{plan['plan']} ({plan['status']})")
    line = f"{phase} at {plan['percentage']}%"
    if plan["phase"] and "seconds_in_phase" in plan:
        line += (
            f", {human_duration(plan['seconds_in_phase'])} in phase "
            f"(minimum {human_duration(plan['minimum_duration_seconds'])})"
        )
    table.add_row("phase", line)
    last = plan.get("last_verdict")
    if last:
        why = "; ".join(last["reasons"][:3]) or last["summary"]
        table.add_row(
            "last verdict",
            f"{last['action']} ({last['severity']}) at {last['at'][:19].replace('T', ' ')}: "
            f"{escape(why)}",
        )
    if plan.get("awaiting_approval"):
        table.add_row("waiting", f"approval: switchover approve {plan['migration']}")


def simulation_table(result: dict[str, Any]) -> Table:
    table = Table(
        title=f"simulation: {result['state']} after {result['simulated']} "
        f"({result['wall_seconds']} s of wall time, {result['calls']:,} calls)",
        title_justify="left",
    )
    for col in ("at", "action", "sev", "phase", "%", "why"):
        table.add_column(col)
    for e in result["timeline"]:
        table.add_row(
            e["at"],
            e["action"],
            e["severity"],
            e["phase"],
            str(e["percentage"]),
            escape(e["summary"]),
        )
    return table

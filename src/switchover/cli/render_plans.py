"""Tables for plans, verdicts and simulations (every data value escaped: see render)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from switchover.cli.common import esc


def _dur(seconds: float) -> str:
    from switchover.core.judge import human_duration  # the judge loads the statistics

    return human_duration(seconds)


def _phase_rows(spec: dict[str, Any], current: int, status: str) -> Table:
    table = Table(title=f"plan {esc(spec['name'])}", title_justify="left")
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
            esc(p["name"]),
            str(p["percentage"]),
            esc(", ".join(p["features"])) if p["features"] is not None else "(unchanged)",
            _dur(p["duration_seconds"]),
            "\n".join(esc(g["gate"]) for g in p["gates"]) or "-",
            "required" if p["requires_approval"] else "",
        )
    return table


def plan_view(state: dict[str, Any], verdicts: list[dict[str, Any]]) -> list[Any]:
    spec = state["spec"]
    out: list[Any] = []
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("migration", esc(state["migration"]))
    head.add_row("plan", esc(f"{spec['name']} ({state['source_name']})"))
    head.add_row("status", esc(state["status"]))
    phase = state["phase"] or "(not started)"
    head.add_row("phase", esc(f"{phase} at {state['percentage']}%"))
    if "seconds_in_phase" in state and state["phase"]:
        head.add_row(
            "time in phase",
            f"{_dur(state['seconds_in_phase'])} of "
            f"{_dur(state['minimum_duration_seconds'])} minimum",
        )
    if state.get("awaiting_approval"):
        head.add_row("waiting", esc(f"approval: switchover approve {state['migration']}"))
    head.add_row(
        "judging",
        f"every {_dur(spec['interval_seconds'])}, sequentially on the phase's calls so far "
        f"(spikes: windows of {_dur(spec['recent_seconds'])} to "
        f"{_dur(spec['window_seconds'])}), {spec['min_samples']} calls minimum, "
        f"{spec['confidence'] * 100:g}% confidence over the whole plan",
    )
    if spec["guardrails"]:
        head.add_row("guardrails", ", ".join(esc(g["gate"]) for g in spec["guardrails"]))
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
            esc(v["at"][:19].replace("T", " ")),
            esc(v["phase"]),
            esc(v["action"]),
            esc(v["severity"]),
            esc("\n".join(reasons[:4])),
        )
    return table


def plan_status_rows(table: Table, plan: dict[str, Any]) -> None:
    """Extra rows for ``switchover status``: phase, time in phase, last verdict and why."""
    phase = plan["phase"] or "(not started)"
    table.add_row("plan", esc(f"{plan['plan']} ({plan['status']})"))
    line = f"{phase} at {plan['percentage']}%"
    if plan["phase"] and "seconds_in_phase" in plan:
        line += (
            f", {_dur(plan['seconds_in_phase'])} in phase "
            f"(minimum {_dur(plan['minimum_duration_seconds'])})"
        )
    table.add_row("phase", esc(line))
    last = plan.get("last_verdict")
    if last:
        why = "; ".join(last["reasons"][:3]) or last["summary"]
        table.add_row(
            "last verdict",
            esc(
                f"{last['action']} ({last['severity']}) at "
                f"{last['at'][:19].replace('T', ' ')}: {why}"
            ),
        )
    if plan.get("awaiting_approval"):
        table.add_row("waiting", esc(f"approval: switchover approve {plan['migration']}"))


def simulation_table(result: dict[str, Any]) -> Table:
    table = Table(
        title=esc(
            f"simulation: {result['state']} after {result['simulated']} "
            f"({result['wall_seconds']} s of wall time, {result['calls']:,} calls)"
        ),
        title_justify="left",
    )
    for col in ("at", "action", "sev", "phase", "%", "why"):
        table.add_column(col)
    for e in result["timeline"]:
        table.add_row(
            esc(e["at"]),
            esc(e["action"]),
            esc(e["severity"]),
            esc(e["phase"]),
            str(e["percentage"]),
            esc(e["summary"]),
        )
    return table

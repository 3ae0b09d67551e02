"""CLI: reading a migration: ``status``, ``audit``, ``decide`` and ``metrics``."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from switchover.cli import render
from switchover.cli.common import Json, Name, app_of, esc, handled
from switchover.errors import ValidationError


@handled
def status(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="One migration; all if omitted.")] = None,
    as_json: Json = False,
) -> None:
    """Rollout status: percentage, tenants on candidate, last change; plan phase and verdict."""
    a = app_of(ctx)
    rollout = a.rollout
    names = [name] if name else [m.name for m in rollout.list()]
    statuses = [rollout.status(n) for n in names]
    plans = {n: a.plans.status(n) for n in names}
    if as_json:
        data = [{**s.to_dict(), "plan": plans[s.migration.name]} for s in statuses]
        render.emit_json(data[0] if name else data)
        return
    if not statuses:
        render.console.print("no migrations yet: switchover migration create NAME --features stt")
    for s in statuses:
        table = render.status_panel(s)
        plan = plans[s.migration.name]
        if plan is not None:
            from switchover.cli.render_plans import plan_status_rows

            plan_status_rows(table, plan)
        render.console.print(table)


@handled
def audit(
    ctx: typer.Context,
    name: Name,
    limit: Annotated[int, typer.Option("--limit", help="How many entries, newest first.")] = 50,
    as_json: Json = False,
) -> None:
    """The audit log of a migration: who changed what, when, and why."""
    entries = app_of(ctx).rollout.audit(name, limit=limit)
    if as_json:
        render.emit_json([e.to_dict() for e in entries])
    else:
        render.console.print(render.audit_table(name, entries))


_CONTEXT = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$")


def parse_context(pairs: list[str]) -> dict[str, str]:
    context: dict[str, str] = {}
    for pair in pairs:
        match = _CONTEXT.match(pair)
        if match is None:
            raise ValidationError(
                f"--context {pair!r} is not KEY=VALUE (for example --context user_id=42)",
                field="context",
            )
        context[match.group(1)] = match.group(2)
    return context


@handled
def decide(
    ctx: typer.Context,
    name: Name,
    feature: Annotated[
        str | None, typer.Option("--feature", "-f", help="The feature the call uses.")
    ] = None,
    context: Annotated[
        list[str] | None,
        typer.Option("--context", "-c", help="KEY=VALUE, repeatable: user_id=42 tenant_id=t1."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Which side would serve a call with this context, and why."""
    call = parse_context(context or [])
    (d,) = app_of(ctx).rollout.decide(name, feature, [call])
    if as_json:
        render.emit_json(d.to_dict() | {"context": call})
    else:
        colour = "green" if d.candidate else "yellow"
        render.console.print(
            f"[{colour}]{esc(d.side.value)}[/{colour}] ({esc(d.reason.value)}) "
            f"for {esc(name)}{esc('/' + feature) if feature else ''} at version {d.version}"
        )


@handled
def metrics(
    ctx: typer.Context,
    name: Name,
    window: Annotated[
        str, typer.Option("--window", "-w", help="How far back: 90s, 15m, 2h, 7d.")
    ] = "15m",
    operation: Annotated[
        str | None, typer.Option("--operation", "-o", help="One operation (default: all).")
    ] = None,
    samples: Annotated[
        int, typer.Option("--samples", help="Also show this many recent shadow mismatches.")
    ] = 0,
    as_json: Json = False,
) -> None:
    """Legacy and candidate side by side: calls, error and fallback rates, latency, outcomes."""
    from rich.text import Text

    from switchover.core.timewindow import parse_duration

    a = app_of(ctx)
    report = a.metrics.window(name, last=parse_duration(window), operation=operation).to_dict()
    shown = a.metrics.shadow_samples(name, limit=samples) if samples > 0 else []
    if as_json:
        render.emit_json(report | ({"shadow_samples": shown} if samples > 0 else {}))
        return
    render.console.print(render.metrics_table(report))
    for sample in shown:
        line = Text(sample["kind"], style="bold")
        line.append(
            f" {sample['operation']} at {sample['at'][:19]}: legacy={sample.get('legacy')!r} "
            f"candidate={sample.get('candidate')!r} context={sample.get('context')!r}"
        )
        render.console.print(line, highlight=False)

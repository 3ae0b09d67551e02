"""CLI: ``switchover plan …``, the plan verbs (promote, pause, approve, abort) and
``rollback --level tenant|partial|total|data``."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from switchover.cli import render
from switchover.cli.common import By, Json, Name, Reason, app_of, esc, handled, who
from switchover.errors import ValidationError

plan_app = typer.Typer(
    help="Rollout plans: phases with gates that the controller advances or rolls back.",
    no_args_is_help=True,
)

PlanFile = Annotated[
    Path,
    typer.Argument(
        help="A plan in YAML (see docs/plans.md and examples/plans/).", show_default=False
    ),
]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError(f"{path}: no such file", field="plan") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(
            f"{path}: cannot be read ({type(exc).__name__})", field="plan"
        ) from None


def _plan_out(data: dict[str, Any], verdicts: list[dict[str, Any]], as_json: bool) -> None:
    from switchover.cli.render_plans import plan_view

    if as_json:
        render.emit_json({**data, "verdicts": verdicts})
        return
    for part in plan_view(data, verdicts):
        render.console.print(part)


# --- plan --------------------------------------------------------------------------------


@plan_app.command("apply")
@handled
def plan_apply(
    ctx: typer.Context,
    name: Name,
    path: PlanFile,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Replace an active plan (keeps a phase of the same name)."),
    ] = False,
    by: By = None,
    reason: Reason = "",
    as_json: Json = False,
) -> None:
    """Attach a plan to a migration; the controller starts its first phase at its next pass."""
    source = _read(path)
    a = app_of(ctx, migrate=True)
    fn = a.plans.replace_plan if replace else a.plans.apply
    s = fn(name, source, path.name, actor=who(by), reason=reason)
    data = s.to_dict(now=a.clock.now())
    if as_json:
        render.emit_json(data)
        return
    render.console.print(
        f"plan [bold]{esc(s.plan.name)}[/bold] applied to [bold]{esc(name)}[/bold]: "
        f"{len(s.plan.phases)} phases; the controller starts "
        f"{esc(repr(s.plan.phases[0].name))} ({s.plan.phases[0].percentage}%) at its next pass "
        "(switchover serve, or switchover controller run)"
    )


@plan_app.command("check")
@handled
def plan_check(path: PlanFile, as_json: Json = False) -> None:
    """Validate a plan file without applying it; prints its phases."""
    from switchover.cli.render_plans import plan_view
    from switchover.core.plan import load_plan

    plan = load_plan(_read(path), path.name)
    if as_json:
        render.emit_json(plan.to_dict())
        return
    data = {
        "migration": "-",
        "source_name": path.name,
        "status": "not applied",
        "phase": None,
        "phase_index": -1,
        "percentage": 0,
        "spec": plan.to_dict(),
    }
    for part in plan_view(data, []):
        render.console.print(part)
    render.console.print(f"{esc(path)}: valid")


@plan_app.command("show")
@handled
def plan_show(
    ctx: typer.Context,
    name: Name,
    limit: Annotated[int, typer.Option("--limit", help="How many recent verdicts.")] = 5,
    as_json: Json = False,
) -> None:
    """The plan of a migration: phases, where it stands, the last verdicts and why."""
    a = app_of(ctx)
    s = a.plans.get(name)
    verdicts = [v.to_dict(detail=False) for v in a.plans.verdicts(name, limit=limit)]
    _plan_out(s.to_dict(now=a.clock.now()), verdicts, as_json)


@plan_app.command("verdicts")
@handled
def plan_verdicts(
    ctx: typer.Context,
    name: Name,
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.")] = 20,
    detail: Annotated[
        bool, typer.Option("--detail", help="Every check and metric (with --json).")
    ] = False,
    as_json: Json = False,
) -> None:
    """The controller's verdict history: action, severity and reasons per interval."""
    verdicts = [v.to_dict(detail=detail) for v in app_of(ctx).plans.verdicts(name, limit=limit)]
    if as_json:
        render.emit_json(verdicts)
    elif not verdicts:
        render.console.print(f"no verdicts for {esc(name)} yet")
    else:
        from switchover.cli.render_plans import verdict_table

        render.console.print(verdict_table(verdicts))


def plan_verb(fn_name: str, doc: str) -> Callable[..., None]:
    """A command that calls ``PlanService.<fn_name>`` (promote, pause, …) on one plan."""

    @handled
    def command(
        ctx: typer.Context, name: Name, by: By = None, reason: Reason = "", as_json: Json = False
    ) -> None:
        a = app_of(ctx)
        s = getattr(a.plans, fn_name)(name, actor=who(by), reason=reason)
        data = s.to_dict(now=a.clock.now())
        if as_json:
            render.emit_json(data)
        else:
            render.console.print(
                esc(
                    f"{name}: plan {s.plan.name} is {s.status.value}, phase "
                    f"{s.phase_name} ({data['percentage']}%)"
                )
            )

    command.__doc__ = doc
    return command


VERBS = {
    "promote": "Enter the next phase now, without waiting for the gates (audited).",
    "pause": "Stop advancing; rollbacks on evidence still happen.",
    "approve": "Approve entering the next phase (for phases with requires_approval).",
    "abort": "Total rollback: percentage 0, master switch off, plan aborted.",
}
"""The plan verbs that are also top-level commands (``switchover promote NAME``)."""

for _verb, _doc in VERBS.items():
    plan_app.command(_verb, help=_doc)(plan_verb(_verb, _doc))
_RESUME = "Advance again after a pause or a rollback (fresh window)."
plan_app.command("resume", help=_RESUME)(plan_verb("resume", _RESUME))


# --- rollback ----------------------------------------------------------------------------


@handled
def rollback(
    ctx: typer.Context,
    name: Name,
    level: Annotated[
        str,
        typer.Option(
            "--level",
            help="tenant: force one tenant onto legacy; partial: lower the percentage; "
            "total: percentage 0 and master switch off; data: total, then restore a data "
            "backup (seed 003 §7).",
        ),
    ],
    tenant_id: Annotated[
        str | None, typer.Option("--tenant-id", help="With --level tenant: the tenant.")
    ] = None,
    target_percentage: Annotated[
        str | None,
        typer.Option("--target-percentage", help="With --level partial: the new percentage."),
    ] = None,
    backup_id: Annotated[
        str | None,
        typer.Option("--backup-id", help="With --level data: the backup to restore."),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="With --level data: the agent database (default: $SWITCHOVER_DATA_URL, "
            "else the store).",
            show_default=False,
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="With --level data: do not ask to confirm.")
    ] = False,
    by: By = None,
    reason: Reason = "",
    as_json: Json = False,
) -> None:
    """Roll back at one of seed 003's levels; an active plan stops advancing."""
    if level == "data":
        _rollback_data(ctx, name, backup_id, source, yes, who(by), reason, as_json)
        return
    result = app_of(ctx).plans.rollback(
        name,
        level,
        actor=who(by),
        reason=reason,
        tenant_id=tenant_id,
        target_percentage=target_percentage,
    )
    if as_json:
        render.emit_json(result)
        return
    m = result["migration"]
    what = {
        "tenant": f"tenant {result.get('tenant')} forced onto legacy",
        "partial": f"percentage lowered to {m['percentage']}%",
        "total": "percentage 0, master switch off",
    }[result["level"]]
    render.console.print(esc(f"{name}: rolled back ({result['level']}): {what}"))
    if result.get("plan"):
        p = result["plan"]
        render.console.print(esc(f"plan {p['plan']} is {p['status']} at phase {p['phase'] or '-'}"))


def _rollback_data(
    ctx: typer.Context,
    name: str,
    backup_id: str | None,
    source: str | None,
    yes: bool,
    actor: str,
    reason: str,
    as_json: bool,
) -> None:
    """Traffic to legacy first (a total rollback), then the verified restore."""
    from switchover.cli.common import confirm
    from switchover.cli.data import open_source, restore_backup
    from switchover.data import backup as backups
    from switchover.errors import NotFoundError

    if not backup_id:
        raise ValidationError(
            "--level data needs --backup-id ID: list them with `switchover data backups`",
            field="backup_id",
        )
    info = backups.verify(open_source(ctx, source), backup_id)
    traffic: dict[str, Any] | None
    try:
        app_of(ctx).rollout.get(name)
    except NotFoundError:
        traffic = None
    else:
        if not yes:
            confirm(
                f"Roll {name} back to legacy (percentage 0, master off) and restore {backup_id}?",
                yes,
            )
            yes = True
        traffic = app_of(ctx).plans.rollback(
            name, "total", actor=actor, reason=reason or f"data rollback to {backup_id}"
        )
    result = restore_backup(ctx, backup_id, source, yes, as_json, verified=info)
    if as_json:
        render.emit_json({"level": "data", "traffic": traffic, **result})
        return
    if traffic is None:
        render.console.print(esc(f"no migration {name!r} in the store: traffic unchanged"))
    else:
        render.console.print(esc(f"{name}: rolled back (total): percentage 0, master switch off"))
    r = result["restored"]
    render.console.print(
        esc(
            f"restored {backup_id}: {r['configs']} configs, {r['calls']} calls, "
            f"{r['metrics']} metrics; checksum verified before and after"
        )
    )


# --- simulation --------------------------------------------------------------------------

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|m|h))?\s*$")


def parse_rate_per_second(text: str) -> float:
    match = _RATE.match(text or "")
    if match is None:
        raise ValidationError(
            f"--rate {text!r} is not a rate; write calls per second (50/s) or minute (3000/m)",
            field="rate",
        )
    return float(match.group(1)) / {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]


def _outcomes(values: list[str], option: str) -> dict[str, float]:
    from switchover.core.plan import parse_rate

    out: dict[str, float] = {}
    for raw in values:
        name, _, rate = raw.partition("=")
        if not name or not rate:
            raise ValidationError(
                f"{option} {raw!r}: write NAME=RATE, e.g. cache_hit=85%", field=option
            )
        out[name.strip()] = parse_rate(rate, option)
    return out


@plan_app.command("simulate")
@handled
def plan_simulate(
    path: PlanFile,
    legacy_p95: Annotated[str, typer.Option("--legacy-p95", help="Legacy p95 latency.")] = "400ms",
    candidate_p95: Annotated[
        str, typer.Option("--candidate-p95", help="Candidate p95 latency.")
    ] = "400ms",
    legacy_p50: Annotated[
        str | None, typer.Option("--legacy-p50", help="Legacy p50 (default: p95 / 2).")
    ] = None,
    candidate_p50: Annotated[
        str | None, typer.Option("--candidate-p50", help="Candidate p50 (default: p95 / 2).")
    ] = None,
    legacy_errors: Annotated[
        str, typer.Option("--legacy-errors", help="Legacy error rate, e.g. 0.5%.")
    ] = "0.5%",
    candidate_errors: Annotated[
        str, typer.Option("--candidate-errors", help="Candidate error rate, e.g. 0.5%.")
    ] = "0.5%",
    error_spike: Annotated[
        str | None,
        typer.Option(
            "--error-spike",
            help="From a time into the run, the candidate fails at a new rate: 2d=6%.",
        ),
    ] = None,
    outcome: Annotated[
        list[str],
        typer.Option("--outcome", help="An outcome on both sides, NAME=RATE (repeatable)."),
    ] = [],  # noqa: B006
    candidate_outcome: Annotated[
        list[str],
        typer.Option("--candidate-outcome", help="Override an outcome on the candidate."),
    ] = [],  # noqa: B006
    rate: Annotated[str, typer.Option("--rate", help="Traffic: 50/s or 3000/m.")] = "50/s",
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same run.")] = 0,
    max_duration: Annotated[
        str | None,
        typer.Option("--max-duration", help="Stop after this long (default 1.5x the plan)."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Run the real controller on a virtual clock against synthetic traffic."""
    from switchover.cli.render_plans import simulation_table
    from switchover.control.simulate import Change, SideModel, Traffic, simulate
    from switchover.core.plan import load_plan, parse_latency_ms, parse_rate, parse_seconds

    source = _read(path)
    plan = load_plan(source, path.name)
    both = _outcomes(outcome, "--outcome")
    cand_out = {**both, **_outcomes(candidate_outcome, "--candidate-outcome")}
    legacy = SideModel(
        parse_latency_ms(legacy_p95, "--legacy-p95"),
        parse_latency_ms(legacy_p50, "--legacy-p50") if legacy_p50 else None,
        parse_rate(legacy_errors, "--legacy-errors"),
        tuple(both.items()),
    )
    candidate = SideModel(
        parse_latency_ms(candidate_p95, "--candidate-p95"),
        parse_latency_ms(candidate_p50, "--candidate-p50") if candidate_p50 else None,
        parse_rate(candidate_errors, "--candidate-errors"),
        tuple(cand_out.items()),
    )
    changes: tuple[Change, ...] = ()
    if error_spike:
        at, _, new_rate = error_spike.partition("=")
        if not new_rate:
            raise ValidationError("--error-spike: write WHEN=RATE, e.g. 2d=6%", field="error_spike")
        spiked = SideModel(
            candidate.p95_ms,
            candidate.p50_ms,
            parse_rate(new_rate, "--error-spike"),
            candidate.outcomes,
        )
        changes = (Change(parse_seconds(at, "--error-spike"), spiked),)
    traffic = Traffic(parse_rate_per_second(rate), legacy, candidate, changes)
    limit = parse_seconds(max_duration, "--max-duration") if max_duration else None

    def live(e: Any) -> None:
        if not as_json:
            render.err_console.print(
                f"[dim]{esc(e.to_dict()['at'])}[/dim] "
                f"{esc(f'{e.action} {e.phase} {e.percentage}%')}"
            )

    result = simulate(plan, source, traffic, seed=seed, max_seconds=limit, on_event=live)
    data = result.to_dict()
    if as_json:
        render.emit_json(data)
        return
    render.console.print(simulation_table(data))
    render.console.print(f"final state: [bold]{esc(result.state)}[/bold]")

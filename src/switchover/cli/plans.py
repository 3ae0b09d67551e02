"""CLI: ``switchover plan …``, the plan verbs (promote, pause, approve, abort) and
``rollback --level tenant|partial|total|data``."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from switchover.cli import render
from switchover.cli.common import (
    By,
    Json,
    Name,
    Reason,
    app_of,
    esc,
    handled,
    run_command,
    who,
)
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
    from switchover.commands import ApplyPlan

    command = ApplyPlan(
        migration=name,
        source=_read(path),
        source_name=path.name,
        replace=replace,
        actor=who(by),
        reason=reason,
    )
    outcome = run_command(ctx, command, migrate=True)
    s = outcome.plan
    assert s is not None
    if as_json:
        render.emit_json(_plan_answer(ctx, outcome))
        return
    if s.phase_index >= 0:  # --replace kept a phase: the handler's answer says which
        render.show_outcome(outcome, as_json, detail=False)
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


def _plan_answer(ctx: typer.Context, outcome: Any) -> dict[str, Any]:
    """A plan command's JSON: the plan (as before), with what changed."""
    return {
        **outcome.plan.to_dict(now=app_of(ctx).clock.now()),
        "message": outcome.message,
        "changes": [c.to_dict() for c in outcome.changes],
    }


def plan_verb(fn_name: str, doc: str) -> Callable[..., None]:
    """A command that hands ``PlanAction(<fn_name>)`` (promote, pause, …) to its handler."""

    @handled
    def command(
        ctx: typer.Context, name: Name, by: By = None, reason: Reason = "", as_json: Json = False
    ) -> None:
        from switchover.commands import PlanAction

        outcome = run_command(
            ctx, PlanAction(migration=name, action=fn_name, actor=who(by), reason=reason)
        )
        if as_json:
            render.emit_json(_plan_answer(ctx, outcome))
        else:
            render.show_outcome(outcome, as_json, detail=False)

    command.__doc__ = doc
    return command


VERBS = {
    "promote": "Enter the next phase now, without waiting for the gates (audited).",
    "pause": "Hold the plan: the controller still judges and alerts, but changes nothing.",
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
    from switchover.commands import Rollback

    command = Rollback(
        migration=name,
        level=level,
        tenant_id=tenant_id,
        target_percentage=target_percentage,
        backup_id=backup_id,
        actor=who(by),
        reason=reason,
    )
    if level != "data":
        outcome = run_command(ctx, command)
    else:
        outcome = _rollback_data(ctx, command, source, yes, as_json)
    if as_json:
        render.emit_json(_rollback_answer(ctx, outcome, level))
        return
    render.show_outcome(outcome, as_json, detail=False)


def _rollback_answer(ctx: typer.Context, outcome: Any, level: str) -> dict[str, Any]:
    now = app_of(ctx).clock.now()
    body = {
        "level": level,
        "migration": outcome.migration.to_dict() if outcome.migration else None,
        "plan": outcome.plan.to_dict(now=now) if outcome.plan else None,
        "tenant": outcome.data.get("tenant"),
        "message": outcome.message,
        "changes": [c.to_dict() for c in outcome.changes],
    }
    if level == "data":
        body["traffic"] = {"level": "total", "migration": body["migration"], "plan": body["plan"]}
        body.update({k: v for k, v in outcome.data.items() if k != "level"})
    return body


def _rollback_data(
    ctx: typer.Context, command: Any, source: str | None, yes: bool, as_json: bool
) -> Any:
    """Confirm with what the backup holds, then the command: traffic to legacy and the
    verified restore, with progress bars."""
    from dataclasses import replace

    from switchover.cli.common import confirm
    from switchover.cli.data import open_source, source_url
    from switchover.cli.progress import progress_bars
    from switchover.data import backup as backups

    if not command.backup_id:
        raise ValidationError(
            "a data rollback needs `backup_id`: list them with 'switchover data backups'",
            field="backup_id",
        )
    app_of(ctx).rollout.get(command.migration)  # a mistyped name: refused, nothing changed
    src = open_source(ctx, source)
    try:
        info = backups.verify(src, command.backup_id)
    finally:
        src.dispose()
    confirm(
        f"Roll {command.migration} back to legacy (percentage 0, master off) and restore "
        f"{info.id} ({info.configs} configs, {info.calls} calls, {info.metrics} metrics)?",
        yes,
    )
    with progress_bars(not as_json) as progress:
        return run_command(ctx, replace(command, source=source_url(ctx, source)), progress=progress)


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


_SCORE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:(?:\u00b1|\+-|\+/-)\s*(\d+(?:\.\d+)?))?\s*$")


def _scores(values: list[str], option: str) -> dict[str, tuple[float, float]]:
    """``csat=4.6`` or ``csat=4.6+-0.8`` (mean, standard deviation; default 1)."""
    from switchover.core.scores import SCORE_NAME, SCORE_NAME_RULE

    out: dict[str, tuple[float, float]] = {}
    for raw in values:
        name, _, spec = raw.partition("=")
        match = _SCORE.match(spec)
        if not SCORE_NAME.match(name.strip()) or match is None:
            raise ValidationError(
                f"{option} {raw!r}: write NAME=MEAN or NAME=MEAN+-SD, e.g. csat=4.6+-0.8 "
                f"(a name of {SCORE_NAME_RULE})",
                field=option,
            )
        out[name.strip()] = (float(match.group(1)), float(match.group(2) or 1.0))
    return out


_OP_PREFIX = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*:(.+)$")


def _split_ops(values: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Values for every operation, and those prefixed ``OP:`` by operation."""
    default: list[str] = []
    per: dict[str, list[str]] = {}
    for raw in values:
        match = _OP_PREFIX.match(raw)
        if match is None:
            default.append(raw)
        else:
            per.setdefault(match.group(1), []).append(match.group(2).strip())
    return default, per


def _opt(help_text: str, name: str) -> Any:
    return typer.Option(name, help=help_text + " Prefix OP: for one operation (repeatable).")


@plan_app.command("simulate")
@handled
def plan_simulate(
    path: PlanFile,
    legacy_p95: Annotated[
        list[str] | None, _opt("Legacy p95 latency (400ms).", "--legacy-p95")
    ] = None,
    candidate_p95: Annotated[
        list[str] | None, _opt("Candidate p95 latency (400ms).", "--candidate-p95")
    ] = None,
    legacy_p50: Annotated[
        list[str] | None, _opt("Legacy p50 (default: p95 / 2).", "--legacy-p50")
    ] = None,
    candidate_p50: Annotated[
        list[str] | None, _opt("Candidate p50 (default: p95 / 2).", "--candidate-p50")
    ] = None,
    legacy_errors: Annotated[
        list[str] | None, _opt("Legacy error rate, e.g. 0.5% (the default).", "--legacy-errors")
    ] = None,
    candidate_errors: Annotated[
        list[str] | None,
        _opt("Candidate error rate, e.g. 0.5% (the default), voice:2%.", "--candidate-errors"),
    ] = None,
    error_spike: Annotated[
        list[str] | None,
        _opt(
            "From a time into the run, the candidate fails at a new rate: 2d=6%.",
            "--error-spike",
        ),
    ] = None,
    outcome: Annotated[
        list[str] | None, _opt("An outcome on both sides, NAME=RATE.", "--outcome")
    ] = None,
    candidate_outcome: Annotated[
        list[str] | None, _opt("Override an outcome on the candidate.", "--candidate-outcome")
    ] = None,
    score: Annotated[
        list[str] | None,
        _opt(
            "A score every call carries on both sides, NAME=MEAN+-SD (normal; SD 1 when "
            "left out), e.g. csat=4.6+-0.8.",
            "--score",
        ),
    ] = None,
    candidate_score: Annotated[
        list[str] | None,
        _opt("Override a score on the candidate, e.g. csat=4.1+-0.9.", "--candidate-score"),
    ] = None,
    rate: Annotated[
        list[str] | None, _opt("Traffic of each operation: 50/s (the default) or 3000/m.", "--rate")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same run.")] = 0,
    max_duration: Annotated[
        str | None,
        typer.Option("--max-duration", help="Stop after this long (default 1.5x the plan)."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Run the real controller on a virtual clock against synthetic traffic, for every
    operation the plan names (options take OP: to set one operation's)."""
    from switchover.cli.render_plans import simulation_table
    from switchover.control.simulate import (
        Change,
        OperationTraffic,
        SideModel,
        Traffic,
        plan_operations,
        simulate,
    )
    from switchover.core.plan import load_plan, parse_latency_ms, parse_rate, parse_seconds

    source = _read(path)
    plan = load_plan(source, path.name)
    options = {
        "--legacy-p95": legacy_p95,
        "--candidate-p95": candidate_p95,
        "--legacy-p50": legacy_p50,
        "--candidate-p50": candidate_p50,
        "--legacy-errors": legacy_errors,
        "--candidate-errors": candidate_errors,
        "--error-spike": error_spike,
        "--outcome": outcome,
        "--candidate-outcome": candidate_outcome,
        "--score": score,
        "--candidate-score": candidate_score,
        "--rate": rate,
    }
    split = {name: _split_ops(values or []) for name, values in options.items()}
    named = [op for _, per in split.values() for op in per]
    valid = plan_operations(plan)
    if plan.operation is not None or valid != ["call"]:
        unknown = sorted({op for op in named if op not in valid})
        if unknown:
            raise ValidationError(
                f"{', '.join(unknown)}: not an operation of plan {plan.name!r}; "
                f"it judges: {', '.join(valid)}",
                field="operation",
            )

    def values(name: str, op: str | None) -> list[str]:
        default, per = split[name]
        return per.get(op, default) if op is not None else default

    def one(name: str, op: str | None, fallback: str | None) -> str | None:
        got = values(name, op) or (values(name, None) if op is not None else [])
        if len(got) > 1:
            where = f" for {op}" if op else ""
            raise ValidationError(f"{name} is given twice{where}", field=name.lstrip("-"))
        return got[0] if got else fallback

    def sides(op: str | None) -> tuple[SideModel, SideModel, tuple[Change, ...], float]:
        both = _outcomes(values("--outcome", None), "--outcome")
        cand_out = {**both, **_outcomes(values("--candidate-outcome", None), "--candidate-outcome")}
        if op is not None:
            own = _outcomes(split["--outcome"][1].get(op, []), "--outcome")
            both = {**both, **own}
            cand_out = {
                **cand_out,
                **own,
                **_outcomes(split["--candidate-outcome"][1].get(op, []), "--candidate-outcome"),
            }
        scored = _scores(values("--score", None), "--score")
        cand_scored = {
            **scored,
            **_scores(values("--candidate-score", None), "--candidate-score"),
        }
        if op is not None:
            own_scores = _scores(split["--score"][1].get(op, []), "--score")
            scored = {**scored, **own_scores}
            cand_scored = {
                **cand_scored,
                **own_scores,
                **_scores(split["--candidate-score"][1].get(op, []), "--candidate-score"),
            }
        p50s = {k: one(f"--{k}-p50", op, None) for k in ("legacy", "candidate")}
        legacy = SideModel(
            parse_latency_ms(one("--legacy-p95", op, "400ms"), "--legacy-p95"),
            parse_latency_ms(p50s["legacy"], "--legacy-p50") if p50s["legacy"] else None,
            parse_rate(one("--legacy-errors", op, "0.5%"), "--legacy-errors"),
            tuple(both.items()),
            scores=tuple((k, m, sd) for k, (m, sd) in scored.items()),
        )
        candidate = SideModel(
            parse_latency_ms(one("--candidate-p95", op, "400ms"), "--candidate-p95"),
            parse_latency_ms(p50s["candidate"], "--candidate-p50") if p50s["candidate"] else None,
            parse_rate(one("--candidate-errors", op, "0.5%"), "--candidate-errors"),
            tuple(cand_out.items()),
            scores=tuple((k, m, sd) for k, (m, sd) in cand_scored.items()),
        )
        changes: tuple[Change, ...] = ()
        spike = one("--error-spike", op, None)
        if spike:
            at, _, new_rate = spike.partition("=")
            if not new_rate:
                raise ValidationError(
                    "--error-spike: write WHEN=RATE, e.g. 2d=6%", field="error_spike"
                )
            spiked = SideModel(
                candidate.p95_ms,
                candidate.p50_ms,
                parse_rate(new_rate, "--error-spike"),
                candidate.outcomes,
                scores=candidate.scores,
            )
            changes = (Change(parse_seconds(at, "--error-spike"), spiked),)
        per_second = parse_rate_per_second(one("--rate", op, "50/s") or "50/s")
        return legacy, candidate, changes, per_second

    legacy, candidate, changes, per_second = sides(None)
    own = tuple(
        OperationTraffic(op, r, lg, c, ch)
        for op in dict.fromkeys(named)
        for lg, c, ch, r in [sides(op)]
    )
    traffic = Traffic(per_second, legacy, candidate, changes, own)
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

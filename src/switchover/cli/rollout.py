"""CLI: ``switchover rollout set`` and the master switch, ``kill`` and ``resume``."""

from __future__ import annotations

from typing import Annotated

import typer

from switchover.cli import render
from switchover.cli.common import (
    By,
    ExpectVersion,
    Json,
    Name,
    Reason,
    handled,
    run_command,
    who,
)

rollout_app = typer.Typer(
    help="Change how much traffic goes to the candidate.", no_args_is_help=True
)


@rollout_app.command("set")
@handled
def rollout_set(
    ctx: typer.Context,
    name: Name,
    percentage: Annotated[
        str, typer.Option("--percentage", "-p", help="Share of callers on the candidate, 0-100.")
    ],
    by: By = None,
    reason: Reason = "",
    expect_version: ExpectVersion = None,
    as_json: Json = False,
) -> None:
    """Set the percentage of callers that go to the candidate (sticky per caller)."""
    from switchover.commands import SetPercentage

    command = SetPercentage(
        migration=name,
        percentage=percentage,
        actor=who(by),
        reason=reason,
        expected_version=expect_version,
    )
    render.show_outcome(run_command(ctx, command), as_json)


@handled
def kill(
    ctx: typer.Context,
    name: Name,
    by: By = None,
    reason: Reason = "",
    expect_version: ExpectVersion = None,
    as_json: Json = False,
) -> None:
    """Master switch off: every call goes to legacy at once; a running plan is paused."""
    from switchover.commands import Kill

    command = Kill(migration=name, actor=who(by), reason=reason, expected_version=expect_version)
    render.show_outcome(run_command(ctx, command), as_json)


@handled
def resume(
    ctx: typer.Context,
    name: Name,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Also let a paused or rolled-back plan advance again (a fresh phase window). "
            "Without it only the master switch comes back on and the plan stays as it is.",
        ),
    ] = False,
    by: By = None,
    reason: Reason = "",
    expect_version: ExpectVersion = None,
    as_json: Json = False,
) -> None:
    """Master switch back on: calls follow the percentage again. Says what it restored."""
    from switchover.commands import Resume

    command = Resume(
        migration=name, plan=plan, actor=who(by), reason=reason, expected_version=expect_version
    )
    render.show_outcome(run_command(ctx, command), as_json)

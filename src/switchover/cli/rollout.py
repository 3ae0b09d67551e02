"""CLI: ``switchover rollout set`` and the master switch, ``kill`` and ``resume``."""

from __future__ import annotations

from typing import Annotated

import typer

from switchover.cli import render
from switchover.cli.common import By, ExpectVersion, Json, Name, Reason, app_of, esc, handled, who

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
    m = app_of(ctx).rollout.set_percentage(
        name, percentage, actor=who(by), reason=reason, expected_version=expect_version
    )
    render.show_migration(m, as_json)


@handled
def kill(
    ctx: typer.Context,
    name: Name,
    by: By = None,
    reason: Reason = "",
    expect_version: ExpectVersion = None,
    as_json: Json = False,
) -> None:
    """Master switch off: every call goes to legacy at once (immediate rollback)."""
    m = app_of(ctx).rollout.kill(
        name, actor=who(by), reason=reason, expected_version=expect_version
    )
    render.show_migration(m, as_json)


@handled
def resume(
    ctx: typer.Context,
    name: Name,
    by: By = None,
    reason: Reason = "",
    expect_version: ExpectVersion = None,
    as_json: Json = False,
) -> None:
    """Master switch back on; a paused or rolled-back plan advances again."""
    a = app_of(ctx)
    current = a.rollout.get(name)
    plan = a.plans.find(name)
    plan_waits = plan is not None and plan.status.value in ("paused", "rolled_back")
    if not current.enabled or not plan_waits:
        current = a.rollout.resume(
            name, actor=who(by), reason=reason, expected_version=expect_version
        )
    if plan_waits:
        plan = a.plans.resume(name, actor=who(by), reason=reason)
        if not as_json:
            render.console.print(
                f"plan {esc(plan.plan.name)} is running again at {esc(plan.phase_name)}"
            )
    render.show_migration(current, as_json)

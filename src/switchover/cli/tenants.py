"""CLI: ``switchover tenant enable|disable|clear|register``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from switchover.cli import render
from switchover.cli.common import (
    By,
    ExpectVersion,
    Json,
    Name,
    Reason,
    esc,
    handled,
    run_command,
    who,
)

tenant_app = typer.Typer(
    help="Force tenants onto one side (allow = candidate, deny = legacy).", no_args_is_help=True
)


def _tenant_command(override: str, doc: str) -> Callable[..., None]:
    @handled
    def command(
        ctx: typer.Context,
        name: Name,
        tenant: Annotated[str, typer.Argument(help="The tenant id.")],
        by: By = None,
        reason: Reason = "",
        expect_version: ExpectVersion = None,
        as_json: Json = False,
    ) -> None:
        from switchover.commands import SetTenant

        command = SetTenant(
            migration=name,
            tenant=tenant,
            override=override,
            actor=who(by),
            reason=reason,
            expected_version=expect_version,
        )
        render.show_outcome(run_command(ctx, command), as_json)

    command.__doc__ = doc
    return command


tenant_app.command("enable")(
    _tenant_command("allow", "Force a tenant onto the candidate, whatever the percentage.")
)
tenant_app.command("disable")(
    _tenant_command("deny", "Force a tenant onto legacy, whatever the percentage.")
)
tenant_app.command("clear")(
    _tenant_command("clear", "Remove a tenant's override: it follows the percentage again.")
)


@tenant_app.command("register")
@handled
def tenant_register(
    ctx: typer.Context,
    name: Name,
    tenants: Annotated[list[str], typer.Argument(help="Tenant ids that exist, for status.")],
    by: By = None,
    reason: Reason = "",
    as_json: Json = False,
) -> None:
    """Tell switchover which tenants exist, so status counts tenants on the candidate."""
    from switchover.commands import RegisterTenants

    command = RegisterTenants(migration=name, tenants=tuple(tenants), actor=who(by), reason=reason)
    outcome = run_command(ctx, command)
    if as_json:
        render.emit_json(dict(outcome.data))
    else:
        render.console.print(esc(outcome.message), highlight=False)

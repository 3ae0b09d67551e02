"""CLI: ``switchover tenant enable|disable|clear|register``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from switchover.cli import render
from switchover.cli.common import By, ExpectVersion, Json, Name, Reason, app_of, handled, who
from switchover.core.migration import Override

tenant_app = typer.Typer(
    help="Force tenants onto one side (allow = candidate, deny = legacy).", no_args_is_help=True
)


def _tenant_command(override: Override | None, doc: str) -> Callable[..., None]:
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
        m = app_of(ctx).rollout.set_tenant(
            name, tenant, override, actor=who(by), reason=reason, expected_version=expect_version
        )
        render.show_migration(m, as_json)

    command.__doc__ = doc
    return command


tenant_app.command("enable")(
    _tenant_command(Override.ALLOW, "Force a tenant onto the candidate, whatever the percentage.")
)
tenant_app.command("disable")(
    _tenant_command(Override.DENY, "Force a tenant onto legacy, whatever the percentage.")
)
tenant_app.command("clear")(
    _tenant_command(None, "Remove a tenant's override: it follows the percentage again.")
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
    added = app_of(ctx).rollout.register_tenants(name, tenants, actor=who(by), reason=reason)
    if as_json:
        render.emit_json({"added": added, "given": len(tenants)})
    else:
        render.console.print(f"{added} new tenant(s) registered ({len(tenants)} given)")

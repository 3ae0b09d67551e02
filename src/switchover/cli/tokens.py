"""CLI: ``switchover token create|list|revoke``."""

from __future__ import annotations

from typing import Annotated

import typer

from switchover.cli import render
from switchover.cli.common import By, Json, app_of, esc, handled, run_command, who

token_app = typer.Typer(help="API tokens and their roles.", no_args_is_help=True)


@token_app.command("create")
@handled
def token_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A name for the token; it becomes the audit actor.")],
    role: Annotated[
        str, typer.Option("--role", help="viewer (read), worker, operator (change), admin.")
    ] = "viewer",
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="If a token of this name exists, replace it (its old value stops working). "
            "Safe to run again, e.g. in a script.",
        ),
    ] = False,
    by: By = None,
    as_json: Json = False,
) -> None:
    """Create an API token. It is shown once; only its hash is stored."""
    from switchover.commands import CreateToken

    command = CreateToken(name=name, role=role, replace=replace, actor=who(by))
    outcome = run_command(ctx, command, migrate=True)
    token = outcome.data["token"]
    if as_json:
        render.emit_json({"name": name, "role": role, "token": token})
    else:
        render.console.print(
            f"token {esc(repr(name))} ({esc(role)}) created; it will not be shown again:"
        )
        print(token)


@token_app.command("list")
@handled
def token_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List tokens (names and roles; never the tokens themselves)."""
    tokens = app_of(ctx).tokens.list()
    rows = [
        {
            "name": t.name,
            "role": t.role,
            "created_at": t.created_at.isoformat(),
            "created_by": t.created_by,
            "revoked": t.revoked_at is not None,
        }
        for t in tokens
    ]
    if as_json:
        render.emit_json(rows)
        return
    render.console.print(render.token_table(rows))


@token_app.command("revoke")
@handled
def token_revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The token's name.")],
    by: By = None,
    as_json: Json = False,
) -> None:
    """Revoke a token: the API refuses it from now on (within 5 s on running servers).
    The last admin token is refused: create another admin first."""
    from switchover.commands import RevokeToken

    run_command(ctx, RevokeToken(name=name, actor=who(by)))
    if as_json:
        render.emit_json({"revoked": name})
    else:
        render.console.print(f"token {esc(repr(name))} revoked")

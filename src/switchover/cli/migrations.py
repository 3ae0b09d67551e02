"""CLI: ``switchover migration create|list|show``."""

from __future__ import annotations

from typing import Annotated

import typer

from switchover.cli import render
from switchover.cli.common import (
    By,
    Json,
    Name,
    Reason,
    app_of,
    handled,
    run_command,
    who,
)

migration_app = typer.Typer(help="Create and inspect migrations.", no_args_is_help=True)


@migration_app.command("create")
@handled
def migration_create(
    ctx: typer.Context,
    name: Name,
    features: Annotated[
        str, typer.Option("--features", help="Comma-separated feature names, e.g. stt,tts.")
    ] = "",
    stickiness: Annotated[
        str,
        typer.Option("--stickiness", help="Context key that keeps a caller on one side."),
    ] = "user_id",
    tenant_key: Annotated[
        str, typer.Option("--tenant-key", help="Context key that names the tenant.")
    ] = "tenant_id",
    description: Annotated[str, typer.Option("--description", help="What moves where.")] = "",
    legacy_label: Annotated[str, typer.Option("--legacy", help="Label of the legacy side.")] = (
        "legacy"
    ),
    candidate_label: Annotated[
        str, typer.Option("--candidate", help="Label of the candidate side.")
    ] = "candidate",
    group: Annotated[
        str | None,
        typer.Option(
            "--group",
            help="Bucketing group hashed with each key (default: the migration's name); give "
            "an Unleash groupId to keep callers on the side Unleash put them.",
        ),
    ] = None,
    by: By = None,
    reason: Reason = "",
    as_json: Json = False,
) -> None:
    """Create a migration: master switch on, 0 %, every feature off."""
    feature_list = [f for f in (x.strip() for x in features.split(",")) if f] if features else []
    from switchover.commands import CreateMigration

    command = CreateMigration(
        migration=name,
        features=tuple(feature_list),
        stickiness=stickiness,
        tenant_key=tenant_key,
        description=description,
        legacy_label=legacy_label,
        candidate_label=candidate_label,
        group=group,
        actor=who(by),
        reason=reason,
    )
    render.show_outcome(run_command(ctx, command, migrate=True), as_json)


@migration_app.command("list")
@handled
def migration_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List every migration."""
    migrations = app_of(ctx).rollout.list()
    if as_json:
        render.emit_json([m.to_dict() for m in migrations])
    elif not migrations:
        render.console.print("no migrations yet: switchover migration create NAME --features stt")
    else:
        render.console.print(render.migration_table(migrations))


@migration_app.command("show")
@handled
def migration_show(ctx: typer.Context, name: Name, as_json: Json = False) -> None:
    """Show one migration in full."""
    render.show_migration(app_of(ctx).rollout.get(name), as_json)

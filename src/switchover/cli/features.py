"""CLI: ``switchover feature enable|disable`` (with ``--percentage``, a feature's own)."""

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
    handled,
    run_command,
    who,
)

feature_app = typer.Typer(help="Switch a migration's features on or off.", no_args_is_help=True)


def _feature_command(on: bool) -> Callable[..., None]:
    @handled
    def command(
        ctx: typer.Context,
        name: Name,
        feature: Annotated[str, typer.Argument(help="The feature, e.g. stt.")],
        percentage: Annotated[
            str | None,
            typer.Option(
                "--percentage",
                help="The feature's own percentage, a cap on the migration's (0-100): its "
                "calls go to the candidate for min(this, the migration's) % of callers, in "
                "the same buckets, so growing either moves nobody back. 'follow' drops the "
                "cap. Left out: unchanged.",
                show_default=False,
            ),
        ] = None,
        by: By = None,
        reason: Reason = "",
        expect_version: ExpectVersion = None,
        as_json: Json = False,
    ) -> None:
        from switchover.commands import SetFeature

        command = SetFeature(
            migration=name,
            feature=feature,
            enabled=on,
            percentage=percentage,
            actor=who(by),
            reason=reason,
            expected_version=expect_version,
        )
        render.show_outcome(run_command(ctx, command), as_json)

    command.__doc__ = (
        "Switch a feature on: its calls follow the percentage and tenant overrides."
        if on
        else "Switch a feature off: all its calls go to legacy."
    )
    return command


feature_app.command("enable")(_feature_command(True))
feature_app.command("disable")(_feature_command(False))

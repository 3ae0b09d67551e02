"""CLI: ``switchover report NAME --html FILE``, the migration's report for stakeholders."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from switchover.cli import render
from switchover.cli.common import Json, Name, app_of, esc, handled
from switchover.errors import ValidationError


@handled
def report(
    ctx: typer.Context,
    name: Name,
    html: Annotated[
        Path,
        typer.Option(
            "--html",
            help="The file to write: one self-contained HTML page (no external assets).",
            dir_okay=False,
        ),
    ],
    since: Annotated[
        str,
        typer.Option("--since", help="The period the report covers, ending now: 90m, 24h, 7d."),
    ] = "7d",
    as_json: Json = False,
) -> None:
    """Write a migration's report: its scorecard, charts, timeline of phases, verdicts and
    changes, the scorecard at each phase change, and its data-migration runs and backups."""
    from switchover.web.report import parse_since, report_html

    period = parse_since(since)
    if not html.parent.is_dir():
        raise ValidationError(
            f"`html`: the folder {str(html.parent)!r} does not exist; create it first",
            field="html",
        )
    text = report_html(app_of(ctx), name, since=period)
    data = text.encode("utf-8")
    # written whole or not at all: a reader never opens half a report
    fd, tmp = tempfile.mkstemp(prefix=f".{html.name}.", dir=html.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, html)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if as_json:
        render.emit_json({"migration": name, "file": str(html), "bytes": len(data), "since": since})
        return
    render.console.print(
        f"wrote the report of {esc(name)} over the last {esc(since)} to {esc(str(html))} "
        f"({len(data) // 1024 + 1} KB)"
    )

"""CLI: `switchover data …` — the v1→v2 agent data migration and the legacy sunset."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from switchover.cli import render
from switchover.cli.common import (
    By,
    Json,
    app_of,
    confirm,
    esc,
    handled,
    run_command,
    state_of,
    who,
)
from switchover.errors import ValidationError

if TYPE_CHECKING:
    from switchover.data.source import Source

data_app = typer.Typer(
    help="Migrate agent data from v1 to v2 (seed 003): dry run, checksummed backups, "
    "validation, resumable batches, restore; and the legacy sunset (seed 004 M5).",
    no_args_is_help=True,
)

SourceUrl = Annotated[
    str | None,
    typer.Option(
        "--source",
        help="The database holding the agent data (SQLAlchemy URL). Default: "
        "$SWITCHOVER_DATA_URL, else the switchover store (--db).",
        show_default=False,
    ),
]
TenantIds = Annotated[
    str | None,
    typer.Option("--tenant-ids", help="Only these tenants, comma-separated (default: all)."),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def source_url(ctx: typer.Context, explicit: str | None) -> str:
    return explicit or state_of(ctx).settings().agent_data_url


def open_source(ctx: typer.Context, explicit: str | None) -> Source:
    from switchover.data.source import Source

    return Source(source_url(ctx, explicit))


def _log(verbose: bool) -> Callable[[str], None]:
    def log(msg: str) -> None:
        if verbose:
            render.err_console.print(f"[dim]{esc(msg)}[/dim]", highlight=False)

    return log


# --- seed-demo ---------------------------------------------------------------------------


@data_app.command("seed-demo")
@handled
def seed_demo_cmd(
    ctx: typer.Context,
    configs: Annotated[int, typer.Option("--configs", help="v1 configs to create.")] = 1000,
    calls: Annotated[int, typer.Option("--calls", help="Calls spread over the configs.")] = 5000,
    tenants: Annotated[
        int | None, typer.Option("--tenants", help="Tenants (default: configs / 20, at least 3).")
    ] = None,
    users: Annotated[int, typer.Option("--users", help="Users with voice settings.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same data.")] = 7,
    source: SourceUrl = None,
    as_json: Json = False,
) -> None:
    """Create seed 003's tables with realistic v1 data, awkward cases included (nulls,
    empty and 50 KB prompts, unicode, orphan tenant ids, duplicate configs)."""
    from switchover.cli.progress import progress_bars
    from switchover.core.clock import SystemClock
    from switchover.data.seed import seed_demo

    src = open_source(ctx, source)
    with progress_bars(not as_json) as progress:
        counts = seed_demo(
            src,
            configs=configs,
            calls=calls,
            tenants=tenants,
            users=users,
            seed=seed,
            now=SystemClock().now(),
            progress=progress,
        )
    if as_json:
        render.emit_json({"source": src.where, **counts})
        return
    render.console.print(
        esc(
            f"seeded {src.where}: {counts['tenants']} tenants, {counts['configs']} v1 configs "
            f"({counts['orphan_configs']} with a missing tenant, {counts['duplicate_configs']} "
            f"duplicated), {counts['calls']} calls, {counts['users']} users' settings"
        )
    )
    render.console.print("next: switchover data migrate --dry-run")


# --- migrate -----------------------------------------------------------------------------


def _enable(ctx: typer.Context, by: str) -> Callable[[str, int, str], dict[str, Any]]:
    def enable(name: str, percentage: int, run_id: str) -> dict[str, Any]:
        from switchover.commands import Resume, SetPercentage

        reason = f"data migration {run_id} completed" if run_id else "agent data already on v2"
        m = app_of(ctx).rollout.get(name)
        if not m.enabled:
            m = run_command(ctx, Resume(migration=name, actor=by, reason=reason)).migration or m
        if m.percentage < percentage:
            command = SetPercentage(migration=name, percentage=percentage, actor=by, reason=reason)
            m = run_command(ctx, command).migration or m
        return {"migration": name, "percentage": m.percentage, "enabled": m.enabled}

    return enable


@data_app.command("migrate")
@handled
def migrate_cmd(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show counts, v1 checks and sample diffs; write nothing."),
    ] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Rows per batch; a checkpoint after each.")
    ] = 100,
    tenant_ids: TenantIds = None,
    skip_backup: Annotated[
        bool, typer.Option("--skip-backup", help="No backup (not recommended; asks to confirm).")
    ] = False,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="Leave v1 rows that fail a critical check (missing tenant or name) on v1 "
            "instead of stopping.",
        ),
    ] = False,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue the run RUN_ID after a crash.")
    ] = None,
    abandon: Annotated[
        str | None,
        typer.Option(
            "--abandon",
            help="Undo the unfinished run RUN_ID instead: restore its backup (checksum "
            "verified) and mark it abandoned, so a new run can start.",
        ),
    ] = None,
    transform: Annotated[
        str | None,
        typer.Option(
            "--transform",
            help="Your own transform, package.module:function(v1_row, migrated_at) -> v2 "
            "fields (see docs/data.md).",
        ),
    ] = None,
    throttle_ms: Annotated[
        int, typer.Option("--throttle-ms", help="Pause between batches, to spare a busy database.")
    ] = 0,
    enable_rollout: Annotated[
        str | None,
        typer.Option(
            "--enable-rollout",
            help="When verified, switch this migration on at --initial-percentage.",
        ),
    ] = None,
    initial_percentage: Annotated[
        int, typer.Option("--initial-percentage", help="With --enable-rollout.")
    ] = 5,
    sample: Annotated[int, typer.Option("--sample", help="Dry run: diffs to show.")] = 3,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each step.")] = False,
    yes: Yes = False,
    by: Annotated[
        str | None,
        typer.Option("--by", help="Who enables the rollout or abandons a run (audit log)."),
    ] = None,
    source: SourceUrl = None,
    as_json: Json = False,
) -> None:
    """Migrate v1 voice-agent configs to v2: backup → validate → transform → catchup →
    outcomes → metrics → verify → (enable rollout). Resumable with --resume RUN_ID;
    undo an unfinished run with --abandon RUN_ID."""
    from switchover.cli.common import who
    from switchover.cli.progress import progress_bars
    from switchover.cli.render_data import preview_view, run_view
    from switchover.core.clock import SystemClock
    from switchover.data.migrate import MigrateOptions, Migrator
    from switchover.data.source import Scope

    if resume and abandon:
        raise ValidationError(
            "--resume and --abandon exclude each other: finish the run, or undo it",
            field="abandon",
        )
    if abandon:
        _abandon(ctx, abandon, source, yes=yes, by=by, as_json=as_json)
        return
    src = open_source(ctx, source)
    options = MigrateOptions(
        batch_size=batch_size,
        tenant_ids=Scope.parse(tenant_ids).to_list(),
        skip_backup=skip_backup,
        skip_invalid=skip_invalid,
        transform=transform,
        throttle_ms=throttle_ms,
        enable_rollout=enable_rollout,
        initial_percentage=initial_percentage,
    )
    if dry_run:
        preview = Migrator(src, SystemClock()).preview(options, samples=sample)
        if as_json:
            render.emit_json(preview.to_dict())
        else:
            for part in preview_view(preview.to_dict()):
                render.console.print(part)
        return
    if enable_rollout:
        app_of(ctx).rollout.get(enable_rollout)  # unknown name: fail before any write
    if skip_backup and not resume:
        render.err_console.print(
            "[yellow]warning:[/yellow] --skip-backup: there will be no backup to restore "
            "with `rollback --level data`"
        )
        confirm("Migrate without a backup?", yes)
    with progress_bars(not as_json) as progress:
        migrator = Migrator(
            src,
            SystemClock(),
            progress=progress,
            enable=_enable(ctx, who(by)),
            log=_log(verbose),
        )
        run = migrator.resume(resume) if resume else migrator.migrate(options)
    if as_json:
        render.emit_json(run.to_dict())
        return
    for part in run_view(run.to_dict()):
        render.console.print(part)


def _abandon(
    ctx: typer.Context, run_id: str, source: str | None, *, yes: bool, by: str | None, as_json: bool
) -> None:
    from switchover.cli.progress import progress_bars
    from switchover.commands import Restore
    from switchover.data.migrate import get_run

    src = open_source(ctx, source)
    try:
        run = get_run(src, run_id)
        where = src.where
    finally:
        src.dispose()
    what = (
        f"restore its backup {run.backup_id} into {where}"
        if run.backup_id
        else "mark it abandoned; it has no backup (--skip-backup), so its changes stay"
    )
    confirm(f"Abandon run {run.id} ({run.status} at step {run.step}) and {what}?", yes)
    command = Restore(
        backup_id=run.backup_id or "",
        run_id=run.id,
        source=source_url(ctx, source),
        actor=who(by),
        reason=f"abandon data migration run {run.id}",
    )
    with progress_bars(not as_json) as progress:
        outcome = run_command(ctx, command, progress=progress)
    if as_json:
        render.emit_json(dict(outcome.data))
        return
    render.console.print(esc(outcome.message), highlight=False)


@data_app.command("runs")
@handled
def runs_cmd(
    ctx: typer.Context,
    run_id: Annotated[str | None, typer.Argument(help="One run, in detail.")] = None,
    source: SourceUrl = None,
    as_json: Json = False,
) -> None:
    """List data migration runs: status, step, counts, backup."""
    from switchover.cli.render_data import run_view
    from switchover.data.migrate import get_run, list_runs

    src = open_source(ctx, source)
    if run_id:
        run = get_run(src, run_id)
        if as_json:
            render.emit_json(run.to_dict())
        else:
            for part in run_view(run.to_dict()):
                render.console.print(part)
        return
    runs = list_runs(src)
    if as_json:
        render.emit_json([r.to_dict() for r in runs])
        return
    from rich.table import Table

    table = Table(title=f"data migration runs in {esc(src.where)}")
    for col in ("run", "status", "step", "configs", "calls", "metrics", "backup", "started"):
        table.add_column(col)
    for r in runs:
        c = r.counts
        table.add_row(
            esc(r.id),
            esc(r.status),
            esc(r.step),
            str(c.configs_migrated),
            str(c.calls_updated),
            str(c.metrics_generated),
            esc(r.backup_id or "-"),
            esc(r.started_at),
        )
    render.console.print(table if runs else "no data migration runs yet")


# --- validate ----------------------------------------------------------------------------


@data_app.command("validate")
@handled
def validate_cmd(
    ctx: typer.Context,
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Repair minor issues and list every change made; holds the data-migration "
            "lock and takes a backup first.",
        ),
    ] = False,
    check: Annotated[
        list[str] | None,
        typer.Option(
            "--check",
            help="Only this check (repeat or comma-separate): record_count, data_integrity, "
            "foreign_keys, schema_version, duplicates, value_constraints.",
        ),
    ] = None,
    tenant_ids: TenantIds = None,
    source: SourceUrl = None,
    as_json: Json = False,
) -> None:
    """Run seed 003's checks; exit 1 when a critical one fails."""
    from switchover.cli.render_data import report_table
    from switchover.data.checks import Checker, parse_checks
    from switchover.data.source import Scope

    src = open_source(ctx, source)
    report = Checker(src, Scope.parse(tenant_ids)).run(parse_checks(check), fix=fix)
    if as_json:
        render.emit_json(report.to_dict())
    else:
        for part in report_table(report.to_dict(), fix=fix):
            render.console.print(part)
    if not report.ok:
        raise typer.Exit(1)


# --- backups and restore -----------------------------------------------------------------


def _age(created: str, now: datetime) -> str:
    from switchover.core.judge import human_duration

    try:
        then = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return "?"
    return human_duration((now - then).total_seconds()) + " ago"


@data_app.command("backups")
@handled
def backups_cmd(ctx: typer.Context, source: SourceUrl = None, as_json: Json = False) -> None:
    """List backups: id, what each was taken before (a run, validate --fix), row counts,
    age, checksum."""
    from switchover.cli.render_data import backups_table
    from switchover.core.clock import SystemClock
    from switchover.data import backup as backups

    src = open_source(ctx, source)
    items = backups.list_backups(src)
    now = SystemClock().now()
    if as_json:
        render.emit_json([{**b.to_dict(), "age": _age(b.created_at, now)} for b in items])
        return
    if not items:
        render.console.print("no backups yet: `switchover data migrate` makes one")
        return
    render.console.print(
        backups_table([{**b.to_dict(), "age": _age(b.created_at, now)} for b in items])
    )


@data_app.command("restore")
@handled
def restore_cmd(
    ctx: typer.Context,
    backup_id: Annotated[str, typer.Argument(help="A backup id from `switchover data backups`.")],
    yes: Yes = False,
    source: SourceUrl = None,
    by: By = None,
    as_json: Json = False,
) -> None:
    """Restore a backup after verifying its checksum, and verify the restored rows.
    Traffic is not touched: 'rollback NAME --level data' also sends it to legacy."""
    from switchover.cli.progress import progress_bars
    from switchover.commands import Restore
    from switchover.data import backup as backups

    src = open_source(ctx, source)
    try:
        info = backups.verify(src, backup_id)
        where = src.where
    finally:
        src.dispose()
    confirm(
        f"Restore {info.id} ({info.configs} configs, {info.calls} calls, {info.metrics} "
        f"metrics) into {where}? Rows it holds are replaced; rows added since are kept.",
        yes,
    )
    command = Restore(backup_id=backup_id, source=source_url(ctx, source), actor=who(by))
    with progress_bars(not as_json) as progress:
        outcome = run_command(ctx, command, progress=progress)
    if as_json:
        render.emit_json(dict(outcome.data))
        return
    render.console.print(esc(outcome.message), highlight=False)


# --- legacy sunset -------------------------------------------------------------------------


@data_app.command("copy-keys")
@handled
def copy_keys_cmd(
    redis_url: Annotated[
        str, typer.Option("--redis", help="Redis URL, e.g. redis://127.0.0.1:6379/0.")
    ],
    from_pattern: Annotated[
        str, typer.Option("--from", help="Keys to copy, a SCAN pattern like 'voice:cache:*'.")
    ],
    to_prefix: Annotated[
        str,
        typer.Option("--to", help="New prefix replacing the pattern's, e.g. 'voice_v2:cache:'."),
    ],
    ttl: Annotated[
        int, typer.Option("--ttl", help="TTL of the copies in seconds; 0 keeps each key's own.")
    ] = 3600,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count and show; copy nothing.")
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite keys that already exist under --to.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Copy cached content between Redis namespaces (SCAN-based, any key type)."""
    from switchover.cli.progress import progress_bars
    from switchover.data.sunset import copy_keys

    with progress_bars(not as_json) as progress:
        report = copy_keys(
            redis_url,
            from_pattern,
            to_prefix,
            ttl=ttl,
            dry_run=dry_run,
            replace=replace,
            progress=progress,
        )
    if as_json:
        render.emit_json(report.to_dict())
        return
    verb = "would copy" if dry_run else "copied"
    render.console.print(
        esc(
            f"scanned {report.scanned} key(s) matching {from_pattern!r}: {verb} {report.copied} "
            f"({report.bytes} bytes), skipped {report.skipped_existing} already under "
            f"{to_prefix!r}, {report.vanished} expired meanwhile"
        )
    )
    for item in report.sample:
        render.console.print(f"  {esc(item['from'])} → {esc(item['to'])}", highlight=False)


@data_app.command("verify-settings")
@handled
def verify_settings_cmd(
    ctx: typer.Context,
    legacy_table: Annotated[
        str, typer.Option("--legacy-table", help="Legacy users' settings table.")
    ] = "user_voice_settings",
    v2_table: Annotated[str, typer.Option("--v2-table", help="v2 settings table.")] = (
        "voice_v2_user_settings"
    ),
    key: Annotated[str, typer.Option("--key", help="The user id column in both.")] = "user_id",
    limit: Annotated[int, typer.Option("--limit", help="Missing ids to list.")] = 100,
    source: SourceUrl = None,
    as_json: Json = False,
) -> None:
    """Check every legacy user's settings exist in v2; exit 1 listing the missing ids."""
    from switchover.data.sunset import verify_settings

    report = verify_settings(
        open_source(ctx, source), legacy_table=legacy_table, v2_table=v2_table, key=key, limit=limit
    )
    if as_json:
        render.emit_json(report.to_dict())
    else:
        mark = "[green]ok[/green]" if report.ok else "[red]MISSING[/red]"
        render.console.print(
            f"{mark}: {report.legacy} legacy users, {report.v2} in v2, "
            f"{report.missing_count} missing"
        )
        for uid in report.missing:
            render.console.print(f"  {esc(uid)}", highlight=False)
        if report.missing_count > len(report.missing):
            render.console.print(f"  … and {report.missing_count - len(report.missing)} more")
    if not report.ok:
        raise typer.Exit(1)


@data_app.command("convert-settings")
@handled
def convert_settings_cmd(
    ctx: typer.Context,
    convert: Annotated[
        str,
        typer.Option(
            "--convert",
            help="Your conversion, package.module:function(legacy_settings) -> v2 settings.",
        ),
    ],
    legacy_table: Annotated[
        str, typer.Option("--legacy-table", help="Legacy users' settings table.")
    ] = "user_voice_settings",
    v2_table: Annotated[str, typer.Option("--v2-table", help="v2 settings table.")] = (
        "voice_v2_user_settings"
    ),
    replace: Annotated[
        bool,
        typer.Option("--replace", help="Overwrite users who already have v2 settings."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Convert and show samples; save nothing.")
    ] = False,
    source: SourceUrl = None,
    as_json: Json = False,
) -> None:
    """Convert legacy user voice settings into v2 and save them (seed 004 M5): a backup of
    both tables first, then the conversion and a verify, in one transaction."""
    from switchover.cli.progress import progress_bars
    from switchover.core.clock import SystemClock
    from switchover.data.settings import convert_settings, load_convert

    fn = load_convert(convert)
    src = open_source(ctx, source)
    with progress_bars(not as_json) as progress:
        report = convert_settings(
            src, fn, now=SystemClock().now(), legacy_table=legacy_table, v2_table=v2_table,
            replace=replace, dry_run=dry_run, progress=progress,
        )  # fmt: skip
    if as_json:
        render.emit_json(report.to_dict())
        return
    verb = "would convert" if dry_run else "converted"
    render.console.print(
        esc(
            f"{report.legacy} legacy users: {verb} {report.converted}, kept "
            f"{report.kept_existing} who already had v2 settings"
            + (f"; backup {report.backup_id}, verified" if report.backup_id else "")
        )
    )
    for sample in report.samples:
        render.console.print(
            f"  {esc(sample['user'])}: {esc(str(sample['before']))} → {esc(str(sample['after']))}",
            highlight=False,
        )


@data_app.command("backup")
@handled
def backup_cmd(
    ctx: typer.Context,
    table: Annotated[
        list[str] | None,
        typer.Option(
            "--table",
            help="A table to back up (repeat). Default: seed 004's settings and metrics "
            "(user_voice_settings, voice_v2_user_settings, voice_agent_metrics).",
        ),
    ] = None,
    source: SourceUrl = None,
    as_json: Json = False,
) -> None:
    """Back up whole tables (any columns and types), checksummed; `data restore` puts
    them back."""
    from switchover.core.clock import SystemClock
    from switchover.data import backup as backups
    from switchover.data.source import Scope

    names = [n.strip() for t in table or () for n in t.split(",") if n.strip()] or [
        "user_voice_settings", "voice_v2_user_settings", "voice_agent_metrics",
    ]  # fmt: skip
    src = open_source(ctx, source)
    src.ensure_own()
    with src.begin() as conn:
        info = backups.create(
            src, conn, Scope(None), now=SystemClock().now(), run_id=None, kind="manual",
            tables=[backups.Selection(n) for n in dict.fromkeys(names)],
        )  # fmt: skip
    if as_json:
        render.emit_json(info.to_dict())
        return
    rows = ", ".join(f"{p.table} {p.rows:,}" for p in info.parts)
    render.console.print(esc(f"backup {info.id}: {rows}; sha256 {info.checksum}"))


@data_app.command("backup-keys")
@handled
def backup_keys_cmd(
    redis_url: Annotated[str, typer.Option("--redis", help="Redis URL, e.g. redis://HOST:6379/0.")],
    pattern: Annotated[
        str, typer.Option("--pattern", help="Keys to back up, e.g. 'voice:cache:*'.")
    ],
    file: Annotated[Path, typer.Option("--file", help="A new file to write the backup to.")],
    as_json: Json = False,
) -> None:
    """Back up cache keys (any Redis type, with their TTLs) to a checksummed file."""
    from switchover.cli.progress import progress_bars
    from switchover.data.keys import backup_keys

    with progress_bars(not as_json) as progress:
        made = backup_keys(redis_url, pattern, file, progress=progress)
    if as_json:
        render.emit_json(made.to_dict())
        return
    render.console.print(
        esc(f"backed up {made.keys} key(s) matching {pattern!r} ({made.bytes} bytes) to {file}")
    )


@data_app.command("restore-keys")
@handled
def restore_keys_cmd(
    redis_url: Annotated[str, typer.Option("--redis", help="Redis URL, e.g. redis://HOST:6379/0.")],
    file: Annotated[Path, typer.Option("--file", help="A file written by `data backup-keys`.")],
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite keys that exist.")] = False,
    as_json: Json = False,
) -> None:
    """Restore keys from a `data backup-keys` file, after checking its checksum."""
    from switchover.data.keys import restore_keys

    out = restore_keys(redis_url, file, replace=replace)
    if as_json:
        render.emit_json(out)
        return
    render.console.print(
        esc(f"restored {out['restored']} key(s); {out['skipped_existing']} existed and were kept")
    )


@data_app.command("delete-keys")
@handled
def delete_keys_cmd(
    pattern: Annotated[str, typer.Argument(help="Keys to delete, e.g. 'voice:cache:*'.")],
    redis_url: Annotated[str, typer.Option("--redis", help="Redis URL, e.g. redis://HOST:6379/0.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count the keys and show some; delete nothing.")
    ] = False,
    yes: Yes = False,
    as_json: Json = False,
) -> None:
    """Clean up a legacy Redis namespace (seed 004 M5): only keys matching PATTERN, found
    with SCAN, counted and confirmed first."""
    from switchover.cli.progress import progress_bars
    from switchover.data.keys import count_keys, delete_keys

    counted = count_keys(redis_url, pattern)
    if dry_run or not counted.matched:
        if as_json:
            render.emit_json(counted.to_dict())
            return
        render.console.print(esc(f"{counted.matched} key(s) match {pattern!r}; deleted nothing"))
        for key in counted.sample:
            render.console.print(f"  {esc(key)}", highlight=False)
        return
    shown = ", ".join(counted.sample) + (" …" if counted.matched > len(counted.sample) else "")
    confirm(f"Delete {counted.matched} key(s) matching {pattern!r} ({shown})?", yes)
    with progress_bars(not as_json) as progress:
        report = delete_keys(redis_url, pattern, progress=progress)
    if as_json:
        render.emit_json(report.to_dict())
        return
    render.console.print(esc(f"deleted {report.deleted} key(s) matching {pattern!r}"))

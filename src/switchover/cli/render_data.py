"""How `switchover data …` shows its results to people (data values escaped: see render)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from switchover.cli.common import esc

_SEVERITY_STYLE = {"critical": "red", "high": "yellow", "medium": "cyan"}


def report_table(report: dict[str, Any], *, fix: bool = False) -> list[Any]:
    table = Table(title="validation")
    for col in ("check", "severity", "result", "details"):
        table.add_column(col)
    for c in report["checks"]:
        style = _SEVERITY_STYLE.get(c["severity"], "")
        result = "[green]pass[/green]" if c["passed"] else f"[{style}]FAIL[/{style}]"
        details = esc(c["message"])
        shown = c["examples"][:3]
        if shown:
            details += "\n" + "\n".join(f"  · {esc(e)}" for e in shown)
        if c["problems"] > len(shown):
            more = c["problems"] - len(shown)
            details += f"\n  … {more} more (--json lists {len(c['examples'])})"
        table.add_row(esc(c["name"]), f"[{style}]{esc(c['severity'])}[/{style}]", result, details)
    parts: list[Any] = [table]
    fixed = [f for c in report["checks"] for f in c.get("fixed", [])]
    if fix:
        if fixed:
            parts.append(f"--fix changed {len(fixed)} value(s):")
            for f in fixed:
                parts.append(
                    f"  {esc(f['table'])} {esc(str(f['id']))} {esc(f['field'])}: "
                    f"{esc(repr(f['before']))} → {esc(repr(f['after']))}"
                    + (f" ({esc(f['why'])})" if f.get("why") else "")
                )
        else:
            parts.append("--fix: nothing to change")
    if report.get("backup_id"):
        parts.append(
            f"backup {esc(report['backup_id'])} taken before the fixes: restore it with "
            f"'switchover data restore {esc(report['backup_id'])}'"
        )
    warnings = report.get("warnings") or []
    if warnings:
        parts.append(f"[yellow]Warnings ({len(warnings)}):[/yellow]")
        parts.extend(f"  - {esc(w)}" for w in warnings)
    summary = f"{report['total']} checks: {report['passed']} passed, {report['failed']} failed"
    parts.append(summary if report["ok"] else f"[red]{summary} (a critical check failed)[/red]")
    return parts


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def preview_view(p: dict[str, Any]) -> list[Any]:
    parts: list[Any] = [
        "[bold]Migration preview (dry run)[/bold]",
        f"Configurations to migrate: {p['configs_to_migrate']:,}",
        f"Calls to update:           {p['calls_to_update']:,}",
        f"Metrics to generate:       {p['metrics_to_generate']:,}",
    ]
    if p.get("columns_to_add"):
        parts.append(
            "voice_agent_configs lacks the v2 columns "
            f"{esc(', '.join(p['columns_to_add']))}: the run adds them (nullable)"
        )
    if p["invalid_configs"]:
        parts.append(
            f"[yellow]{p['invalid_configs']} v1 config(s) fail a critical check and block the "
            "migration (or stay on v1 with --skip-invalid)[/yellow]"
        )
    parts.extend(report_table(p["validation"]))
    for s in p["samples"]:
        table = Table(title=f"config {esc(str(s['id']))}: before → after", show_lines=True)
        table.add_column("v1 (before)", overflow="fold")
        table.add_column("v2 (after)", overflow="fold")
        table.add_row(esc(_json(s["before"])), esc(_json(s["after"])))
        parts.append(table)
    parts.append("[yellow]No changes were made (dry run).[/yellow]")
    return parts


def run_view(run: dict[str, Any]) -> list[Any]:
    c = run["counts"]
    status = run["status"]
    if status == "up_to_date":
        return [
            "nothing to migrate: every config in scope is on v2 with its metrics "
            "(no run started, no backup made)"
        ]
    color = {"completed": "green", "failed": "red"}.get(status, "yellow")
    parts: list[Any] = [
        f"run {esc(run['id'])}: [{color}]{esc(status)}[/{color}] (step {esc(run['step'])})",
        f"  configs migrated: {c['configs_migrated']:,}  calls updated: {c['calls_updated']:,}  "
        f"metrics generated: {c['metrics_generated']:,}"
        + (f"  left on v1: {c['configs_skipped']:,}" if c.get("configs_skipped") else ""),
        f"  backup: {esc(run['backup_id'] or 'none (--skip-backup)')}",
    ]
    if run.get("error"):
        parts.append(f"  [red]error:[/red] {esc(run['error'])}")
        parts.append(f"  resume with: switchover data migrate --resume {esc(run['id'])}")
        parts.append(f"  or undo it:  switchover data migrate --abandon {esc(run['id'])}")
    if run.get("verification"):
        parts.extend(report_table(run["verification"]))
    if run.get("rollout"):
        r = run["rollout"]
        parts.append(f"  rollout {esc(r['migration'])} enabled at {r['percentage']}%")
    return parts


def backups_table(items: list[dict[str, Any]]) -> Table:
    table = Table(title="backups")
    for col in ("#", "backup", "taken", "configs", "calls", "metrics", "tenants", "age", "sha256"):
        table.add_column(col)
    for i, b in enumerate(items, 1):
        tenants = ", ".join(b["tenant_ids"]) if b["tenant_ids"] else "all"
        table.add_row(
            str(i),
            esc(b["id"]),
            esc(b.get("label") or ""),
            f"{b['configs']:,}",
            f"{b['calls']:,}",
            f"{b['metrics']:,}",
            esc(tenants),
            esc(b["age"]),
            esc(b["checksum"][:12]) + "…",
        )
    return table

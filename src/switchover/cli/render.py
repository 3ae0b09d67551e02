"""How the CLI shows results: Rich tables for people, JSON for scripts.

Every value that comes from data (names, reasons, tenants, audit diffs) goes through
``esc``: Rich would read ``[tenant-1]`` or ``[bold]`` in it as markup and drop it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from rich.table import Table

from switchover.cli.common import console, err_console, esc

if TYPE_CHECKING:
    from switchover.commands import Outcome
    from switchover.core.migration import Migration
    from switchover.core.status import RolloutStatus
    from switchover.store.repository import AuditEntry

__all__ = [
    "audit_table",
    "console",
    "emit_json",
    "err_console",
    "esc",
    "metrics_table",
    "migration_detail",
    "migration_table",
    "show_migration",
    "status_panel",
    "token_table",
]


def emit_json(data: Any) -> None:
    import orjson

    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def show_migration(m: Migration, as_json: bool) -> None:
    """A migration after a change: JSON, or its detail table."""
    if as_json:
        emit_json(m.to_dict())
    else:
        console.print(migration_detail(m))


def _features(m: Migration) -> str:
    """``stt=on, tts=on (5 %)``: a feature's own percentage where it has one (the share of
    callers its calls go to the candidate for)."""
    parts = []
    for f, on in sorted(m.features.items()):
        own = f" ({m.feature_percentage(f)} %)" if on and f in m.feature_percentages else ""
        parts.append(f"{f}={'on' if on else 'off'}{own}")
    return ", ".join(parts) or "-"


def migration_table(migrations: list[Migration]) -> Table:
    table = Table(title="migrations")
    for col in ("name", "state", "enabled", "percentage", "features", "overrides", "version"):
        table.add_column(col)
    for m in migrations:
        table.add_row(
            esc(m.name),
            esc(m.state.value),
            "yes" if m.enabled else "[red]KILLED[/red]",
            f"{m.percentage}%",
            esc(_features(m)),
            str(len(m.tenants)),
            str(m.version),
        )
    return table


def migration_detail(m: Migration) -> Table:
    table = Table(title=f"migration {esc(m.name)}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = [
        ("description", m.description or "-"),
        ("sides", f"{m.legacy_label} (legacy) -> {m.candidate_label} (candidate)"),
        ("enabled", "yes" if m.enabled else "no (kill switch)"),
        ("percentage", f"{m.percentage}%"),
        ("features", _features(m)),
        ("tenants allowed", ", ".join(m.allowed_tenants) or "-"),
        ("tenants denied", ", ".join(m.denied_tenants) or "-"),
        ("stickiness", m.stickiness),
        ("tenant key", m.tenant_key),
        ("bucketing group", m.bucketing_group),
        ("state", m.state.value),
        ("version", str(m.version)),
        (
            "updated",
            f"{m.updated_at:%Y-%m-%d %H:%M:%S} UTC by {m.updated_by}" if m.updated_at else "-",
        ),
    ]
    for k, v in rows:
        table.add_row(k, esc(v))
    return table


def status_panel(s: RolloutStatus) -> Table:
    m = s.migration
    table = migration_detail(m)
    table.title = f"{esc(m.name)} rollout status"
    table.add_row("tenants on candidate", f"{s.tenants_on_candidate} / {s.tenants_known}")
    table.add_row("overrides", str(len(m.tenants)))
    if s.last_change:
        lc = s.last_change
        why = f" ({lc['reason']})" if lc.get("reason") else ""
        table.add_row("last change", esc(f"{lc['action']} by {lc['actor']} at {lc['at']}{why}"))
    return table


def _diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    from switchover.core.changes import changed_fields

    if before is None:
        return "created" if after else "-"
    if after is None:
        return "-"
    parts = [
        f"{key}: {_short(old)} -> {_short(new)}" for key, old, new in changed_fields(before, after)
    ]
    return "; ".join(parts) or "no change"


def _short(value: Any) -> str:
    if value is True:
        return "on"
    if value is False:
        return "off"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return "-" if value is None else str(value)


def audit_table(name: str, entries: list[AuditEntry]) -> Table:
    table = Table(title=f"audit log of {esc(name)} (newest first)")
    for col in ("at", "actor", "action", "change", "reason", "version"):
        table.add_column(col)
    for e in entries:
        table.add_row(
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            esc(e.actor),
            esc(e.action),
            esc(_diff(e.before, e.after)),
            esc(e.reason or "-"),
            str(e.version),
        )
    return table


def token_table(rows: list[dict[str, Any]]) -> Table:
    columns = ("name", "role", "created_at", "created_by", "revoked")
    table = Table(title="tokens")
    for col in columns:
        table.add_column(col)
    for r in rows:
        table.add_row(*(esc(str(r[c])) for c in columns))
    return table


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def _ratio(cand: float | None, legacy: float | None) -> str:
    if cand is None or legacy is None or legacy == 0:
        return "-"
    return f"{cand / legacy:.2f}x"


def metrics_table(report: dict[str, Any]) -> Table:
    legacy, cand = report["sides"]["legacy"], report["sides"]["candidate"]
    op = report["operation"] or "all operations"
    state = "enabled" if report["enabled"] else "KILLED"
    table = Table(
        title=esc(
            f"{report['migration']} ({op}): {report['percentage']}% on candidate, {state}\n"
            f"{report['since'][:19]} -> {report['until'][:19]} UTC"
        )
    )
    for col in ("metric", "legacy", "candidate", "candidate / legacy"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    table.add_row("calls", f"{legacy['calls']:,}", f"{cand['calls']:,}", "-")
    table.add_row(
        "error rate",
        _pct(legacy["error_rate"]),
        _pct(cand["error_rate"]),
        _ratio(cand["error_rate"], legacy["error_rate"]),
    )
    table.add_row("fallback rate", "-", _pct(cand["fallback_rate"]), "-")
    table.add_row("total failures", str(legacy["total_failures"]), str(cand["total_failures"]), "-")
    for q in ("p50_ms", "p95_ms", "p99_ms"):
        table.add_row(f"{q[:3]} latency", _ms(legacy[q]), _ms(cand[q]), _ratio(cand[q], legacy[q]))
    if legacy.get("streams") or cand.get("streams"):
        table.add_row("streams", f"{legacy['streams']:,}", f"{cand['streams']:,}", "-")
        for q in ("p50", "p95", "p99"):
            k = f"ttfb_{q}_ms"
            table.add_row(
                f"{q} first chunk", _ms(legacy[k]), _ms(cand[k]), _ratio(cand[k], legacy[k])
            )
    names = sorted(set(legacy["outcome_rates"]) | set(cand["outcome_rates"]))
    for name in names:
        lv, cv = legacy["outcome_rates"].get(name), cand["outcome_rates"].get(name)
        table.add_row(esc(f"{name} rate"), _pct(lv), _pct(cv), _ratio(cv, lv))
    return table


def show_outcome(outcome: Outcome, as_json: bool, *, detail: bool = True) -> None:
    """A change's answer: what it did, each field before → after, notes; then the
    migration. JSON: the migration (as before) with ``message``, ``changes``, ``notes``."""
    if as_json:
        body: dict[str, Any] = outcome.migration.to_dict() if outcome.migration is not None else {}
        body.update(
            message=outcome.message,
            changes=[c.to_dict() for c in outcome.changes],
            notes=list(outcome.notes),
        )
        for key, value in outcome.data.items():
            body.setdefault(key, value)
        emit_json(body)
        return
    console.print(esc(outcome.message), highlight=False)
    for change in outcome.changes:
        console.print(f"  {esc(change)}", highlight=False)
    for note in outcome.notes:
        console.print(f"[dim]{esc(note)}[/dim]", highlight=False)
    if detail and outcome.migration is not None:
        console.print(migration_detail(outcome.migration))

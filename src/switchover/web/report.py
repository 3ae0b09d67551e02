"""A migration's report for stakeholders: one self-contained HTML file.

``switchover report NAME --html FILE`` writes it and the dashboard serves it at
``/migrations/NAME/report``. Everything is inline (styles, the charts as SVG drawn here
on the server), with no script and no external asset, so the file opens from disk, by
mail or from an archive years later. It holds:

- where the migration stands, and the scorecard of now (the controller's judgement);
- the charts of legacy and candidate over the period, with gate thresholds and the
  phase changes, holds and rollbacks marked;
- the timeline: every change from the audit log and every verdict (runs of identical
  ``continue`` verdicts folded), oldest first;
- the scorecard at each phase change: the checks of each verdict that started,
  advanced, completed or rolled back a phase;
- the data-migration runs and backups.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from switchover.bootstrap import App
from switchover.control.scorecard import ScorecardService
from switchover.core.chart import window_for
from switchover.core.timewindow import parse_duration
from switchover.errors import ValidationError
from switchover.metrics.charts import ChartCache
from switchover.web import views

HERE = Path(__file__).parent
CHANGES = ("start", "advance", "complete", "rollback_partial", "rollback_total")
"""Verdicts whose checks the report shows: the scorecard at each phase change."""
MAX_ROWS = 1000
"""The newest audit rows and verdicts read (the store's limit per read)."""

_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(("html",)),
    trim_blocks=True,
    lstrip_blocks=True,
)

SERIES = (
    ("error_rate", "Error rate", "%", 100.0),
    ("p95_ms", "p95 latency", "ms", 1.0),
    ("ttfb_p95_ms", "p95 time to first chunk", "ms", 1.0),
    ("fallback_rate", "Fallback rate", "%", 100.0),
    ("calls", "Calls per step", "", 1.0),
)
COLORS = {"legacy": "#4e79a7", "candidate": "#f28e2b"}
EVENT_COLORS = {"phase": "#2e7d32", "hold": "#b26a00", "rollback": "#c62828", "change": "#667085"}


def parse_since(text: str) -> timedelta:
    """The report's period (``90m``, ``24h``, ``7d``); a ValidationError naming ``since``."""
    try:
        return parse_duration(text, "since")
    except ValidationError:
        raise ValidationError(
            f"`since` {text!r} is not a period up to 31d: write a number and a unit, "
            "for example 90m, 24h or 7d",
            field="since",
        ) from None


def report_html(
    app: App,
    name: str,
    *,
    since: timedelta = timedelta(days=7),
    charts: ChartCache | None = None,
    scores: ScorecardService | None = None,
) -> str:
    """The report of migration ``name`` over the last ``since``, as one HTML document."""
    return _env.get_template("report.html").render(
        report(app, name, since=since, charts=charts, scores=scores)
    )


def report(
    app: App,
    name: str,
    *,
    since: timedelta = timedelta(days=7),
    charts: ChartCache | None = None,
    scores: ScorecardService | None = None,
) -> dict[str, Any]:
    now = app.clock.now()
    start = now - since
    v = views.migration_view(app, name, scores or ScorecardService(app.store, app.clock))
    window = window_for(since.total_seconds())
    cache = charts or ChartCache(app.store, app.clock)
    body = cache.charts(name, window)
    marks = views.chart_marks(app, name, body, None)
    audit = [e for e in app.rollout.audit(name, limit=MAX_ROWS) if e.at >= start]
    verdicts = [
        r for r in (app.plans.verdicts(name, limit=MAX_ROWS) if v["plan"] else []) if r.at >= start
    ]
    gates = views.plan_gates(app.plans.find(name))
    return {
        "name": name,
        "v": v,
        "generated": _when(now),
        "since": _when(start),
        "period": window,
        "svgs": [
            (
                f"{title} ({unit})" if unit else title,
                svg_chart(title, body, key, unit, scale, marks),
            )
            for key, title, unit, scale in SERIES
            if key in body["series"]
        ],
        "totals": body["totals"],
        "timeline": timeline(audit, verdicts),
        "changes": [
            {
                "at": _when(r.at),
                "action": r.action,
                "severity": r.severity,
                "phase": r.phase,
                "summary": r.summary,
                "checks": [
                    views.check_row(c, gates.get(c["name"])) for c in r.data.get("checks", [])
                ],
            }
            for r in sorted(verdicts, key=lambda r: r.at)
            if r.action in CHANGES
        ],
        "data": views.data_view(app, now),
        "truncated": len(verdicts) >= MAX_ROWS or len(audit) >= MAX_ROWS,
    }


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def timeline(audit: list[Any], verdicts: list[Any]) -> list[dict[str, Any]]:
    """Changes and verdicts, oldest first; a run of ``continue`` verdicts in one phase
    is one line with a count."""
    rows: list[dict[str, Any]] = [
        {
            "at": e.at,
            "kind": "change",
            "what": e.action.replace("_", " "),
            "who": e.actor,
            "detail": "; ".join(views.audit_rows([e], e.at)[0]["changes"]),
            "why": e.reason or "",
            "count": 1,
        }
        for e in reversed(audit)  # newest first from the store: same-time rows keep order
    ]
    folded: list[dict[str, Any]] = []
    for r in sorted(verdicts, key=lambda r: r.at):
        last = folded[-1] if folded else None
        if (
            last is not None
            and r.action == "continue"
            and (last["what"], last["phase"]) == (f"verdict: {r.action}", r.phase)
        ):
            last["count"] += 1
            last["until"] = r.at
            continue
        folded.append(
            {
                "at": r.at,
                "kind": "verdict",
                "what": f"verdict: {r.action}",
                "phase": r.phase,
                "who": r.actor,
                "detail": f"{r.severity} · {r.phase}",
                "why": r.summary,
                "count": 1,
                "action": r.action,
            }
        )
    out = sorted(rows + folded, key=lambda r: r["at"])
    for r in out:
        r["when"] = _when(r["at"])
        if "until" in r:
            r["until"] = _when(r["until"])
    return out


# --- charts as SVG -------------------------------------------------------------------------

W, H = 560, 190
LEFT, RIGHT, TOP, BOTTOM = 52, 10, 12, 26


def _fmt(v: float, unit: str) -> str:
    if unit == "%":
        return f"{v:.1f}%" if abs(v) < 10 else f"{v:.0f}%"
    if unit == "ms":
        return f"{v / 1000:.1f}s" if v >= 1000 else f"{v:.0f}"
    return f"{v:,.0f}"


def svg_chart(
    title: str,
    body: dict[str, Any],
    key: str,
    unit: str,
    scale: float,
    marks: dict[str, Any],
) -> Markup:
    """Legacy and candidate over the window as one inline ``<svg>``."""
    t = body["t"]
    x0, x1 = body["since"], body["until"]
    sides = {
        side: [None if v is None else v * scale for v in body["series"][key].get(side, [])]
        for side in COLORS
    }
    lines = [
        {"value": m["value"] * scale, "label": m["label"]}
        for m in marks.get("thresholds", [])
        if m["chart"] == key
    ]
    top = max([v for vs in sides.values() for v in vs if v is not None] + [0.0])
    top = max([top, *(m["value"] * 1.15 for m in lines)])
    top = top * 1.05 if top > 0 else (1.0 if unit == "%" else 10.0)
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(s: float) -> float:
        return LEFT + (s - x0) / max(1.0, x1 - x0) * pw

    def y(v: float) -> float:
        return TOP + ph - v / top * ph

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" '
        f'class="chart" data-chart="{escape(key)}"><title>{escape(title)}</title>',
        f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="#fff" stroke="#e3e6eb"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        v = top / 1.05 * frac
        parts.append(
            f'<text x="{LEFT - 4}" y="{y(v) + 4:.1f}" text-anchor="end" class="axis">'
            f"{escape(_fmt(v, unit))}</text>"
        )
    for s, anchor in ((x0, "start"), (x1, "end")):
        label = datetime.fromtimestamp(s, UTC).strftime("%m-%d %H:%M")
        parts.append(
            f'<text x="{x(s):.1f}" y="{H - 8}" text-anchor="{anchor}" class="axis">{label}</text>'
        )
    for m in lines:
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y(m["value"]):.1f}" y2="{y(m["value"]):.1f}"'
            ' stroke="#c62828" stroke-dasharray="6 4" class="threshold"/>'
            f'<text x="{LEFT + pw - 4}" y="{y(m["value"]) - 3:.1f}" text-anchor="end" '
            f'class="mark" fill="#c62828">{escape(m["label"])}</text>'
        )
    for ev in marks.get("events", []):
        ex = x(ev["t"])
        color = EVENT_COLORS.get(ev["kind"], "#667085")
        parts.append(
            f'<line x1="{ex:.1f}" x2="{ex:.1f}" y1="{TOP}" y2="{TOP + ph}" stroke="{color}" '
            f'stroke-dasharray="2 3" class="event {escape(ev["kind"])}"/>'
            f'<text x="{ex + 3:.1f}" y="{TOP + 10}" class="mark" fill="{color}">'
            f"{escape(ev['label'])}</text>"
        )
    step = body["step_s"]
    for side, values in sides.items():
        for run in _runs(t, values):
            points = " ".join(f"{x(s + step / 2):.1f},{y(v):.1f}" for s, v in run)
            if len(run) == 1:
                ((s, v),) = run
                parts.append(
                    f'<circle cx="{x(s + step / 2):.1f}" cy="{y(v):.1f}" r="2" '
                    f'fill="{COLORS[side]}" class="{side}"/>'
                )
            else:
                parts.append(
                    f'<polyline points="{points}" fill="none" stroke="{COLORS[side]}" '
                    f'stroke-width="2" class="{side}"/>'
                )
    if not any(v is not None for vs in sides.values() for v in vs):
        parts.append(
            f'<text x="{LEFT + pw / 2}" y="{TOP + ph / 2}" text-anchor="middle" '
            'class="nodata">No data</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _runs(t: list[int], values: list[float | None]) -> list[list[tuple[int, float]]]:
    """Consecutive points with a value: a gap in the data is a gap in the line."""
    runs: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    for s, v in zip(t, values, strict=False):
        if v is None or not math.isfinite(v):
            if current:
                runs.append(current)
            current = []
        else:
            current.append((s, v))
    if current:
        runs.append(current)
    return runs

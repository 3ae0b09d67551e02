"""The stakeholders' report opened from disk in Chromium, with nothing fetched, at 1280
and 390 px (screenshots of both)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from test_dashboard_layout_browser import OVERFLOW

from switchover.bootstrap import bootstrap
from switchover.core.clock import ManualClock
from switchover.settings import Settings
from switchover.web.report import report_html

NAME = "voice_v2"
PLAN = """\
plan: reported
interval: 1m
window: 10m
recent: 2m
min_samples: 30
guardrails: ["error_rate < 3%"]
phases:
  - {name: canary, percentage: 20, duration: 30m, gates: ["p95 < 900ms"]}
  - {name: full, percentage: 100, duration: 30m}
"""


def write_report(tmp_path: Path) -> Path:
    clock = ManualClock()
    app = bootstrap(
        Settings(database_url=f"sqlite:///{tmp_path / 'r.db'}"), clock=clock, migrate=True
    )
    try:
        app.rollout.create(NAME, features=["stt"], actor="seed", description="report test")
        app.plans.apply(NAME, PLAN, "reported.yaml", actor="alice")
        controller = app.controller()
        controller.tick()
        for minute in range(12):
            broken = minute >= 8
            now = clock.now().timestamp()
            app.metrics.ingest(
                [
                    {
                        "migration": NAME,
                        "operation": "call",
                        "side": side,
                        "latency_ms": 300.0 + (i % 5) * 20,
                        "ok": not (side == "candidate" and broken and i % 3 == 0),
                        "error_type": "Boom"
                        if broken and side == "candidate" and i % 3 == 0
                        else None,
                        "at": now + i * 59.0 / n,
                    }
                    for side, n in (("legacy", 160), ("candidate", 40))
                    for i in range(n)
                ]
            )
            clock.advance(60)
            controller.tick()
        out = tmp_path / "report.html"
        out.write_text(report_html(app, NAME, since=timedelta(hours=1)))
        return out
    finally:
        app.close()


def test_the_report_opens_from_disk_and_reads_at_both_widths(
    browser: Any, tmp_path: Path, shots: Path
) -> None:
    report = write_report(tmp_path)
    for width in (1280, 390):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        asked: list[str] = []
        errors: list[str] = []
        page.on("request", lambda r, seen=asked: seen.append(r.url))
        page.on("console", lambda m, seen=errors: m.type == "error" and seen.append(m.text))
        page.goto(report.as_uri())
        assert asked == [report.as_uri()], asked  # nothing but the file itself
        assert errors == []
        charts = page.locator("svg.chart")
        assert charts.count() >= 4
        box = charts.first.bounding_box()
        assert box is not None and 150 < box["width"] <= width
        assert page.locator("svg.chart polyline.candidate").count() >= 4
        assert page.locator("[data-change=rollback_partial]").is_visible()
        assert page.locator("tr[data-kind=verdict]").count() >= 2
        found = page.evaluate(OVERFLOW.replace("main *", "main *:not(svg *)"))
        assert found["scroll"] <= width and found["wide"] == [], found
        page.screenshot(path=str(shots / f"report-{width}.png"), full_page=True)
        context.close()

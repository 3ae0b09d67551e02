"""Issue 20 in Chromium: charts sized right at first paint, at every width and after a
resize; thresholds, markers and "No data yet" drawn; the page's order; 390 px without
horizontal overflow; verdicts folded and opened. Screenshots at 1280 and 390 px."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_dashboard_browser import Watch, sign_in

NAME = "voice_v2"
QUIET = "quiet_one"
PLAN = """\
plan: layout
interval: 1m
window: 10m
recent: 2m
min_samples: 20
guardrails: ["error_rate < 3%"]
phases:
  - {name: canary, percentage: 20, duration: 30m, gates: ["p95 < 900ms"]}
  - {name: full, percentage: 100, duration: 30m}
"""
THRESHOLD_RGB = (0xC6, 0x28, 0x28)
PHASE_RGB = (0x2E, 0x7D, 0x32)

SIZES = """() => [...document.querySelectorAll('[data-chart]')].map(box => {
  const c = box.querySelector('canvas');
  const r = box.getBoundingClientRect();
  return {key: box.dataset.chart, box: box.clientWidth,
          canvas: c ? c.getBoundingClientRect().width : -1,
          left: r.left, right: r.right, top: r.top, bottom: r.bottom};
})"""
OVERFLOW = """() => {
  const w = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('main *')]
    .filter(e => e.getClientRects().length && e.getBoundingClientRect().right > w + 1)
    .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));
  const cards = [...document.querySelectorAll('.card')]
    .filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.id || c.className);
  return {width: w, scroll: document.documentElement.scrollWidth, wide: wide.slice(0, 5), cards};
}"""


def seed(live: Any) -> dict[str, str]:
    a = live.app
    a.rollout.create(NAME, features=["stt"], actor="seed", description="layout test")
    a.plans.apply(NAME, PLAN, "layout.yaml", actor="alice")
    controller = a.controller()
    controller.tick()  # the canary starts: a phase change on the time axis
    for minute in range(8):
        now = a.clock.now().timestamp()
        a.metrics.ingest(
            [
                {
                    "migration": NAME,
                    "operation": "call",
                    "side": side,
                    "latency_ms": 300.0 + (i % 5) * 20,
                    "ok": not (side == "candidate" and i % 10 == 0),
                    "error_type": "Boom" if side == "candidate" and i % 10 == 0 else None,
                    "at": now + i * 59.0 / n,
                }
                for side, n in (("legacy", 80), ("candidate", 20))
                for i in range(n)
            ]
        )
        a.clock.advance(60)
        if minute < 5:
            controller.tick()
    # legacy's calls only: the candidate has none yet
    a.rollout.create(QUIET, features=["stt"], actor="seed")
    a.metrics.ingest(
        [
            {"migration": QUIET, "operation": "call", "side": "legacy", "latency_ms": 200.0}
            for _ in range(30)
        ]
    )
    return {
        role: a.tokens.create(f"{role}-web", role, actor="test") for role in ("viewer", "operator")
    }


def pixels(page: Any, chart: str, rgb: tuple[int, int, int]) -> int:
    return page.evaluate(
        """([chart, rgb]) => {
            const c = document.querySelector(`[data-chart="${chart}"] canvas`);
            const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4) {
                if (Math.abs(d[i] - rgb[0]) < 16 && Math.abs(d[i + 1] - rgb[1]) < 16
                    && Math.abs(d[i + 2] - rgb[2]) < 16 && d[i + 3] > 150) n++;
            }
            return n;
        }""",
        [chart, list(rgb)],
    )


def assert_fitted(page: Any) -> None:
    sizes = page.evaluate(SIZES)
    assert len(sizes) >= 4, sizes
    for s in sizes:
        assert s["canvas"] > 100 and abs(s["canvas"] - s["box"]) <= 1, s
    # no chart lies on another
    for i, a in enumerate(sizes):
        for b in sizes[i + 1 :]:
            apart = (
                a["right"] <= b["left"] + 1
                or b["right"] <= a["left"] + 1
                or a["bottom"] <= b["top"] + 1
                or b["bottom"] <= a["top"] + 1
            )
            assert apart, (a, b)


def test_charts_fit_their_boxes_at_first_paint_at_every_width_and_after_a_resize(
    browser: Any, live: Any, shots: Path
) -> None:
    tokens = seed(live)
    for width in (1280, 1024, 390):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        watch = Watch(page, live.base)
        sign_in(page, live.base, tokens["operator"], f"/migrations/{NAME}")
        page.wait_for_selector("#charts[data-loaded=true]")
        assert_fitted(page)
        # right at first paint: the observer never had to correct a size
        assert page.evaluate("window.switchoverCharts.resized") == 0
        if width in (1280, 390):
            page.screenshot(path=str(shots / f"scorecard-{width}.png"), full_page=True)
        page.set_viewport_size({"width": 760 if width != 390 else 600, "height": 900})
        page.wait_for_function(
            """() => [...document.querySelectorAll('[data-chart]')].every(b =>
                Math.abs(b.querySelector('canvas').getBoundingClientRect().width
                         - b.clientWidth) <= 1)""",
            timeout=10_000,
        )
        assert_fitted(page)
        assert watch.errors == [], watch.errors
        context.close()


def test_thresholds_markers_order_and_the_narrow_page(browser: Any, live: Any, shots: Path) -> None:
    tokens = seed(live)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch = Watch(page, live.base)
    sign_in(page, live.base, tokens["operator"], f"/migrations/{NAME}")
    page.wait_for_selector("#charts[data-loaded=true]")
    # the plan's judging window, its gate as a line, the canary's start as a marker
    assert page.input_value("[data-chart-window]") == "10m"
    assert pixels(page, "error_rate", THRESHOLD_RGB) > 30
    assert pixels(page, "p95_ms", THRESHOLD_RGB) > 30
    assert pixels(page, "fallback_rate", THRESHOLD_RGB) == 0
    last = page.evaluate("window.switchoverCharts.last")
    assert [e["kind"] for e in last["events"]] == ["phase"]
    assert pixels(page, "calls", PHASE_RGB) > 10

    # status and scorecard, charts, plan, verdicts, audit, data; controls folded
    tops = page.evaluate(
        """() => ['[data-scorecard]', '#charts', '#panel-plan', '#panel-verdicts',
                  '#panel-audit', '#panel-data'].map(s =>
                  document.querySelector(s).getBoundingClientRect().top)"""
    )
    assert tops == sorted(tops), tops
    assert tops[1] < 900, "the charts begin on the first screen"
    assert page.locator("#controls").get_attribute("open") is None
    assert page.locator("[data-control=demo_break]").count() == 0
    assert page.locator("[data-scorecard] [data-check='error_rate < 3%']").count() == 1

    # five continue verdicts fold into one line, opened to its checks
    folded = page.locator("[data-verdict=continue][data-count]").first
    assert int(folded.get_attribute("data-count") or 0) >= 3
    folded.locator("summary").click()
    assert folded.locator("[data-verdict-checks] [data-check='error_rate < 3%']").is_visible()
    page.screenshot(path=str(shots / "verdicts-1280.png"), full_page=True)

    # a side without calls says so, instead of an empty frame
    page.goto(f"{live.base}/migrations/{QUIET}")
    page.wait_for_selector("#charts[data-loaded=true]")
    nodata = page.locator("[data-chart=error_rate] .nodata")
    assert nodata.is_visible() and nodata.inner_text() == "No data yet: candidate"
    assert page.input_value("[data-chart-window]") == "1h"  # no plan
    assert watch.errors == [], watch.errors
    context.close()

    narrow = browser.new_context(viewport={"width": 390, "height": 844})
    page = narrow.new_page()
    sign_in(page, live.base, tokens["operator"], "/")
    for path in ("/", f"/migrations/{NAME}"):
        page.goto(live.base + path)
        if path != "/":
            page.wait_for_selector("#charts[data-loaded=true]")
            page.click("#controls > summary")
            page.locator("[data-verdict=continue] summary").first.click()
        found = page.evaluate(OVERFLOW)
        assert found["scroll"] <= 390 and found["wide"] == [] and found["cards"] == [], found
    page.screenshot(path=str(shots / "verdicts-390.png"), full_page=True)
    narrow.close()

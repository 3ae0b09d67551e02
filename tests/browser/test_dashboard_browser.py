"""The dashboard in a real browser: clean loads, charts from store data, controls, roles."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from switchover.core.migration import Override

NAME = "voice_v2"
PLAN = """\
plan: browser
interval: 1m
phases:
  - {name: canary, percentage: 5, features: [stt], duration: 10m}
  - {name: ramp, percentage: 25, duration: 10m}
  - {name: full, percentage: 100, duration: 10m}
"""
CANDIDATE_RGB = (0xF2, 0x8E, 0x2B)


def seed(live: Any) -> dict[str, str]:
    a = live.app
    a.rollout.create(NAME, features=["stt", "tts"], actor="seed", description="browser test")
    a.plans.apply(NAME, PLAN, "browser.yaml", actor="alice")
    a.plans.promote(NAME, actor="alice", reason="start the canary")
    a.rollout.set_tenant(NAME, "tenant-vip", Override.ALLOW, actor="alice")
    now = a.clock.now().timestamp()
    a.metrics.ingest(
        [
            {
                "migration": NAME,
                "operation": op,
                "side": side,
                "latency_ms": (300.0 if side == "legacy" else 240.0) + (i % 7) * 10,
                "ok": i % 25 != 0,
                "error_type": None if i % 25 else "Timeout",
                "fallback": side == "candidate" and i % 25 == 0,
                "outcome": {"booked": 1.0} if i % 3 == 0 else {},
                "at": now - 1800 + i * 3,
            }
            for i in range(600)
            for op in ("stt", "tts")
            for side in ("legacy", "candidate")
        ]
    )
    return {
        role: a.tokens.create(f"{role}-web", role, actor="test") for role in ("viewer", "operator")
    }


class Watch:
    """Console errors, uncaught exceptions and any request that leaves this machine."""

    def __init__(self, page: Any, base: str) -> None:
        self.errors: list[str] = []
        self.outside: list[str] = []
        host = urlparse(base).netloc
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self._request(r.url, host))

    def _request(self, url: str, host: str) -> None:
        if urlparse(url).netloc not in (host, ""):
            self.outside.append(url)


def sign_in(page: Any, base: str, token: str, next_path: str = "/") -> None:
    page.goto(f"{base}{next_path}")
    assert "/login" in page.url
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{next_path}")


def candidate_pixels(page: Any, chart: str) -> int:
    """Pixels of the candidate's line colour on one chart's canvas."""
    return page.evaluate(
        """([chart, rgb]) => {
            const c = document.querySelector(`[data-chart="${chart}"] canvas`);
            const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4) {
                if (Math.abs(d[i] - rgb[0]) < 12 && Math.abs(d[i + 1] - rgb[1]) < 12
                    && Math.abs(d[i + 2] - rgb[2]) < 12 && d[i + 3] > 200) n++;
            }
            return n;
        }""",
        [chart, list(CANDIDATE_RGB)],
    )


def test_pages_load_clean_and_charts_draw_the_store_data(
    browser: Any, live: Any, shots: Path
) -> None:
    tokens = seed(live)
    for width in (1280, 390):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        watch = Watch(page, live.base)
        sign_in(page, live.base, tokens["operator"])
        row = page.locator(f"tr[data-migration={NAME}]")
        assert "5 %" in row.inner_text() and "canary" in row.inner_text()
        page.screenshot(path=str(shots / f"migrations-{width}.png"), full_page=True)

        page.click(f"a[href='/migrations/{NAME}']")
        page.wait_for_selector("#charts[data-loaded=true]")
        for chart in ("error_rate", "p95_ms", "fallback_rate", "calls", "outcome:booked"):
            box = page.locator(f"[data-chart='{chart}']")
            assert int(box.get_attribute("data-points") or 0) > 0, chart
        # the line is drawn, and its numbers are the store's
        assert candidate_pixels(page, "p95_ms") > 50
        totals = page.evaluate("window.switchoverCharts.last.totals")
        assert totals["legacy"]["calls"] == 1200 and totals["candidate"]["calls"] == 1200
        assert "2400 calls in the window" in page.inner_text("[data-chart-status]")
        current = page.locator("[data-timeline] [aria-current=step]")
        assert current.get_attribute("data-phase") == "canary"
        assert page.locator("[data-tenant='tenant-vip']").count() == 1
        page.screenshot(path=str(shots / f"migration-{width}.png"), full_page=True)

        assert watch.errors == [], watch.errors
        assert watch.outside == [], watch.outside
        context.close()
    for name in ("migrations", "migration"):
        for width in (1280, 390):
            assert (shots / f"{name}-{width}.png").stat().st_size > 10_000


def test_operator_sets_the_percentage_and_the_audit_log_shows_it(browser: Any, live: Any) -> None:
    tokens = seed(live)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = Watch(page, live.base)
    sign_in(page, live.base, tokens["operator"], f"/migrations/{NAME}")

    # the controls stay folded until the operator opens them
    assert page.locator("#controls").get_attribute("open") is None
    assert not page.locator("form[data-control=percentage]").is_visible()
    page.click("#controls > summary")
    form = page.locator("form[data-control=percentage]")
    form.locator("input[name=percentage]").fill("25")
    form.locator("input[name=reason]").fill("ramp from the browser")
    form.locator("button[type=submit]").click()
    dialog = page.locator("dialog[data-confirm]")
    dialog.wait_for()
    assert "5 % → 25 %" in dialog.inner_text()
    assert live.app.rollout.get(NAME).percentage == 5  # not before the confirmation

    dialog.locator("[data-apply]").click()
    page.wait_for_selector("[data-flash]")
    assert "25 %" in page.inner_text("[data-flash]")
    assert page.locator("dialog[data-confirm]").count() == 0
    assert live.app.rollout.get(NAME).percentage == 25
    # the page refreshes its panels after the change: no reload
    page.wait_for_selector("[data-percentage='25']")
    audit = page.locator("[data-audit] tbody tr").first
    audit.wait_for()
    text = audit.inner_text()
    assert "operator-web" in text and "percentage: 5 → 25" in text
    assert "ramp from the browser" in text

    # bad input: the dialog names the problem and nothing changes
    page.evaluate(
        "document.querySelector('form[data-control=percentage] input[name=percentage]')"
        ".removeAttribute('max')"
    )
    form.locator("input[name=percentage]").fill("150")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("dialog[data-confirm] [role=alert]")
    # the error names the field as the form labels it
    assert "Candidate share" in page.inner_text("dialog[data-confirm] [role=alert]")
    assert live.app.rollout.get(NAME).percentage == 25
    assert [e for e in watch.errors if "422" not in e] == []


def test_viewer_sees_no_controls_and_is_refused_anyway(browser: Any, live: Any) -> None:
    tokens = seed(live)
    page = browser.new_page(viewport={"width": 390, "height": 800})
    sign_in(page, live.base, tokens["viewer"], f"/migrations/{NAME}")
    page.wait_for_selector("#charts[data-loaded=true]")
    assert page.locator("#controls").count() == 0
    assert page.locator("[data-control]").count() == 0
    assert "viewer" in page.inner_text("header.top")

    # the same session, sending the change the page would have sent: refused
    answer = page.request.post(
        f"{live.base}/ui/migrations/{NAME}/apply",
        form={"action": "percentage", "percentage": "100"},
        headers={"HX-Request": "true"},
    )
    assert answer.status == 403
    assert live.app.rollout.get(NAME).percentage == 5


def test_a_page_on_another_site_cannot_sign_the_browser_in(browser: Any, live: Any) -> None:
    """Login CSRF: another origin auto-submits a sign-in form with the attacker's token;
    the victim's browser must not end up signed in as the attacker."""
    import http.server
    import threading

    tokens = seed(live)
    evil = (
        "<html><body><form id=f method=post action='" + live.base + "/login'>"
        "<input name=token value='" + tokens["operator"] + "'><input name=next value='/'>"
        "</form><script>document.getElementById('f').submit()</script></body></html>"
    ).encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(evil)

        def log_message(self, *args: Any) -> None:
            return None

    other = http.server.HTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{other.server_address[1]}/")
        page.wait_for_load_state("networkidle")
        assert "another site" in page.content() or "did not come from" in page.content()
        cookies = {c["name"] for c in context.cookies(live.base)}
        assert "switchover_session" not in cookies
        page.goto(f"{live.base}/")
        assert "/login" in page.url  # still signed out
        context.close()
    finally:
        other.shutdown()


def test_a_ttfb_chart_is_drawn_when_the_window_has_streams(browser: Any, live: Any) -> None:
    tokens = seed(live)  # stt and tts: no streams
    a = live.app
    now = a.clock.now().timestamp()
    a.metrics.ingest(
        [
            {
                "migration": NAME,
                "operation": "llm",
                "side": side,
                "latency_ms": 900.0,
                "first_chunk_ms": (150.0 if side == "legacy" else 400.0) + (i % 5) * 10,
                "at": now - 1800 + i * 3,
            }
            for i in range(600)
            for side in ("legacy", "candidate")
        ]
    )
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch = Watch(page, live.base)
    sign_in(page, live.base, tokens["viewer"])
    page.goto(f"{live.base}/migrations/{NAME}")
    page.wait_for_selector("#charts[data-loaded=true]")
    box = page.locator("[data-chart='ttfb_p95_ms']")
    assert int(box.get_attribute("data-points") or 0) > 0
    assert "time to first chunk" in box.inner_text()
    assert candidate_pixels(page, "ttfb_p95_ms") > 50
    totals = page.evaluate("window.switchoverCharts.last.totals")
    assert 430 <= totals["candidate"]["ttfb_p95_ms"] <= 450
    # an operation without streams: the chart goes away
    page.select_option("[data-chart-operation]", "stt")
    page.wait_for_function(
        "() => !document.querySelector(\"[data-chart='ttfb_p95_ms']\")", timeout=10_000
    )
    assert watch.errors == [], watch.errors
    context.close()

"""``switchover report NAME --html FILE`` and ``/migrations/NAME/report``, on both engines.

The store is seeded through the services on a clock that ends a few minutes ago (the
CLI reads the real clock): a plan starts, continues, the candidate breaks and the
controller rolls it back. The report must hold the timeline, the charts as inline SVG,
the scorecard at each phase change and the data section, with nothing fetched from
anywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dashboard_forms import sign_in_form
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from switchover.api.app import create_app
from switchover.bootstrap import App
from switchover.core.clock import ManualClock

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


def run(db: str | None, *args: str) -> Any:
    """The real CLI, in process (a subprocess per call would double the test's time)."""
    from switchover.cli.main import app as cli

    result = CliRunner().invoke(cli, [*(["--db", db] if db else []), *args])
    return result


def ok_json(db: str, *args: str) -> Any:
    result = run(db, *args, "--json")
    assert result.exit_code == 0, (args, result.output)
    return json.loads(result.stdout)


EXTERNAL = re.compile(r"""(src|href)\s*=\s*["']?(https?:)?//|<script|<link|@import|url\(""", re.I)


@pytest.fixture
def clock() -> ManualClock:
    """Forty minutes ago, so the CLI's real clock finds the rows in its period."""
    start = datetime.now(UTC) - timedelta(minutes=40)
    return ManualClock(start.replace(second=0, microsecond=0))


def seed_rollout(app: App, clock: ManualClock) -> None:
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
                    "error_type": "Boom" if side == "candidate" and broken and i % 3 == 0 else None,
                    "at": now + i * 59.0 / n,
                }
                for side, n in (("legacy", 160), ("candidate", 40))
                for i in range(n)
            ]
        )
        clock.advance(60)
        controller.tick()


def test_the_cli_writes_one_self_contained_file(
    app: App, clock: ManualClock, db_url: str, tmp_path: Path
) -> None:
    seed_rollout(app, clock)
    assert app.plans.get(NAME).status.value == "rolled_back"
    out = tmp_path / "voice_v2.html"
    said = ok_json(db_url, "report", NAME, "--since", "1h", "--html", str(out))
    assert said["file"] == str(out) and said["bytes"] == out.stat().st_size
    html = out.read_text()
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    # the timeline: the changes from the audit and the verdicts, continues folded
    for what in ("plan apply", "advance", "rollback partial", "verdict: start"):
        assert f"<b>{what}</b>" in html or f'">{what}</b>' in html, what
    assert re.search("verdict: continue</b> \u00d7 \\d+", html)
    # the charts as SVG, the gate line on the error rate's
    for chart in ("error_rate", "p95_ms", "fallback_rate", "calls"):
        assert f'data-chart="{chart}"' in html, chart
    assert 'class="threshold"' not in html.split('data-chart="fallback_rate"')[1].split("</svg>")[0]
    assert 'class="event rollback"' in html
    # the scorecard at each phase change, with its checks
    assert 'data-change="start"' in html and 'data-change="rollback_partial"' in html
    rollback = html.split('data-change="rollback_partial"')[1]
    assert 'data-check="error_rate &lt; 3%"' in rollback and 'data-result="fail"' in rollback
    assert 'data-section="data"' in html and "No runs." in html

    text = run(db_url, "report", NAME, "--html", str(out)).stdout
    assert "wrote the report of voice_v2" in " ".join(text.split())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # refused before any store
def test_bad_input_names_the_option_and_writes_nothing(
    app: App, clock: ManualClock, db_url: str, tmp_path: Path
) -> None:
    app.rollout.create(NAME, features=["stt"], actor="seed")
    folder = tmp_path / "reports"
    folder.mkdir()
    out = folder / "r.html"
    for args, word in (
        (["--since", "3w"], "--since"),
        (["--since", "0m"], "--since"),
        (["--html", str(folder / "missing" / "r.html")], "--html"),
    ):
        result = run(db_url, "report", NAME, "--html", str(out), *args)
        assert result.exit_code != 0 and word in " ".join(result.stderr.split()), result.stderr
    result = run(db_url, "report", "nope", "--html", str(out))
    assert result.exit_code != 0 and "nope" in result.stderr
    assert list(folder.iterdir()) == []
    assert "--since" in run(None, "report", "--help").stdout


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with TestClient(create_app(app), follow_redirects=False) as c:
        yield c


def test_the_dashboard_serves_the_same_report(
    app: App, clock: ManualClock, client: TestClient, tokens: dict[str, str]
) -> None:
    seed_rollout(app, clock)
    assert client.get(f"/migrations/{NAME}/report").status_code == 303  # sign in first
    sign_in_form(client, tokens["viewer"])
    r = client.get(f"/migrations/{NAME}/report?since=1h")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not EXTERNAL.search(r.text)
    assert f'data-report="{NAME}"' in r.text and 'data-change="rollback_partial"' in r.text
    page = client.get(f"/migrations/{NAME}").text
    assert f'href="/migrations/{NAME}/report"' in page
    bad = client.get(f"/migrations/{NAME}/report?since=soon")
    assert bad.status_code == 422 and "since" in bad.text

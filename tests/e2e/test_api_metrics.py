"""Observations in over HTTP, legacy and candidate side by side out, Prometheus /metrics."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from switchover.api.app import create_app
from switchover.bootstrap import App
from switchover.core.clock import ManualClock


@pytest.fixture
def http(app: App) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    app.rollout.create("voice_v2", features=["stt", "tts"], actor="setup")
    tokens = {
        role: {"Authorization": f"Bearer {app.tokens.create(role, role, actor='t')}"}
        for role in ("viewer", "worker", "operator")
    }
    with TestClient(create_app(app)) as client:
        yield client, tokens


def _obs(clock: ManualClock, side: str, latency: float, **kw: Any) -> dict[str, Any]:
    return {
        "migration": "voice_v2",
        "operation": kw.pop("operation", "stt"),
        "side": side,
        "latency_ms": latency,
        "at": clock.now().timestamp(),
        **kw,
    }


def test_ingested_observations_come_back_side_by_side(http, clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    client, tokens = http
    batch = [_obs(clock, "legacy", 100.0 + i, outcome={"booked": i % 2}) for i in range(100)]
    batch += [_obs(clock, "candidate", 200.0 + i) for i in range(40)]
    batch += [
        _obs(clock, "candidate", 900.0, ok=False, error_type="TimeoutError", fallback=True)
        for _ in range(10)
    ]
    resp = client.post("/v1/observations", json={"observations": batch}, headers=tokens["worker"])
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": 150}

    report = client.get(
        "/v1/migrations/voice_v2/metrics?window=15m", headers=tokens["viewer"]
    ).json()
    legacy, cand = report["sides"]["legacy"], report["sides"]["candidate"]
    assert (legacy["calls"], cand["calls"]) == (100, 50)
    assert (cand["errors"], cand["fallbacks"]) == (10, 10)
    assert cand["error_rate"] == pytest.approx(0.2)
    assert cand["fallback_rate"] == pytest.approx(0.2)
    assert cand["error_types"] == {"TimeoutError": 10}
    assert legacy["outcome_rates"]["booked"] == pytest.approx(0.5)
    assert legacy["p50_ms"] == pytest.approx(149.5, rel=0.02)
    assert cand["p95_ms"] == pytest.approx(900.0, rel=0.01)
    assert report["percentage"] == 0 and report["comparison"]["candidate_share"] == pytest.approx(
        50 / 150
    )

    only_tts = client.get(
        "/v1/migrations/voice_v2/metrics?operation=tts", headers=tokens["viewer"]
    ).json()
    assert only_tts["sides"]["legacy"]["calls"] == 0

    with_series = client.get(
        "/v1/migrations/voice_v2/metrics?series=true", headers=tokens["viewer"]
    ).json()
    points = with_series["series"]["candidate"]
    assert len(points) == 1 and points[0]["calls"] == 50


def test_bad_observations_are_refused_whole_and_name_the_field(http, clock) -> None:  # type: ignore[no-untyped-def]
    client, tokens = http
    good = _obs(clock, "legacy", 10.0)
    cases = [
        ([good, good, {**good, "latency_ms": -1}], "observations[2].latency_ms"),
        ([{**good, "side": "both"}], "observations[0].side"),
        ([{**good, "outcome": {"booked": "yes"}}], "observations[0].outcome"),
        ([{**good, "migration": "nope"}], "migration"),
    ]
    for batch, field in cases:
        resp = client.post(
            "/v1/observations", json={"observations": batch}, headers=tokens["worker"]
        )
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["field"] == field
    report = client.get("/v1/migrations/voice_v2/metrics", headers=tokens["viewer"]).json()
    assert report["sides"]["legacy"]["calls"] == 0


def test_ingest_needs_a_worker_token(http, clock) -> None:  # type: ignore[no-untyped-def]
    client, tokens = http
    body = {"observations": [_obs(clock, "legacy", 1.0)]}
    assert client.post("/v1/observations", json=body).status_code == 401
    assert client.post("/v1/observations", json=body, headers=tokens["viewer"]).status_code == 403
    assert client.post("/v1/observations", json=body, headers=tokens["operator"]).status_code == 200


def test_metrics_window_errors(http) -> None:  # type: ignore[no-untyped-def]
    client, tokens = http
    resp = client.get("/v1/migrations/voice_v2/metrics?window=abc", headers=tokens["viewer"])
    assert resp.status_code == 422 and resp.json()["error"]["field"] == "window"
    resp = client.get("/v1/migrations/nope/metrics", headers=tokens["viewer"])
    assert resp.status_code == 404


def test_prometheus_exposes_counters_and_histograms_by_side(http, clock) -> None:  # type: ignore[no-untyped-def]
    client, tokens = http
    batch = [_obs(clock, "legacy", 30.0) for _ in range(5)]
    batch += [_obs(clock, "candidate", 3000.0, ok=False, error_type="X", fallback=True)]
    client.post("/v1/observations", json={"observations": batch}, headers=tokens["worker"])
    first = _families(client.get("/metrics").text)
    labels = {"migration": "voice_v2", "operation": "stt", "side": "legacy"}
    assert first["switchover_calls_total"][_key(labels)] == 5
    cand = {**labels, "side": "candidate"}
    assert first["switchover_fallbacks_total"][_key(cand)] == 1
    assert first["switchover_rollout_percentage"][_key({"migration": "voice_v2"})] == 0
    buckets = first["switchover_latency_seconds_bucket"]
    assert buckets[_key({**labels, "le": "0.025"})] == 0
    assert buckets[_key({**labels, "le": "0.05"})] == 5
    assert buckets[_key({**cand, "le": "2.5"})] == 0
    assert buckets[_key({**cand, "le": "5.0"})] == 1
    # counters only grow: a second batch adds to the first
    client.post("/v1/observations", json={"observations": batch}, headers=tokens["worker"])
    second = _families(client.get("/metrics").text)
    assert second["switchover_calls_total"][_key(labels)] == 10


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[_key(s.labels)] = s.value
    return out


def test_cli_metrics_json_and_bad_window(app: App, db_url: str, clock: ManualClock) -> None:
    import time

    app.rollout.create("voice_v2", features=["stt"], actor="setup")
    now = time.time()
    app.metrics.ingest(
        [
            {"migration": "voice_v2", "operation": "stt", "side": s, "latency_ms": 5.0, "at": now}
            for s in ("legacy", "candidate", "candidate")
        ]
    )
    run = [sys.executable, "-m", "switchover", "--db", db_url, "metrics", "voice_v2"]
    out = subprocess.run([*run, "--window", "5m", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert (data["sides"]["legacy"]["calls"], data["sides"]["candidate"]["calls"]) == (1, 2)
    table = subprocess.run([*run], capture_output=True, text=True)
    assert "candidate / legacy" in table.stdout and "p95 latency" in table.stdout
    bad = subprocess.run([*run, "--window", "soon"], capture_output=True, text=True)
    assert bad.returncode == 2 and "window" in bad.stderr

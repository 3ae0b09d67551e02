"""Time to first chunk from a stream routed through the real router into the real store
(both engines): the metrics CLI (JSON and table) and /metrics (a histogram) show it;
/metrics counts the circuit breaker's state changes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

import switchover
from switchover.api.app import create_app
from switchover.bootstrap import App
from switchover.sdk.circuit import CircuitPolicy

NAME = "voice_v2"


class Boom(Exception):
    pass


async def _legacy(prompt: str) -> AsyncIterator[str]:
    yield "legacy:"
    yield prompt


async def _slow(prompt: str) -> AsyncIterator[str]:
    await asyncio.sleep(0.12)  # 120 ms of dead air before the first chunk
    yield "cand:"
    yield prompt


async def _broken(prompt: str) -> AsyncIterator[str]:
    raise Boom
    yield prompt  # pragma: no cover


def _route(db_url: str) -> None:
    client = switchover.connect(db_url, background=False)
    try:
        m = client.migration(NAME)
        m.configure("llm", feature="llm")
        m.configure("tts", feature="llm", circuit=CircuitPolicy(failures=2))

        async def run() -> None:
            for i in range(4):
                got = [
                    c
                    async for c in m.route_stream(
                        "llm", {"user_id": f"u{i}"}, "hi", legacy=_legacy, candidate=_slow
                    )
                ]
                assert got == ["cand:", "hi"]
            for i in range(3):  # two failures open the circuit; the third goes to legacy
                got = [
                    c
                    async for c in m.route_stream(
                        "tts", {"user_id": f"u{i}"}, "hi", legacy=_legacy, candidate=_broken
                    )
                ]
                assert got == ["legacy:", "hi"]

        asyncio.run(run())
        assert m.circuit("tts") == "open"
        assert client.recorder.flush() is True
    finally:
        client.close()


def test_first_chunk_in_the_metrics_cli_and_prometheus(app: App, db_url: str) -> None:
    app.rollout.create(NAME, features=["llm"], actor="setup")
    app.rollout.set_feature(NAME, "llm", True, actor="setup")
    app.rollout.set_percentage(NAME, 100, actor="setup")
    _route(db_url)

    run = [sys.executable, "-m", "switchover", "--db", db_url, "metrics", NAME, "-o", "llm"]
    out = subprocess.run([*run, "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    cand = json.loads(out.stdout)["sides"]["candidate"]
    assert cand["calls"] == 4 and cand["streams"] == 4
    assert 110.0 <= cand["ttfb_p50_ms"] <= cand["ttfb_p95_ms"] <= cand["ttfb_p99_ms"] < 2000
    table = subprocess.run(run, capture_output=True, text=True)
    assert table.returncode == 0, table.stderr
    assert "p95 first chunk" in table.stdout and "streams" in table.stdout

    with TestClient(create_app(app)) as http:
        text = http.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    llm = {"migration": NAME, "operation": "llm", "side": "candidate"}

    def at(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert at("switchover_first_chunk_seconds_count", **llm) == 4
    assert at("switchover_first_chunk_seconds_bucket", **llm, le="0.1") == 0
    assert at("switchover_first_chunk_seconds_bucket", **llm, le="0.25") == 4
    assert at("switchover_first_chunk_seconds_sum", **llm) >= 0.44
    # legacy's streams after the broken candidate have a first chunk too: two fallbacks
    # (recorded on the candidate's side) and one call with the circuit open
    tts = {"migration": NAME, "operation": "tts"}
    assert at("switchover_first_chunk_seconds_count", **tts, side="candidate") == 2
    assert at("switchover_first_chunk_seconds_count", **tts, side="legacy") == 1
    circuit = {"migration": NAME, "operation": "tts"}
    assert at("switchover_circuit_changes_total", **circuit, state="open") == 1
    assert at("switchover_circuit_changes_total", **circuit, state="closed") == 0

"""Time to first chunk (issue 15 item 2) from a real stream, through the recorder, into the
real store on both engines, and back through window(); over HTTP, /v1/observations and
/v1/rollups take it and validate it like the latency sketch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

import switchover
from switchover.api.app import create_app
from switchover.bootstrap import App
from switchover.core.clock import ManualClock
from switchover.core.rollup import Rollup, RollupKey, minute_of, rollup_from_payload
from switchover.errors import ValidationError
from switchover.rollout.service import RolloutService
from switchover.store.repository import Store

NAME = "voice_v2"


def _create(url: str) -> None:
    svc = RolloutService(Store.from_url(url), ManualClock())
    svc.create(NAME, features=["llm"], actor="a")
    svc.set_feature(NAME, "llm", True, actor="a")
    svc.set_percentage(NAME, 100, actor="a")


async def _legacy(prompt: str) -> AsyncIterator[str]:
    yield "legacy:"
    yield prompt


async def _slow_first(prompt: str) -> AsyncIterator[str]:
    await asyncio.sleep(0.06)
    yield "cand:"
    yield prompt


def test_a_routed_stream_shows_its_first_chunk_in_the_window(db_url: str) -> None:
    _create(db_url)
    client = switchover.connect(db_url, background=False, clock=ManualClock())
    try:
        m = client.migration(NAME)
        m.configure("llm", feature="llm")

        async def run() -> list[str]:
            out: list[str] = []
            for _ in range(3):
                out += [
                    c
                    async for c in m.route_stream(
                        "llm", {"user_id": "u1"}, "hi", legacy=_legacy, candidate=_slow_first
                    )
                ]
            return out

        assert asyncio.run(run()) == ["cand:", "hi"] * 3
        # a plain call on the same operation: counted, but not in the first-chunk sketch
        for i in range(97):
            client.recorder.record(NAME, "llm", "candidate", 10.0 + i)
        for i in range(40):
            client.recorder.record(NAME, "llm", "legacy", 30.0, first_chunk_ms=float(i + 1))
        assert client.recorder.flush() is True

        sides = m.window(operation="llm")["sides"]
        cand, legacy = sides["candidate"], sides["legacy"]
        assert cand["calls"] == 100 and cand["streams"] == 3
        assert 55.0 <= cand["ttfb_p50_ms"] <= cand["ttfb_p95_ms"] <= cand["ttfb_p99_ms"] < 1000
        assert legacy["streams"] == 40
        assert legacy["ttfb_p95_ms"] == pytest.approx(38.0, rel=0.02)
        assert legacy["ttfb_p50_ms"] == pytest.approx(20.0, rel=0.02)
    finally:
        client.close()


def test_rollups_without_streams_store_no_first_chunk(db_url: str) -> None:
    _create(db_url)
    store = Store.from_url(db_url)
    plain, stream = Rollup(), Rollup()
    plain.add(10.0, True, None, False, None)
    stream.add(100.0, True, None, False, None, first_chunk_ms=40.0)
    stream.add(120.0, True, None, False, None)
    with store.transaction() as tx:
        tx.insert_rollups(
            [
                (RollupKey(100, NAME, "llm", "legacy"), plain),
                (RollupKey(100, NAME, "llm", "candidate"), stream),
            ]
        )
    with store.read() as tx:
        rows = {r.key.side: r.rollup for r in tx.rollups(NAME, 0, 200)}
        parts = {p.key.side: p for p in tx.rollup_parts(NAME, 0, 200, max_id=tx.max_rollup_id())}
    assert rows["legacy"] == plain and rows["legacy"].first_chunk.count == 0
    assert rows["candidate"] == stream and rows["candidate"].first_chunk.count == 1
    assert parts["legacy"].first_chunk is None
    assert parts["candidate"].first_chunk == stream.first_chunk.to_dict()


# --- over HTTP ---------------------------------------------------------------------------


@pytest.fixture
def http(app: App) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    app.rollout.create(NAME, features=["llm"], actor="setup")
    tokens = {
        role: {"Authorization": f"Bearer {app.tokens.create(role, role, actor='t')}"}
        for role in ("viewer", "worker")
    }
    with TestClient(create_app(app)) as client:
        yield client, tokens


def _sides(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    resp = client.get(f"/v1/migrations/{NAME}/metrics?window=15m&operation=llm", headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["sides"]


def test_observations_over_http_carry_their_first_chunk(
    http: tuple[TestClient, dict[str, dict[str, str]]], clock: ManualClock
) -> None:
    client, tokens = http
    at = clock.now().timestamp()
    obs = [
        {
            "migration": NAME,
            "operation": "llm",
            "side": "candidate",
            "latency_ms": 900.0,
            "first_chunk_ms": 600.0,
            "at": at,
        },
        {"migration": NAME, "operation": "llm", "side": "candidate", "latency_ms": 50.0, "at": at},
    ]
    resp = client.post("/v1/observations", json={"observations": obs}, headers=tokens["worker"])
    assert resp.status_code == 200, resp.text
    cand = _sides(client, tokens["viewer"])["candidate"]
    assert cand["calls"] == 2 and cand["streams"] == 1
    assert cand["ttfb_p95_ms"] == pytest.approx(600.0, rel=0.01)

    for bad in (-1.0, "fast", 1e12, 901.0):
        wrong = [{**obs[0], "first_chunk_ms": bad}]
        resp = client.post(
            "/v1/observations", json={"observations": wrong}, headers=tokens["worker"]
        )
        assert resp.status_code == 422, (bad, resp.text)
        assert resp.json()["error"]["field"] == "observations[0].first_chunk_ms"


def test_rollups_over_http_carry_their_first_chunk(
    http: tuple[TestClient, dict[str, dict[str, str]]], clock: ManualClock
) -> None:
    client, tokens = http
    r = Rollup()
    for i in range(4):
        r.add(500.0, True, None, False, None, first_chunk_ms=100.0 * (i + 1) if i < 2 else None)
    key = RollupKey(minute_of(clock.now().timestamp()), NAME, "llm", "candidate")
    item = {"key": key._asdict(), "rollup": r.to_dict()}
    resp = client.post("/v1/rollups", json={"rollups": [item]}, headers=tokens["worker"])
    assert resp.status_code == 200, resp.text
    cand = _sides(client, tokens["viewer"])["candidate"]
    assert cand["calls"] == 4 and cand["streams"] == 2
    assert cand["ttfb_p50_ms"] == pytest.approx(100.0, rel=0.01)

    bad = {
        **item,
        "rollup": {
            **item["rollup"],
            "first_chunk": {**r.first_chunk.to_dict(), "count": 5, "zeros": 3},
        },
    }
    resp = client.post("/v1/rollups", json={"rollups": [bad]}, headers=tokens["worker"])
    assert resp.status_code == 422
    assert resp.json()["error"]["field"] == "rollups[0].rollup.first_chunk.count"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"count": 3}, "x.rollup.first_chunk.count"),
        ({"bins": [[1, -3]]}, "x.rollup.first_chunk.bins[0]"),
        ({"sum": float("inf")}, "x.rollup.first_chunk.sum"),
        ({"max": 1e12}, "x.rollup.first_chunk.max"),
    ],
)
def test_a_bad_first_chunk_sketch_is_refused_by_its_field(
    change: dict[str, Any], field: str
) -> None:
    r = Rollup()
    r.add(500.0, True, None, False, None, first_chunk_ms=100.0)
    r.add(500.0, True, None, False, None, first_chunk_ms=300.0)
    payload = r.to_dict()
    payload["first_chunk"] = {**payload["first_chunk"], **change}
    item = {
        "key": {"minute": 1000, "migration": NAME, "operation": "llm", "side": "legacy"},
        "rollup": payload,
    }
    with pytest.raises(ValidationError) as info:
        rollup_from_payload(item, "x", now_minute=1000)
    assert info.value.field == field
    good = {**item, "rollup": r.to_dict()}
    assert rollup_from_payload(good, "x", now_minute=1000)[1] == r

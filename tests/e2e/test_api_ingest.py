"""/v1/observations and /v1/rollups hardened (issue 21), on both engines: idempotency keys
(a retried batch is stored once), rollups validated at the boundary (nothing of a bad
batch stored), observations' ``at``, latency and outcomes bounded, and an SDK talking
HTTP that neither poisons itself nor double counts."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from switchover.api.app import create_app
from switchover.bootstrap import App
from switchover.core.clock import ManualClock
from switchover.core.rollup import Rollup, RollupKey, minute_of
from switchover.sdk import Client
from switchover.sdk.backends.http import HttpBackend

NAME = "voice_v2"

Http = tuple[TestClient, dict[str, dict[str, str]]]


@pytest.fixture
def http(app: App) -> Iterator[Http]:
    app.rollout.create(NAME, features=["tts"], actor="setup")
    app.rollout.set_feature(NAME, "tts", True, actor="setup")
    app.rollout.set_percentage(NAME, 50, actor="setup")
    tokens = {
        role: {"Authorization": f"Bearer {app.tokens.create(role, role, actor='t')}"}
        for role in ("viewer", "worker")
    }
    with TestClient(create_app(app)) as client:
        yield client, tokens


def _obs(clock: ManualClock, side: str = "candidate", **kw: Any) -> dict[str, Any]:
    return {
        "migration": NAME,
        "operation": "tts",
        "side": side,
        "latency_ms": 100.0,
        "at": clock.now().timestamp(),
        **kw,
    }


def _sides(client: TestClient, tokens: dict[str, dict[str, str]]) -> dict[str, Any]:
    report = client.get(f"/v1/migrations/{NAME}/metrics?window=15m", headers=tokens["viewer"])
    assert report.status_code == 200, report.text
    return report.json()["sides"]


def _calls(client: TestClient, tokens: dict[str, dict[str, str]]) -> int:
    sides = _sides(client, tokens)
    return sides["legacy"]["calls"] + sides["candidate"]["calls"]


def _rollup_item(
    clock: ManualClock, n: int = 4, side: str = "candidate", **kw: Any
) -> dict[str, Any]:
    r = Rollup()
    for i in range(n):
        r.add(50.0 + i, i % 2 == 0, None if i % 2 == 0 else "timeout", False, None)
    key = RollupKey(minute_of(clock.now().timestamp()), NAME, kw.pop("operation", "tts"), side)
    return {"key": key._asdict(), "rollup": r.to_dict()}


def _post(
    client: TestClient, path: str, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    """``body`` as Python's json writes it (NaN and Infinity included)."""
    return client.post(
        path, content=json.dumps(body), headers={**headers, "Content-Type": "application/json"}
    )


# --- idempotency keys ------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["header", "body", "both"])
def test_a_retried_observation_batch_is_stored_once(
    http: Http, clock: ManualClock, where: str
) -> None:
    client, tokens = http
    key = str(uuid.uuid4())
    body: dict[str, Any] = {"observations": [_obs(clock) for _ in range(10)]}
    headers = dict(tokens["worker"])
    if where in ("header", "both"):
        headers["Idempotency-Key"] = key
    if where in ("body", "both"):
        body["idempotency_key"] = key
    first = client.post("/v1/observations", json=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": 10, "replay": False}
    assert "idempotent-replayed" not in first.headers
    again = client.post("/v1/observations", json=body, headers=headers)
    assert again.status_code == 200 and again.json() == {"accepted": 10, "replay": True}
    assert again.headers["idempotent-replayed"] == "true"
    assert _calls(client, tokens) == 10


def test_without_a_key_the_answer_is_as_before(http: Http, clock: ManualClock) -> None:
    client, tokens = http
    body = {"observations": [_obs(clock)]}
    for _ in range(2):
        resp = client.post("/v1/observations", json=body, headers=tokens["worker"])
        assert resp.json() == {"accepted": 1}
    assert _calls(client, tokens) == 2


@pytest.mark.parametrize(
    ("header", "body_key"),
    [("a", "b"), ("has space", None), ("k" * 201, None), (None, ""), (None, "ключ")],
)
def test_a_bad_or_ambiguous_key_is_refused(
    http: Http, clock: ManualClock, header: str | None, body_key: str | None
) -> None:
    client, tokens = http
    headers = {**tokens["worker"], **({"Idempotency-Key": header} if header else {})}
    body: dict[str, Any] = {"observations": [_obs(clock)]}
    if body_key is not None:
        body["idempotency_key"] = body_key
    resp = client.post("/v1/observations", json=body, headers=headers)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == "idempotency_key"
    assert _calls(client, tokens) == 0


def test_a_refused_batch_does_not_use_up_its_key(http: Http, clock: ManualClock) -> None:
    client, tokens = http
    headers = {**tokens["worker"], "Idempotency-Key": "batch-7"}
    bad = {"observations": [_obs(clock), _obs(clock, latency_ms=-1)]}
    assert client.post("/v1/observations", json=bad, headers=headers).status_code == 422
    unknown = {"observations": [_obs(clock, migration="ghost")]}
    assert client.post("/v1/observations", json=unknown, headers=headers).status_code == 422
    good = {"observations": [_obs(clock), _obs(clock)]}
    resp = client.post("/v1/observations", json=good, headers=headers)
    assert resp.json() == {"accepted": 2, "replay": False}


def test_a_retried_rollup_batch_is_stored_once(http: Http, clock: ManualClock) -> None:
    client, tokens = http
    headers = {**tokens["worker"], "Idempotency-Key": "rollups-1"}
    body = {"rollups": [_rollup_item(clock), _rollup_item(clock, side="legacy")]}
    assert client.post("/v1/rollups", json=body, headers=headers).json() == {
        "accepted": 2,
        "replay": False,
    }
    again = client.post("/v1/rollups", json=body, headers=headers)
    assert again.json() == {"accepted": 2, "replay": True}
    assert _calls(client, tokens) == 8


def test_keys_are_forgotten_after_a_day(http: Http, clock: ManualClock) -> None:
    client, tokens = http
    headers = {**tokens["worker"], "Idempotency-Key": "daily"}
    body = {"observations": [_obs(clock)]}
    assert client.post("/v1/observations", json=body, headers=headers).json()["replay"] is False
    clock.advance(23 * 3600)
    body = {"observations": [_obs(clock)]}
    assert client.post("/v1/observations", json=body, headers=headers).json()["replay"] is True
    clock.advance(2 * 3600)
    client.post("/v1/observations", json={"observations": [_obs(clock)]}, headers=tokens["worker"])
    body = {"observations": [_obs(clock)]}
    assert client.post("/v1/observations", json=body, headers=headers).json()["replay"] is False


# --- rollups validated at the boundary ----------------------------------------------------


def _mutate(item: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    item = json.loads(json.dumps(item))
    *parents, last = path.split(".")
    node = item
    for p in parents:
        node = node[p]
    node[last] = value
    return item


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("rollup.count", -4, "rollups[1].rollup.count"),
        ("rollup.errors", -2, "rollups[1].rollup.errors"),
        ("key.side", "both", "rollups[1].key.side"),
        ("key.minute", 1e30, "rollups[1].key.minute"),
        ("key.minute", 10**30, "rollups[1].key.minute"),
        ("key.operation", "o" * 64, "rollups[1].key.operation"),
        ("rollup.tenants", {f"t{i}": [0, 0] for i in range(102)}, "rollups[1].rollup.tenants"),
        ("rollup.outcomes", {"booked": float("inf")}, "rollups[1].rollup.outcomes.booked"),
        ("rollup.outcomes", {"booked": float("nan")}, "rollups[1].rollup.outcomes.booked"),
        ("rollup.sketch.bins", [[1, -3]], "rollups[1].rollup.sketch.bins[0]"),
        ("rollup.sketch.sum", float("inf"), "rollups[1].rollup.sketch.sum"),
    ],
)
def test_a_bad_rollup_is_refused_and_nothing_of_its_batch_stored(
    http: Http, clock: ManualClock, path: str, value: Any, field: str
) -> None:
    client, tokens = http
    good = _rollup_item(clock)
    body = {"rollups": [good, _mutate(good, path, value), good]}
    resp = _post(client, "/v1/rollups", body, tokens["worker"])
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == field
    assert _calls(client, tokens) == 0


def test_the_negative_rollup_cannot_hide_a_50_percent_error_rate(
    http: Http, clock: ManualClock
) -> None:
    client, tokens = http
    honest = _rollup_item(clock, n=4)  # 2 errors in 4 calls
    negative = _mutate(honest, "rollup.count", -4)
    negative = _mutate(negative, "rollup.errors", -2)
    assert (
        client.post("/v1/rollups", json={"rollups": [honest]}, headers=tokens["worker"]).status_code
        == 200
    )
    resp = client.post("/v1/rollups", json={"rollups": [negative]}, headers=tokens["worker"])
    assert resp.status_code == 422
    assert _sides(client, tokens)["candidate"]["error_rate"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("sample", "field"),
    [
        ({"operation": "tts"}, "samples[0].migration"),
        ({"migration": NAME, "operation": "o" * 70}, "samples[0].operation"),
        ({"migration": NAME, "operation": "tts", "at": 1e300}, "samples[0].at"),
        ({"migration": NAME, "operation": "tts", "v": float("nan")}, "samples[0]"),
        ("text", "samples[0]"),
    ],
)
def test_a_bad_sample_is_refused(http: Http, clock: ManualClock, sample: Any, field: str) -> None:
    client, tokens = http
    body = {"rollups": [_rollup_item(clock)], "samples": [sample]}
    resp = _post(client, "/v1/rollups", body, tokens["worker"])
    assert resp.status_code == 422 and resp.json()["error"]["field"] == field
    assert _calls(client, tokens) == 0


# --- observations bounded -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"at": 1e300}, "observations[1].at"),
        ({"at": 1e30}, "observations[1].at"),
        ({"latency_ms": 1e12}, "observations[1].latency_ms"),
        ({"outcome": {"a": 1e308, "b": 1e308}}, "observations[1].outcome"),
        ({"outcome": {"a": float("inf")}}, "observations[1].outcome"),
        ({"tenant": "t" * 500}, "observations[1].tenant"),
    ],
)
def test_out_of_range_observations_are_422_not_500(
    http: Http, clock: ManualClock, change: dict[str, Any], field: str
) -> None:
    client, tokens = http
    body = {"observations": [_obs(clock), _obs(clock, **change)]}
    resp = _post(client, "/v1/observations", body, tokens["worker"])
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["field"] == field
    assert _calls(client, tokens) == 0


def test_outcomes_within_the_bound_add_up_finite(http: Http, clock: ManualClock) -> None:
    client, tokens = http
    body = {"observations": [_obs(clock, outcome={"revenue": 1e12}) for _ in range(100)]}
    assert client.post("/v1/observations", json=body, headers=tokens["worker"]).status_code == 200
    rates = _sides(client, tokens)["candidate"]["outcome_rates"]
    assert rates["revenue"] == pytest.approx(1e12)


# --- an SDK talking HTTP to the server --------------------------------------------------------


class LoseFirstAnswer(httpx.BaseTransport):
    """Forwards every request; the answer to the first rollup post never arrives."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.lost = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.inner.handle_request(request)
        body = answer.read()
        if request.url.path == "/v1/rollups" and not self.lost:
            self.lost = True
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return httpx.Response(answer.status_code, headers=answer.headers, content=body)


def test_an_sdk_over_http_stores_every_good_call_once(http: Http, clock: ManualClock) -> None:
    client, tokens = http
    token = tokens["worker"]["Authorization"].removeprefix("Bearer ")
    transport = LoseFirstAnswer(client._transport)
    backend = HttpBackend("http://testserver", token, transport=transport)
    with Client(backend, background=False, clock=clock) as sdk:
        m = sdk.migration(NAME)
        for i in range(1000):
            m.route_sync("tts", {"user_id": f"u{i}"}, legacy=lambda: "l", candidate=lambda: "c")
        m.route_sync("o" * 80, {"user_id": "u"}, legacy=lambda: "l", candidate=lambda: "c")
        assert sdk.recorder.flush() is False  # stored, but the answer was lost
        assert sdk.recorder.flush() is True  # the same batch, the same key: a replay
        stats = sdk.recorder.stats()
        assert stats.replayed_batches == 1 and stats.flushed_observations == 1001
        assert stats.invalid_fields == 1 and stats.refused_observations == 0
    report = client.get(
        f"/v1/migrations/{NAME}/metrics?window=15m&operation=tts", headers=tokens["viewer"]
    ).json()
    assert report["sides"]["legacy"]["calls"] + report["sides"]["candidate"]["calls"] == 1000
    assert _calls(client, tokens) == 1001

"""The server backend over ``httpx.MockTransport``: the requests it makes, the errors it
translates, and a client that decides, records and reads through it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from switchover.core.decision import Side
from switchover.core.migration import Migration
from switchover.errors import StoreError
from switchover.sdk import Backend, Client
from switchover.sdk.backends.http import HttpBackend

NAME = "voice_v2"
CTX = {"user_id": "u1", "tenant_id": "t1"}


class FakeServer:
    """Answers the endpoints the backend calls; remembers every request."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.posted: list[dict[str, Any]] = []
        self.down = False
        m = Migration(name=NAME, percentage=100, features={"tts": True})
        self.migrations = [m.to_dict()]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        if path == "/v1/snapshot/version":
            return httpx.Response(200, json={"version": 3})
        if path == "/v1/snapshot":
            return httpx.Response(200, json={"version": 3, "migrations": self.migrations})
        if path == "/v1/rollups" and request.method == "POST":
            self.posted.append(json.loads(request.content))
            return httpx.Response(202, json={"accepted": 1})
        if path == f"/v1/migrations/{NAME}/metrics":
            return httpx.Response(200, json={"params": dict(request.url.params)})
        if path == f"/v1/migrations/{NAME}/status":
            return httpx.Response(200, json={"name": NAME})
        return httpx.Response(404, json={"error": "not_found"})


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def backend(server: FakeServer) -> HttpBackend:
    return HttpBackend("http://so.test/", "tok", transport=httpx.MockTransport(server))


def test_it_is_a_backend(backend: HttpBackend) -> None:
    assert isinstance(backend, Backend)


def test_the_snapshot_comes_from_the_server_with_the_token(
    server: FakeServer, backend: HttpBackend
) -> None:
    assert backend.version() == 3
    version, [m] = backend.load()
    assert (version, m.name, m.percentage) == (3, NAME, 100)
    assert {r.headers["authorization"] for r in server.requests} == {"Bearer tok"}


def test_a_client_decides_records_and_reads_through_the_server(
    server: FakeServer, backend: HttpBackend
) -> None:
    with Client(backend, background=False) as client:
        m = client.migration(NAME)
        assert m.decide("tts", CTX).side is Side.CANDIDATE
        assert m.route_sync("tts", CTX, legacy=lambda: "l", candidate=lambda: "c") == "c"
        assert client.recorder.flush() is True
        [payload] = server.posted
        [item] = payload["rollups"]
        assert item["key"]["side"] == "candidate" and item["rollup"]["count"] == 1

        since = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        report = m.window(since=since, operation="tts", last=timedelta(minutes=5))
        assert report["params"] == {
            "since": since.isoformat(),
            "operation": "tts",
            "window": "300s",
        }
        assert m.status() == {"name": NAME}


def test_transport_errors_and_bad_statuses_become_store_errors(
    server: FakeServer, backend: HttpBackend
) -> None:
    with pytest.raises(StoreError, match="404"):
        backend.status("nope")
    server.down = True
    with pytest.raises(StoreError, match="unreachable"):
        backend.version()
    with pytest.raises(StoreError, match="unreachable"):
        backend.write([], [{"migration": NAME, "operation": "tts"}])


def test_an_unreachable_server_leaves_decisions_legacy_and_never_raises(
    server: FakeServer, backend: HttpBackend
) -> None:
    server.down = True
    with Client(backend, background=False) as client:
        assert client.migration(NAME).decide("tts", CTX).reason.value == "store_unreachable"
        assert client.health()["last_error"].startswith("StoreError")

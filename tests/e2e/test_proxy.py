"""``switchover proxy`` in front of real legacy and candidate services on loopback.

Every request goes through the real proxy (uvicorn, httpx) to real upstream servers;
decisions come from a real store and what the proxy records is read back from it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from proxy_servers import (
    NAME,
    SECRET,
    ThreadServer,
    Upstream,
    config,
    fresh_store,
    proxying,
    upstreams,
    wait_for,
)

from support.serving import free_port
from switchover.api.app import create_app
from switchover.bootstrap import App, bootstrap
from switchover.core.migration import Override
from switchover.settings import Settings


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return fresh_store(tmp_path)


@pytest.fixture
def rollout(store_url: str) -> Iterator[App]:
    a = bootstrap(Settings(database_url=store_url))
    a.rollout.create(NAME, stickiness="contact_id", tenant_key="location_id", actor="alice")
    a.rollout.set_percentage(NAME, 50, actor="alice")
    yield a
    a.close()


@pytest.fixture(scope="module")
def services() -> Iterator[tuple[Upstream, Upstream, str, str]]:
    with upstreams() as found:
        yield found


@pytest.fixture
def sides(
    services: tuple[Upstream, Upstream, str, str],
) -> tuple[Upstream, Upstream, str, str]:
    """The legacy and candidate services (shared by this module's tests), as new."""
    services[0].reset()
    services[1].reset()
    return services


def window(client: Any, app: Any) -> dict[str, Any]:
    """Per side, what the proxy recorded, once it has finished every request (it records
    a request after its last byte reached the caller)."""
    wait_for(lambda: app.inflight == 0 and not app._tasks)
    client.recorder.flush()
    return client.migration(NAME).window(last=timedelta(minutes=10))["sides"]  # type: ignore[no-any-return]


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# decisions ---------------------------------------------------------------------------------


def test_each_contact_stays_on_its_side_and_overrides_and_the_kill_switch_win(
    rollout: App, store_url: str, sides: Any
) -> None:
    legacy, candidate, lu, cu = sides  # noqa: RUF059
    with proxying(config(lu, cu, tenant="header:X-Location-Id"), store_url) as (base, app, client):
        handle = client.migration(NAME)
        with httpx.Client(base_url=base) as http:
            served: dict[str, str] = {}
            for round_ in range(2):
                for i in range(30):
                    contact = f"contact-{i}"
                    r = http.post("/webhooks/ghl", json={"contact_id": contact, "round": round_})
                    assert r.status_code == 200
                    side = r.json()["side"]
                    assert served.setdefault(contact, side) == side  # sticky
                    assert side == handle.decide(None, {"contact_id": contact}).side.value
            assert set(served.values()) == {"legacy", "candidate"}
            # no key in the body: legacy (missing_key)
            assert http.post("/webhooks/ghl", json={"other": 1}).json()["side"] == "legacy"

            on_legacy = next(c for c, s in served.items() if s == "legacy")
            rollout.rollout.set_tenant(NAME, "loc-pilot", Override.ALLOW, actor="alice")
            wait_for(lambda: handle.snapshot is not None and "loc-pilot" in handle.snapshot.tenants)
            r = http.post(
                "/webhooks/ghl",
                json={"contact_id": on_legacy},
                headers={"X-Location-Id": "loc-pilot"},
            )
            assert r.json()["side"] == "candidate"

            rollout.rollout.kill(NAME, actor="bob", reason="P0")
            wait_for(lambda: handle.snapshot is not None and not handle.snapshot.enabled)
            sent = [http.post("/webhooks/ghl", json={"contact_id": c}) for c in served]
            assert {r.json()["side"] for r in sent} == {"legacy"}
        stats = window(client, app)
    assert stats["legacy"]["calls"] + stats["candidate"]["calls"] == 60 + 1 + 1 + 30
    assert stats["candidate"]["outcomes"]["status.2xx"] == stats["candidate"]["calls"]


@pytest.mark.parametrize(
    ("key", "path", "kwargs"),
    [
        ("header:X-Contact-Id", "/hook", {"headers": {"X-Contact-Id": "c-7"}}),
        ("query:contact", "/hook?contact=c-7", {}),
        ("path:1", "/contacts/c-7/messages", {}),
        ("json:data.contact.id", "/hook", {"json": {"data": {"contact": {"id": "c-7"}}}}),
    ],
)
def test_the_key_can_come_from_a_header_the_query_the_path_or_nested_json(
    rollout: App, store_url: str, sides: Any, key: str, path: str, kwargs: dict[str, Any]
) -> None:
    legacy, candidate, lu, cu = sides  # noqa: RUF059
    rollout.rollout.set_percentage(NAME, 100, actor="alice")
    with (
        proxying(config(lu, cu, key=key), store_url) as (base, _, _client),
        httpx.Client(base_url=base) as http,
    ):
        r = http.post(path, **kwargs)
        assert r.json()["side"] == "candidate"  # a key was found: bucket_in at 100 %
        assert candidate.seen[-1].path == path.split("?")[0]
        r = http.post("/elsewhere")  # no key: missing_key, legacy
        assert r.json()["side"] == "legacy"


# signatures --------------------------------------------------------------------------------


def test_a_bad_or_missing_signature_is_refused_forwarded_to_nobody_and_counted(
    rollout: App, store_url: str, sides: Any, caplog: pytest.LogCaptureFixture
) -> None:
    legacy, candidate, lu, cu = sides
    caplog.set_level(logging.DEBUG)
    cfg = config(lu, cu, signature_secret_env="WEBHOOK_SECRET")
    body = b'{"contact_id": "c-1", "message": "book me in"}'
    with proxying(cfg, store_url) as (base, _, _client), httpx.Client(base_url=base) as http:
        for value in (sign(body), "sha256=" + sign(body), "SHA256=" + sign(body).upper()):
            r = http.post("/webhooks/ghl", content=body, headers={"X-Signature": value})
            assert r.status_code == 200, r.text
        forwarded = len(legacy.seen) + len(candidate.seen)
        assert forwarded == 3
        refused = [
            http.post("/webhooks/ghl", content=body),
            http.post("/webhooks/ghl", content=body, headers={"X-Signature": sign(b"other")}),
            http.post(
                "/webhooks/ghl", content=body, headers={"X-Signature": sign(body, "wrong-secret")}
            ),
            http.post("/webhooks/ghl", content=body + b" ", headers={"X-Signature": sign(body)}),
        ]
        assert [r.status_code for r in refused] == [401] * 4
        assert "X-Signature" in refused[0].json()["error"]
        assert len(legacy.seen) + len(candidate.seen) == forwarded
        metrics = http.get("/_switchover/metrics").text
        assert 'switchover_proxy_refused_total{reason="signature"} 4.0' in metrics
    assert SECRET not in caplog.text
    assert any("signature_refused" in m for m in caplog.messages)


def test_the_signature_scheme_is_configurable_in_yaml(
    rollout: App, store_url: str, sides: Any
) -> None:
    import base64

    legacy, candidate, lu, cu = sides  # noqa: RUF059
    signature = {
        "header": "X-Hub-Signature",
        "secret_env": "WEBHOOK_SECRET",
        "algorithm": "sha1",
        "encoding": "base64",
        "prefix": "",
    }
    body = b'{"contact_id": "c-1"}'
    good = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha1).digest()).decode()
    with (
        proxying(config(lu, cu, signature=signature), store_url) as (base, _, _client),
        httpx.Client(base_url=base) as http,
    ):
        assert http.post("/h", content=body, headers={"X-Hub-Signature": good}).status_code == 200
        assert http.post("/h", content=body, headers={"X-Signature": sign(body)}).status_code == 401


# fallback ----------------------------------------------------------------------------------


def closed_port() -> str:
    """A loopback URL nothing listens on (a port just released)."""
    return f"http://127.0.0.1:{free_port()}"


def _break(candidate: Upstream, how: str) -> dict[str, Any]:
    """Make the candidate fail ``how``; the config that goes with it."""
    if how == "http_5xx":
        candidate.status = 503
        return {}
    if how == "timeout":
        candidate.delay = 1.0
        return {"timeouts": {"candidate": 0.2}}
    return {}


@pytest.mark.parametrize("how", ["connect_error", "timeout", "http_5xx"])
def test_a_failing_candidate_falls_back_to_legacy_on_a_route_safe_to_repeat(
    rollout: App, store_url: str, sides: Any, how: str
) -> None:
    legacy, candidate, lu, cu = sides
    rollout.rollout.set_percentage(NAME, 100, actor="alice")
    extra = _break(candidate, how)
    target = closed_port() if how == "connect_error" else cu
    legacy.outcome = "booked=1"
    routes = [
        {"path": "/webhooks", "methods": ["POST"], "operation": "inbound", "repeat_safe": True}
    ]
    with (
        proxying(config(lu, target, routes=routes, **extra), store_url) as (base, app, client),
        httpx.Client(base_url=base) as http,
    ):
        r = http.post("/webhooks/ghl", json={"contact_id": "c-1", "text": "hi"})
        assert r.status_code == 200
        assert r.json() == {"side": "legacy", "bytes": len(legacy.seen[0].body)}
        assert "x-switchover-outcome" not in r.headers
        stats = window(client, app)
    assert stats["candidate"]["fallbacks"] == 1
    assert stats["candidate"]["error_types"] == {how: 1}
    assert stats["candidate"]["outcomes"]["booked"] == 1.0  # legacy's answer's outcome
    assert "legacy" not in stats or stats["legacy"]["calls"] == 0


@pytest.mark.parametrize(
    ("how", "status"), [("connect_error", 502), ("timeout", 504), ("http_5xx", 503)]
)
def test_a_route_not_safe_to_repeat_returns_the_candidates_answer(
    rollout: App, store_url: str, sides: Any, how: str, status: int
) -> None:
    legacy, candidate, lu, cu = sides
    rollout.rollout.set_percentage(NAME, 100, actor="alice")
    extra = _break(candidate, how)
    target = closed_port() if how == "connect_error" else cu
    with (
        proxying(config(lu, target, **extra), store_url) as (base, app, client),
        httpx.Client(base_url=base) as http,
    ):
        r = http.post("/webhooks/ghl", json={"contact_id": "c-1"})  # POST: not declared safe
        assert r.status_code == status
        if how == "http_5xx":
            assert r.json() == {"side": "candidate", "bytes": len(candidate.seen[0].body)}
        assert legacy.seen == []
        stats = window(client, app)
    assert stats["candidate"]["errors"] == 1
    assert stats["candidate"]["fallbacks"] == 0
    assert stats["candidate"]["error_types"] == {how: 1}


def test_get_is_safe_to_repeat_by_default(rollout: App, store_url: str, sides: Any) -> None:
    legacy, candidate, lu, cu = sides  # noqa: RUF059
    rollout.rollout.set_percentage(NAME, 100, actor="alice")
    candidate.status = 500
    with (
        proxying(config(lu, cu, key="query:contact"), store_url) as (base, _, _client),
        httpx.Client(base_url=base) as http,
    ):
        assert http.get("/status?contact=c-1").json()["side"] == "legacy"
        assert http.post("/status?contact=c-1").status_code == 500


# shadow ------------------------------------------------------------------------------------


def test_shadow_serves_legacy_compares_and_keeps_redacted_mismatches(
    rollout: App, store_url: str, sides: Any
) -> None:
    legacy, candidate, lu, cu = sides
    candidate.delay = 0.3  # slower than legacy: the caller must not wait for it
    legacy.body = {"reply": "Booked you for 3pm", "contact": "ana@example.com"}
    candidate.body = dict(legacy.body)
    with proxying(config(lu, cu, mode="shadow"), store_url) as (base, app, client):
        with httpx.Client(base_url=base) as http:
            started = time.perf_counter()
            r = http.post("/webhooks/ghl", json={"contact_id": "c-1"})
            assert time.perf_counter() - started < 0.25
            assert r.json() == legacy.body
            wait_for(lambda: not app._tasks)
            candidate.body = {"reply": "Booked you for 4pm", "contact": "ana@example.com"}
            http.post("/webhooks/ghl", json={"contact_id": "c-2"})
            wait_for(lambda: not app._tasks and len(candidate.seen) == 2)
        stats = window(client, app)
    assert stats["legacy"]["calls"] == 2
    assert stats["candidate"]["calls"] == 2
    assert stats["candidate"]["outcomes"]["shadow.match"] == 1.0
    assert stats["candidate"]["outcomes"]["shadow.mismatch"] == 1.0
    with rollout.store.read() as tx:
        rows = tx.shadow_samples(NAME)
    assert len(rows) == 1
    text = str(rows[0])
    assert "4pm" in text and "3pm" in text
    assert "ana@example.com" not in text and "[REDACTED:email]" in text


# streaming and headers ---------------------------------------------------------------------


def test_bodies_stream_both_ways(rollout: App, store_url: str, sides: Any) -> None:
    legacy, candidate, lu, cu = sides  # noqa: RUF059
    rollout.rollout.set_percentage(NAME, 0, actor="alice")
    with (
        proxying(config(lu, cu, key="header:X-Contact-Id"), store_url) as (base, _, _client),
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        # the response: its first chunk reaches the caller before the service wrote the rest
        with http.stream("GET", "/stream", headers={"X-Contact-Id": "c-1"}) as r:
            parts = r.iter_raw()
            assert next(parts) == b"first;"
            assert not legacy.release.is_set()
            legacy.release.set()
            assert b"".join(parts) == b"second;last"

        # the request: the service has the first chunk before the caller sent the second
        def body() -> Iterator[bytes]:
            yield b"a" * 1000
            wait_for(lambda: len(legacy.chunks) >= 1)
            yield b"b" * 1000

        r = http.post("/upload", content=body(), headers={"X-Contact-Id": "c-1"})
        assert r.status_code == 200
        assert r.json()["side"] == "legacy"
        assert b"".join(legacy.chunks) == b"a" * 1000 + b"b" * 1000


def test_hop_by_hop_headers_stay_on_their_hop(rollout: App, store_url: str, sides: Any) -> None:
    legacy, candidate, lu, cu = sides  # noqa: RUF059
    rollout.rollout.set_percentage(NAME, 0, actor="alice")
    legacy.outcome = "booked=1"
    with (
        proxying(config(lu, cu), store_url) as (base, _, _client),
        httpx.Client(base_url=base) as http,
    ):
        r = http.post(
            "/webhooks/ghl",
            json={"contact_id": "c-1"},
            headers={
                "Connection": "keep-alive, X-Caller-Hop",
                "X-Caller-Hop": "drop me",
                "Keep-Alive": "timeout=5",
                "TE": "trailers",
                "X-End-To-End": "keep me",
            },
        )
    seen = legacy.seen[0].headers
    assert "x-caller-hop" not in seen and "keep-alive" not in seen and "te" not in seen
    assert seen["x-end-to-end"] == "keep me"
    assert seen["via"] == "1.1 switchover"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["host"] == lu.removeprefix("http://")
    assert "x-upstream-hop" not in r.headers
    assert "x-switchover-outcome" not in r.headers
    assert "1.1 switchover" in r.headers["via"]


# limits and health -------------------------------------------------------------------------


def test_limits_answer_413_and_503_naming_the_limit(
    rollout: App, store_url: str, sides: Any
) -> None:
    legacy, candidate, lu, cu = sides
    legacy.delay = candidate.delay = 0.5
    cfg = config(
        lu, cu, key="header:X-Contact-Id", limits={"max_body_bytes": 1000, "max_concurrency": 1}
    )
    with proxying(cfg, store_url) as (base, app, _client), httpx.Client(base_url=base) as http:
        r = http.post("/h", content=b"x" * 1001, headers={"X-Contact-Id": "c"})
        assert r.status_code == 413
        assert r.json()["limit"] == "max_body_bytes" and "max_body_bytes" in r.json()["error"]

        def chunked() -> Iterator[bytes]:
            yield b"x" * 600
            yield b"x" * 600

        r = http.post("/h", content=chunked(), headers={"X-Contact-Id": "c"})
        assert r.status_code == 413
        assert legacy.seen == [] and candidate.seen == []

        slow = threading.Thread(
            target=lambda: httpx.post(base + "/h", content=b"{}", headers={"X-Contact-Id": "c"})
        )
        slow.start()
        wait_for(lambda: app.inflight == 1)
        r = http.post("/h", content=b"{}", headers={"X-Contact-Id": "c"})
        slow.join()
        assert r.status_code == 503
        assert r.json()["limit"] == "max_concurrency"
        assert r.headers["retry-after"] == "1"
        assert http.get("/_switchover/livez").status_code == 200
        ready = http.get("/_switchover/readyz")
        assert ready.status_code == 200 and ready.json()["migration_loaded"] is True
        app.begin_drain()
        assert http.get("/_switchover/readyz").status_code == 503


# a switchover server as the proxy's store ----------------------------------------------------


def test_the_proxy_can_decide_and_record_through_a_switchover_server(
    rollout: App, sides: Any
) -> None:
    """The switchover API (``create_app``, as ``switchover serve`` runs it) on loopback;
    the proxy reads the snapshot and posts its records over HTTP with a worker token."""
    _legacy, _candidate, lu, cu = sides
    token = rollout.tokens.create("proxy", "worker", actor="alice")
    with (
        ThreadServer(create_app(rollout)) as server,
        proxying(config(lu, cu), server.url, token) as (base, app, client),
        httpx.Client(base_url=base) as http,
    ):
        assert client.compiled(NAME) is not None  # the snapshot came over HTTP
        sides_seen = {
            http.post("/webhooks/ghl", json={"contact_id": f"c-{i}"}).json()["side"]
            for i in range(20)
        }
        assert sides_seen == {"legacy", "candidate"}
        wait_for(lambda: app.inflight == 0)
        assert client.recorder.flush()
    stats = rollout.metrics.window(NAME, last=timedelta(minutes=10)).sides
    assert stats["legacy"].calls + stats["candidate"].calls == 20

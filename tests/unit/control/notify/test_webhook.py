"""The webhook target: what is POSTed, signatures, retries, isolation between webhooks, logs.

Every delivery goes over real HTTP to a ``ThreadingHTTPServer`` on 127.0.0.1 that records
each request and answers from a programmable list of statuses.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from switchover.control.notify import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Notifier,
    Webhook,
    WebhookTarget,
    sign,
    verify,
)
from switchover.control.notify.slack import slack_body

from .notes import REASONS, note

SECRET = "whsec-0123456789abcdef"


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0


class Hook:
    """A webhook receiver: records requests, answers ``answers`` in order, then ``default``."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.answers: list[Answer] = []
        self.default = Answer(200)
        self.release = threading.Event()  # ends every hang early
        self.cond = threading.Condition()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with hook.cond:
                    hook.requests.append(
                        Request(self.path, dict(self.headers.items()), body, time.monotonic())
                    )
                    answer = hook.answers.pop(0) if hook.answers else hook.default
                    hook.cond.notify_all()
                if answer.hang:
                    hook.release.wait(answer.hang)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the client gave up while we hung
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def target(self, path: str = "/hook", **kwargs: Any) -> Webhook:
        return Webhook(self.base + path, **kwargs)

    def on(self, path: str) -> list[Request]:
        with self.cond:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len([r for r in self.requests if path is None or r.path == path]) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cond.wait(remaining)
            return True

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.stop()


@pytest.fixture
def make_notifier() -> Iterator[Callable[..., Notifier]]:
    made: list[Notifier] = []

    def make(**kwargs: Any) -> Notifier:
        kwargs.setdefault("backoff", 0.01)
        kwargs.setdefault("max_backoff", 0.05)
        kwargs.setdefault("timeout", 2.0)
        n = Notifier(**kwargs)
        made.append(n)
        return n

    yield make
    for n in made:
        n.close(timeout=1.0)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


# --- payload -------------------------------------------------------------------------------


def test_body_is_slack_compatible_and_carries_machine_readable_data(
    hook: Hook, make_notifier: Callable[..., Notifier]
) -> None:
    notifier = make_notifier()
    notifier.send([hook.target()], note(verdict_id="v-42"))
    assert notifier.flush(5)

    [req] = hook.requests
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["User-Agent"] == "switchover"
    assert req.headers[EVENT_HEADER] == "phase_change"
    assert req.body == slack_body(note(verdict_id="v-42"))  # the Slack format, byte for byte
    body = req.json()
    assert body["text"].startswith("⏩ ")
    assert "canary (1 %) → pilot (10 %)" in body["text"]
    section, facts, context = body["blocks"]
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert "*voice_v2*" in section["text"]["text"]
    labels = [f["text"] for f in facts["fields"]]
    assert "*Phase*\npilot" in labels
    assert "*Percentage*\n10%" in labels
    assert "*Severity*\nP2" in labels
    assert "*Verdict id*\nv-42" in labels
    assert context["type"] == "context"
    assert [e["text"] for e in context["elements"]] == [f"• {r}" for r in REASONS]
    assert body["switchover"] == {
        "event": "phase_change",
        "migration": "voice_v2",
        "severity": "P2",
        "at": "2025-03-04T12:30:00+00:00",
        "fields": {"phase": "pilot", "percentage": 10, "reasons": REASONS, "verdict_id": "v-42"},
    }
    assert notifier.stats == {"sent": 1, "failed": 0, "retried": 0, "dropped": 0, "queued": 0}


# --- signatures ----------------------------------------------------------------------------


def test_signature_verifies_only_with_the_secret_and_the_exact_body(
    hook: Hook, make_notifier: Callable[..., Notifier]
) -> None:
    notifier = make_notifier(time_fn=lambda: 1_700_000_000.7)
    notifier.send([hook.target("/signed", secret=SECRET), hook.target("/plain")], note())
    assert notifier.flush(5)

    [signed] = hook.on("/signed")
    ts = signed.headers[TIMESTAMP_HEADER]
    sig = signed.headers[SIGNATURE_HEADER]
    assert ts == "1700000000"
    assert sig.startswith("sha256=") and sig == sign(SECRET, ts, signed.body)
    assert verify(SECRET, ts, signed.body, sig)
    assert not verify("wrong-secret", ts, signed.body, sig)
    assert not verify(SECRET, ts, signed.body.replace(b"pilot", b"xilot"), sig)
    assert not verify(SECRET, "1700000001", signed.body, sig)  # timestamp is bound in
    assert verify(SECRET, ts, signed.body, sig, tolerance=300, now=1_700_000_100)
    assert not verify(SECRET, ts, signed.body, sig, tolerance=300, now=1_700_000_400)

    [plain] = hook.on("/plain")
    assert SIGNATURE_HEADER not in plain.headers
    assert plain.headers[TIMESTAMP_HEADER] == "1700000000"
    assert plain.body == signed.body


# --- retries -------------------------------------------------------------------------------


def test_server_errors_are_retried_until_delivered(
    hook: Hook, make_notifier: Callable[..., Notifier]
) -> None:
    hook.answers = [Answer(500), Answer(503), Answer(200)]
    notifier = make_notifier(max_attempts=5)
    notifier.send([hook.target(secret=SECRET)], note())
    assert notifier.flush(5)

    assert len(hook.requests) == 3
    assert len({r.headers[DELIVERY_HEADER] for r in hook.requests}) == 1  # dedupe key
    for r in hook.requests:  # each attempt is freshly signed and still verifies
        assert verify(SECRET, r.headers[TIMESTAMP_HEADER], r.body, r.headers[SIGNATURE_HEADER])
    stats = notifier.stats
    assert (stats["sent"], stats["retried"], stats["failed"]) == (1, 2, 0)


def test_client_error_is_not_retried(hook: Hook, make_notifier: Callable[..., Notifier]) -> None:
    hook.default = Answer(400)
    notifier = make_notifier(max_attempts=5)
    notifier.send([hook.target()], note())
    assert notifier.flush(5)

    assert len(hook.requests) == 1
    stats = notifier.stats
    assert (stats["sent"], stats["retried"], stats["failed"]) == (0, 0, 1)


def test_retry_after_is_honoured_but_capped(
    hook: Hook, make_notifier: Callable[..., Notifier]
) -> None:
    hook.answers = [Answer(429, {"Retry-After": "3600"}), Answer(200)]
    notifier = make_notifier(backoff=0.01, max_backoff=0.3)
    notifier.send([hook.target()], note())
    assert notifier.flush(5)

    first, second = hook.requests
    assert 0.28 <= second.at - first.at < 2.0
    assert notifier.stats["sent"] == 1


def test_backoff_doubles_with_jitter_through_an_injected_sleep(
    hook: Hook, make_notifier: Callable[..., Notifier]
) -> None:
    hook.answers = [Answer(500), Answer(502), Answer(429, {"Retry-After": "5"}), Answer(200)]
    pauses: list[float] = []
    notifier = make_notifier(backoff=1.0, max_backoff=10.0, sleep=pauses.append)
    started = time.monotonic()
    notifier.send([hook.target()], note())
    assert notifier.flush(5)

    assert time.monotonic() - started < 2.0  # the fake sleep returned at once
    assert len(hook.requests) == 4 and notifier.stats["retried"] == 3
    first, second, third = pauses
    assert 0.9 <= first <= 2.0  # 1 s + jitter up to 1 s
    assert 1.9 <= second <= 3.0  # 2 s + jitter
    assert 4.9 <= third <= 6.0  # Retry-After 5 s beats the 4 s backoff


def test_dead_target_fails_after_max_attempts_without_delaying_a_healthy_one(
    hook: Hook, make_notifier: Callable[..., Notifier]
) -> None:
    dead = Webhook(f"http://127.0.0.1:{closed_port()}/hook")
    # Backoff 0.1 s doubling over 5 attempts: ~1.5 s before the dead target is given up.
    notifier = make_notifier(max_attempts=5, backoff=0.1, max_backoff=10.0)
    started = time.monotonic()
    notifier.send([dead, hook.target("/healthy")], note())

    assert hook.wait_for(1, "/healthy", timeout=1.0)
    assert time.monotonic() - started < 0.5
    assert notifier.stats["failed"] == 0  # the dead one is still being retried

    assert notifier.flush(10)
    stats = notifier.stats
    assert (stats["sent"], stats["failed"], stats["retried"]) == (1, 1, 4)
    assert time.monotonic() - started >= 1.4


def test_hanging_target_never_blocks_send(
    hook: Hook, make_notifier: Callable[..., Notifier]
) -> None:
    hook.default = Answer(200, hang=10.0)
    notifier = make_notifier(timeout=0.3, max_attempts=1)
    target = hook.target()

    started = time.perf_counter()
    notifier.send([target], note())
    assert time.perf_counter() - started < 0.05
    assert hook.wait_for(1)  # the worker is now stuck in that request

    started = time.perf_counter()
    notifier.send([target], note("hold"))
    assert time.perf_counter() - started < 0.05

    assert notifier.flush(5)  # both time out after 0.3 s each
    stats = notifier.stats
    assert (stats["sent"], stats["failed"]) == (0, 2)


def test_events_filter_decides_who_hears_what(
    hook: Hook, make_notifier: Callable[..., Notifier]
) -> None:
    notifier = make_notifier()
    targets = [hook.target("/rollbacks", events={"rollback"}), hook.target("/all")]
    notifier.send(targets, note("phase_change"))
    notifier.send(targets, note("rollback", phase="canary"))
    assert notifier.flush(5)

    assert [r.headers[EVENT_HEADER] for r in hook.on("/rollbacks")] == ["rollback"]
    assert sorted(r.headers[EVENT_HEADER] for r in hook.on("/all")) == [
        "phase_change",
        "rollback",
    ]
    assert notifier.stats["sent"] == 3


def test_full_queue_drops_and_counts_and_close_drops_the_rest(
    hook: Hook, make_notifier: Callable[..., Notifier]
) -> None:
    hook.default = Answer(200, hang=10.0)
    notifier = make_notifier(queue_size=2, timeout=5.0, max_attempts=1)
    target = hook.target()
    notifier.send([target], note())
    assert hook.wait_for(1)  # in flight, hanging: the queue itself is empty

    for _ in range(5):
        notifier.send([target], note())  # never raises, never blocks
    assert notifier.stats == {"sent": 0, "failed": 0, "retried": 0, "dropped": 3, "queued": 2}

    notifier.close(timeout=0.1)  # the worker is still stuck in the first request
    assert notifier.stats["dropped"] == 5 and notifier.stats["queued"] == 0
    notifier.send([target], note())  # after close: dropped, not raised
    assert notifier.stats["dropped"] == 6

    hook.release.set()
    assert wait_until(lambda: notifier.stats["sent"] == 1)
    assert len(hook.requests) == 1


# --- what leaks, what does not ------------------------------------------------------------


def test_final_failure_log_names_the_host_but_no_token_nor_secret(
    hook: Hook, make_notifier: Callable[..., Notifier], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="httpx")  # httpx logs each request URL at INFO
    caplog.set_level(logging.DEBUG, logger="switchover.notify")
    hook.default = Answer(403)
    token_path = "/services/T0001/B0002/XXSECRETTOKENXX?token=QUERYTOKEN"
    refused = Webhook(f"http://127.0.0.1:{closed_port()}{token_path}", secret=SECRET)
    notifier = make_notifier(max_attempts=2)
    notifier.send([hook.target(token_path, secret=SECRET), refused], note("rollback"))
    assert notifier.flush(5)
    assert notifier.stats["failed"] == 2

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"{hook.base}/…" in m and "rollback" in m and "HTTP 403" in m for m in warnings), (
        warnings
    )
    assert any(f"{refused.display()}" in m and "ConnectError" in m for m in warnings), warnings
    assert any(r.name == "httpx" for r in caplog.records)  # it logged, but redacted
    everything = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("XXSECRETTOKENXX", "QUERYTOKEN", "/services/", SECRET, "sha256="):
        assert secret not in everything


def test_display_and_repr_hide_path_query_and_credentials() -> None:
    slack = Webhook("https://hooks.slack.com/services/T00/B00/XXXX?x=1", secret=SECRET)
    assert slack.display() == "https://hooks.slack.com/…"
    assert "XXXX" not in repr(slack) and SECRET not in repr(slack)
    with_port = Webhook("http://user:pw@Example.COM:8080/a?b=c")
    assert with_port.display() == "http://example.com:8080/…"
    assert Webhook("https://example.com").display() == "https://example.com/"
    assert Webhook("http://[::1]:9000/x").display() == "http://[::1]:9000/…"


def test_invalid_webhooks_are_rejected_up_front() -> None:
    with pytest.raises(ValueError, match="http"):
        Webhook("ftp://example.com/hook")
    with pytest.raises(ValueError, match="http"):
        Webhook("https://example.com:99999/hook")
    with pytest.raises(ValueError, match="unknown notification events"):
        Webhook("https://example.com/hook", events=frozenset({"phase_changed"}))
    assert Webhook("https://example.com/hook", events={"hold"}).events == frozenset({"hold"})  # type: ignore[arg-type]


# --- one webhook as a Target ---------------------------------------------------------------


def test_a_webhook_target_delivers_through_a_notifier_of_its_own_and_closes_it(
    hook: Hook,
) -> None:
    target = WebhookTarget(hook.base + "/own", secret=SECRET, events=["rollback"])
    target.send(note("phase_change"))  # not subscribed
    target.send(note("rollback"))
    assert target.notifier.flush(5)
    [req] = hook.on("/own")
    assert req.headers[EVENT_HEADER] == "rollback"
    assert verify(SECRET, req.headers[TIMESTAMP_HEADER], req.body, req.headers[SIGNATURE_HEADER])
    target.close()
    target.send(note("rollback"))  # closed: dropped, never raised
    assert target.notifier.stats["dropped"] == 1
    assert SECRET not in repr(target) and "/own" not in repr(target)


def test_webhook_targets_on_a_shared_notifier_leave_it_open(
    hook: Hook, make_notifier: Callable[..., Notifier]
) -> None:
    shared = make_notifier()
    first = WebhookTarget(hook.base + "/a", notifier=shared)
    second = WebhookTarget(hook.base + "/b", notifier=shared)
    first.send(note())
    first.close()
    second.send(note("hold"))
    assert shared.flush(5)
    assert [r.path for r in sorted(hook.requests, key=lambda r: r.path)] == ["/a", "/b"]
    assert shared.stats["sent"] == 2

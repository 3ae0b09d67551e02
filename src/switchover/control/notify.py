"""Webhook notifications for the rollout controller: Slack-compatible, signed, retried.

The controller calls :meth:`Notifier.send` on a phase change, a hold, a rollback, when an
approval is needed and on completion. ``send`` only enqueues: one daemon thread POSTs the
JSON body to every target that subscribed to the event, so a slow or failing target never
blocks or crashes the controller.

Each request carries ``X-Switchover-Event``, ``X-Switchover-Timestamp`` (unix seconds) and,
when the target has a secret, ``X-Switchover-Signature: sha256=<hex>`` over
``f"{timestamp}."`` + body (the Stripe/Slack scheme; receivers check it with :func:`verify`
and reject stale timestamps to stop replays). ``X-Switchover-Delivery`` stays the same
across the retries of one delivery so a receiver can drop duplicates.

2xx is success. 4xx other than 408/429, and redirects, fail at once. 5xx, 408, 429,
timeouts and connection errors are retried with exponential backoff and jitter, honouring
a numeric ``Retry-After``. Retries are re-scheduled on a heap rather than slept inline, so
one dead target delays the others by at most one request timeout.

Target URLs may themselves be secret (a Slack webhook URL is a credential): logs name a
target only by :meth:`Target.display` (scheme, host and port) and never the URL, the secret
or the signature.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import urlsplit

import httpx
import orjson

log = logging.getLogger("switchover.notify")

EVENTS: tuple[str, ...] = ("phase_change", "hold", "rollback", "approval_needed", "completed")
SEVERITIES: tuple[str, ...] = ("P0", "P1", "P2", "P3")

SIGNATURE_HEADER = "X-Switchover-Signature"
TIMESTAMP_HEADER = "X-Switchover-Timestamp"
EVENT_HEADER = "X-Switchover-Event"
DELIVERY_HEADER = "X-Switchover-Delivery"
USER_AGENT = "switchover"

EMOJI: Mapping[str, str] = {
    "phase_change": "⏩",
    "hold": "⏸️",
    "rollback": "⏪",
    "approval_needed": "✋",
    "completed": "✅",
}
TITLES: Mapping[str, str] = {
    "phase_change": "Phase change",
    "hold": "Hold",
    "rollback": "Rollback",
    "approval_needed": "Approval needed",
    "completed": "Completed",
}

MAX_REASONS = 10  # a Slack context block holds at most 10 elements
MAX_FIELDS = 10  # a Slack section holds at most 10 fields
_MAX_SECTION_TEXT = 2900  # Slack: 3000 characters per section text
_MAX_ITEM_TEXT = 300
_RETRY_STATUSES = frozenset({408, 429})
_MAX_EXPONENT = 32
_RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)


# --- targets and notifications -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """A webhook receiver. ``url`` may be a credential: show it only through :meth:`display`."""

    url: str
    secret: str | None = None
    events: frozenset[str] = frozenset(EVENTS)

    def __post_init__(self) -> None:
        try:
            parts = urlsplit(self.url)
            _ = parts.port  # raises ValueError on a malformed port
        except (ValueError, TypeError, AttributeError):
            raise ValueError("a notification target needs an http(s) URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "a notification target needs an http(s) URL with a host, "
                f"got scheme {parts.scheme!r}"
            )
        if self.secret is not None and not isinstance(self.secret, str):
            raise ValueError("a notification target secret must be a string or None")
        events = frozenset(self.events)
        unknown = sorted(events - set(EVENTS))
        if unknown:
            raise ValueError(f"unknown notification events {unknown}; known: {list(EVENTS)}")
        object.__setattr__(self, "events", events)

    def display(self) -> str:
        """``scheme://host[:port]/…``: safe to log, without credentials, path or query."""
        parts = urlsplit(self.url)
        host = parts.hostname or "?"
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port is not None else ""
        hidden = parts.path not in ("", "/") or parts.query or parts.fragment
        return f"{parts.scheme}://{host}{port}/{'…' if hidden else ''}"

    def __repr__(self) -> str:
        secret = "'***'" if self.secret is not None else "None"
        return f"Target(url={self.display()!r}, secret={secret}, events={sorted(self.events)!r})"


@dataclass(frozen=True, slots=True)
class Notification:
    """One thing that happened to a rollout, told once to every subscribed target."""

    event: str
    migration: str
    text: str
    at: datetime
    severity: str = "P3"
    fields: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"unknown notification event {self.event!r}; known: {list(EVENTS)}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {list(SEVERITIES)}, got {self.severity!r}")


# --- payload -------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Plain JSON types all the way down; anything unknown becomes its ``str``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return _jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_jsonable(v) for v in value), key=str)
    return str(value)


def _iso(at: datetime) -> str:
    """ISO 8601; a naive datetime is taken to be UTC."""
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).isoformat()


def _escape(text: str) -> str:
    """Slack mrkdwn control characters, so ``<!channel>`` in a reason pings nobody."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _reasons(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, Mapping):
        return [f"{k}: {v}" for k, v in value.items()]
    try:
        return [str(v) for v in value]
    except TypeError:
        return [str(value)]


def slack_payload(n: Notification) -> dict[str, Any]:
    """A Slack incoming-webhook body, plus the machine-readable ``switchover`` object."""
    emoji = EMOJI.get(n.event, "")
    title = TITLES.get(n.event, n.event)
    fields = dict(n.fields)

    shown: list[tuple[str, str]] = []
    if fields.get("phase") is not None:
        shown.append(("Phase", _show(fields["phase"])))
    if fields.get("percentage") is not None:
        pct = fields["percentage"]
        shown.append(("Percentage", f"{_show(pct)}%" if isinstance(pct, int | float) else str(pct)))
    shown.append(("Severity", n.severity))
    for key, value in fields.items():
        if key in ("phase", "percentage", "reasons") or value is None:
            continue
        if isinstance(value, bool | int | float | str):
            shown.append((str(key).replace("_", " ").capitalize(), _show(value)))
    shown = shown[:MAX_FIELDS]

    reasons = _reasons(fields.get("reasons"))
    if len(reasons) > MAX_REASONS:
        more = len(reasons) - (MAX_REASONS - 1)
        reasons = [*reasons[: MAX_REASONS - 1], f"… and {more} more"]

    headline = f"{emoji} *{_escape(n.migration)}* · {title} ({n.severity})"
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _clip(f"{headline}\n{_escape(n.text)}", _MAX_SECTION_TEXT),
            },
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{label}*\n{_escape(_clip(str(value), 200))}"}
                for label, value in shown
            ],
        },
    ]
    if reasons:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"• {_escape(_clip(r, _MAX_ITEM_TEXT))}"}
                    for r in reasons
                ],
            }
        )
    return {
        "text": _clip(f"{emoji} {_escape(n.text)}", _MAX_SECTION_TEXT),
        "blocks": blocks,
        "switchover": {
            "event": n.event,
            "migration": n.migration,
            "severity": n.severity,
            "at": _iso(n.at),
            "fields": _jsonable(fields),
        },
    }


def _body(n: Notification) -> bytes:
    payload = slack_payload(n)
    try:
        return orjson.dumps(payload, default=str)
    except (TypeError, orjson.JSONEncodeError):  # e.g. an int beyond 64 bits
        return json.dumps(payload, default=str, ensure_ascii=False).encode()


# --- signatures ----------------------------------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``f"{timestamp}."`` + body, keyed by ``secret``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance: float | None = None,
    now: float | None = None,
) -> bool:
    """Whether ``signature`` is ours for this timestamp and body (constant-time compare).

    With ``tolerance`` (seconds), a timestamp further than that from ``now`` (default: the
    current time) is rejected too, which stops replays of a captured request.
    """
    if not isinstance(signature, str) or not isinstance(timestamp, str):
        return False
    if tolerance is not None:
        try:
            sent_at = int(timestamp)
        except ValueError:
            return False
        current = time.time() if now is None else now
        if abs(current - sent_at) > tolerance:
            return False
    expected = sign(secret, timestamp, body).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))


# --- notifiers -----------------------------------------------------------------------------


_WORKER_NAME = "switchover-notify"


def _url_display(url: httpx.URL) -> str:
    port = f":{url.port}" if url.port is not None else ""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{url.scheme}://{host}{port}/…"


class _RedactRequestLogs(logging.Filter):
    """httpx logs every request URL at INFO: from our worker, keep only scheme, host, port."""

    def filter(self, record: logging.LogRecord) -> bool:
        ours = bool(record.threadName and record.threadName.startswith(_WORKER_NAME))
        if ours and isinstance(record.args, tuple):
            record.args = tuple(
                _url_display(a) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


_redact_lock = threading.Lock()
_redact_installed = False


def _redact_httpx_logs() -> None:
    global _redact_installed
    with _redact_lock:
        if not _redact_installed:
            logging.getLogger("httpx").addFilter(_RedactRequestLogs())
            _redact_installed = True


class NotifierLike(Protocol):
    """What the controller needs: :class:`Notifier` and :class:`MemoryNotifier` both fit."""

    def send(self, targets: Sequence[Target], n: Notification) -> None: ...

    def flush(self, timeout: float = 10.0) -> bool: ...

    def close(self, timeout: float = 5.0) -> None: ...

    @property
    def stats(self) -> dict[str, int]: ...


@dataclass(slots=True, eq=False)
class _Delivery:
    target: Target
    event: str
    body: bytes
    delivery_id: str
    attempts: int = 0


class Notifier:
    """Delivers notifications on a background thread; send() never blocks and never raises.

    ``queue_size`` bounds the deliveries waiting (new or scheduled for a retry); past it new
    ones are dropped and counted. ``sleep`` waits out a backoff when nothing else is due: with
    the default ``time.sleep`` the worker waits on a condition instead, so a new ``send``
    wakes it at once; an injected ``sleep`` (a test's fake clock) is called with each pause,
    and whatever part of it was not really slept is credited to the scheduler's clock.
    ``time_fn`` gives the unix time put in the timestamp header.
    """

    def __init__(
        self,
        *,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        timeout: float = 5.0,
        queue_size: int = 1000,
        sleep: Callable[[float], None] = time.sleep,
        time_fn: Callable[[], float] = time.time,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if backoff < 0 or max_backoff < 0:
            raise ValueError("backoff and max_backoff must not be negative")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.queue_size = queue_size
        self._sleep = sleep
        self._interruptible = sleep is time.sleep
        self._time_fn = time_fn
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Delivery]] = []
        self._seq = itertools.count()
        self._credit = 0.0  # seconds an injected sleep claimed but did not take
        self._in_flight = 0
        self._closing = False
        self._thread: threading.Thread | None = None
        # Built here, not on first delivery: loading the CA bundle holds the GIL for ~0.1 s,
        # which would otherwise stall the controller's first send().
        self._client: httpx.Client | None = self._new_client()
        self._counts = {"sent": 0, "failed": 0, "retried": 0, "dropped": 0}
        _redact_httpx_logs()

    # -- public surface --

    def send(self, targets: Sequence[Target], n: Notification) -> None:
        """Enqueue one delivery per target subscribed to ``n.event``; never blocks or raises."""
        try:
            chosen = [t for t in targets if n.event in t.events]
            if not chosen:
                return
            body = _body(n)
            with self._cond:
                if self._closing:
                    self._counts["dropped"] += len(chosen)
                    log.warning(
                        "notifier is closed: dropped %s notification for %d target(s)",
                        n.event,
                        len(chosen),
                    )
                    return
                due = self._now()
                dropped = 0
                for target in chosen:
                    if len(self._heap) >= self.queue_size:
                        dropped += 1
                        continue
                    delivery = _Delivery(target, n.event, body, uuid.uuid4().hex)
                    heapq.heappush(self._heap, (due, next(self._seq), delivery))
                self._counts["dropped"] += dropped
                self._ensure_worker()
                self._cond.notify_all()
            if dropped:
                log.warning(
                    "notification queue full (%d): dropped %s notification for %d target(s)",
                    self.queue_size,
                    n.event,
                    dropped,
                )
        except Exception as exc:  # the controller must never see a notifier error
            with self._cond:
                self._counts["dropped"] += 1
            log.warning("could not enqueue a notification: %s", type(exc).__name__)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued or in flight (retries included); True if drained."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._heap or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker; deliveries still queued are counted as dropped.

        A request already in flight finishes (bounded by ``timeout`` of the client) on the
        daemon thread even when the join below gives up first. Call :meth:`flush` before
        to deliver what is queued.
        """
        with self._cond:
            self._closing = True
            thread = self._thread
            self._cond.notify_all()
        if thread is None:
            self._close_client()
        elif thread is not threading.current_thread():
            thread.join(timeout)
        with self._cond:
            if self._heap:
                self._counts["dropped"] += len(self._heap)
                log.warning("notifier closed with %d notification(s) undelivered", len(self._heap))
                self._heap.clear()
            self._cond.notify_all()

    @property
    def stats(self) -> dict[str, int]:
        with self._cond:
            return {**self._counts, "queued": len(self._heap)}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- worker --

    def _now(self) -> float:
        return time.monotonic() + self._credit

    def _ensure_worker(self) -> None:
        # under self._cond
        if self._thread is None:
            thread = threading.Thread(target=self._run, name=_WORKER_NAME, daemon=True)
            thread.start()  # if this fails, the next send tries again
            self._thread = thread

    def _run(self) -> None:
        try:
            while True:
                try:
                    if not self._step():
                        return
                except Exception as exc:  # the thread must never die
                    log.warning("notification worker error: %s", type(exc).__name__)
        finally:
            self._close_client()

    def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception as exc:
                log.debug("closing the notification client: %s", type(exc).__name__)

    def _step(self) -> bool:
        """Deliver the next due delivery or wait for one; False once closing."""
        delivery: _Delivery | None = None
        pause = 0.0
        with self._cond:
            while not self._closing:
                if not self._heap:
                    self._cond.wait()
                    continue
                pause = self._heap[0][0] - self._now()
                if pause <= 0:
                    delivery = heapq.heappop(self._heap)[2]
                    self._in_flight += 1
                    break
                if self._interruptible:
                    self._cond.wait(pause)
                    continue
                break
            if delivery is None and self._closing:
                return False
        if delivery is None:
            started = time.monotonic()
            self._sleep(pause)
            slept = time.monotonic() - started
            with self._cond:
                self._credit += max(0.0, pause - slept)
            return True
        try:
            self._deliver(delivery)
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()
        return True

    def _deliver(self, d: _Delivery) -> None:
        d.attempts += 1
        try:
            status, retryable, retry_after = self._post(d)
            problem = f"HTTP {status}"
        except _RETRYABLE_ERRORS as exc:
            status, retryable, retry_after = None, True, None
            problem = type(exc).__name__
        except Exception as exc:  # bad URL for httpx, TLS setup, ...: retrying will not help
            status, retryable, retry_after = None, False, None
            problem = type(exc).__name__

        if status is not None and 200 <= status < 300:
            with self._cond:
                self._counts["sent"] += 1
            log.debug("notification %s delivered to %s", d.event, d.target.display())
            return

        if retryable and d.attempts < self.max_attempts:
            delay = self._delay(d.attempts, retry_after)
            with self._cond:
                if self._closing:
                    self._counts["dropped"] += 1
                    return
                self._counts["retried"] += 1
                heapq.heappush(self._heap, (self._now() + delay, next(self._seq), d))
                self._cond.notify_all()
            log.debug(
                "notification %s to %s: %s, retrying in %.2fs (attempt %d/%d)",
                d.event,
                d.target.display(),
                problem,
                delay,
                d.attempts,
                self.max_attempts,
            )
            return

        with self._cond:
            self._counts["failed"] += 1
        log.warning(
            "notification %s to %s failed after %d attempt(s): %s",
            d.event,
            d.target.display(),
            d.attempts,
            problem,
        )

    def _new_client(self) -> httpx.Client | None:
        try:
            return httpx.Client(timeout=self.timeout, follow_redirects=False)
        except Exception as exc:  # retried on the first delivery
            log.warning("could not create the notification HTTP client: %s", type(exc).__name__)
            return None

    def _post(self, d: _Delivery) -> tuple[int, bool, float | None]:
        """POST once: (status, retryable, Retry-After seconds). Transport errors raise."""
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, follow_redirects=False)
        timestamp = str(int(self._time_fn()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: d.event,
            TIMESTAMP_HEADER: timestamp,
            DELIVERY_HEADER: d.delivery_id,
        }
        if d.target.secret is not None:
            headers[SIGNATURE_HEADER] = sign(d.target.secret, timestamp, d.body)
        # Streamed and never read: a receiver cannot make us buffer a large answer.
        with self._client.stream("POST", d.target.url, content=d.body, headers=headers) as resp:
            status = resp.status_code
            retry_after = _retry_after(resp.headers.get("Retry-After"))
        retryable = status >= 500 or status in _RETRY_STATUSES
        return status, retryable, retry_after

    def _delay(self, attempts: int, retry_after: float | None) -> float:
        exponent = min(attempts - 1, _MAX_EXPONENT)
        delay = min(self.max_backoff, self.backoff * 2**exponent)
        if retry_after is not None:
            delay = min(self.max_backoff, max(delay, retry_after))
        return delay + random.uniform(0, self.backoff)


def _retry_after(value: str | None) -> float | None:
    """A numeric ``Retry-After`` in seconds; HTTP dates and junk are ignored."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


class MemoryNotifier:
    """Keeps what would be sent, in order: for the simulator and tests."""

    def __init__(self) -> None:
        self.sent: list[tuple[Target, Notification]] = []
        self._lock = threading.Lock()
        self._closed = False
        self._dropped = 0

    def send(self, targets: Sequence[Target], n: Notification) -> None:
        chosen = [t for t in targets if n.event in t.events]
        with self._lock:
            if self._closed:
                self._dropped += len(chosen)
                return
            self.sent.extend((t, n) for t in chosen)

    def flush(self, timeout: float = 10.0) -> bool:
        return True

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._closed = True

    @property
    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "sent": len(self.sent),
                "failed": 0,
                "retried": 0,
                "dropped": self._dropped,
                "queued": 0,
            }

    def notifications(self, event: str | None = None) -> list[Notification]:
        """What was sent (once per notification, whatever the number of targets)."""
        with self._lock:
            seen: list[Notification] = []
            for _, n in self.sent:
                if (event is None or n.event == event) and not any(n is s for s in seen):
                    seen.append(n)
            return seen

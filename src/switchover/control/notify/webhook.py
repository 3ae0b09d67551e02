"""The webhook target: Slack-compatible JSON, HMAC-signed, POSTed and retried off-thread.

A :class:`Webhook` is an address (URL, optional secret, the events it subscribed to); a
plan's ``notify:`` list resolves to webhooks. The :class:`Notifier` delivers to them:
:meth:`Notifier.send` only enqueues, and one daemon thread POSTs the body
(:func:`~switchover.control.notify.slack.slack_body`) to every webhook that subscribed to
the event, so a slow or failing receiver never blocks or crashes the controller. The
headers and the signature scheme are in :mod:`switchover.control.notify.signature`.
:class:`WebhookTarget` is one webhook as a :class:`~switchover.control.notify.base.Target`.

2xx is success. 4xx other than 408/429, and redirects, fail at once. 5xx, 408, 429,
timeouts and connection errors are retried with exponential backoff and jitter, honouring
a numeric ``Retry-After``. Retries are re-scheduled on a heap rather than slept inline, so
one dead target delays the others by at most one request timeout.

Target URLs may themselves be secret (a Slack webhook URL is a credential): logs name a
target only by :meth:`Webhook.display` (scheme, host and port) and never the URL, the
secret or the signature.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

import httpx

from switchover.control.notify.base import EVENTS, Notification, check_events
from switchover.control.notify.signature import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from switchover.control.notify.slack import slack_body

log = logging.getLogger("switchover.notify")

USER_AGENT = "switchover"

_RETRY_STATUSES = frozenset({408, 429})
_MAX_EXPONENT = 32
_RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)


# --- the address ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Webhook:
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
        object.__setattr__(self, "events", check_events(self.events))

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
        return f"Webhook(url={self.display()!r}, secret={secret}, events={sorted(self.events)!r})"


class WebhookTarget:
    """One webhook as a :class:`~switchover.control.notify.base.Target`.

    It delivers through ``notifier`` (shared: whoever made it closes it) or, without one,
    through a :class:`Notifier` of its own that :meth:`close` closes.
    """

    def __init__(
        self,
        url: str,
        secret: str | None = None,
        events: Iterable[str] = EVENTS,
        *,
        notifier: Notifier | None = None,
    ) -> None:
        self.webhook = Webhook(url, secret, frozenset(events))
        self._own = notifier is None
        self.notifier = notifier if notifier is not None else Notifier()

    def send(self, notification: Notification) -> None:
        self.notifier.send([self.webhook], notification)

    def close(self) -> None:
        if self._own:
            self.notifier.close()

    def __repr__(self) -> str:
        return f"WebhookTarget({self.webhook!r})"


# --- delivery ------------------------------------------------------------------------------


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


@dataclass(slots=True, eq=False)
class _Delivery:
    target: Webhook
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

    def send(self, targets: Sequence[Webhook], n: Notification) -> None:
        """Enqueue one delivery per target subscribed to ``n.event``; never blocks or raises."""
        try:
            chosen = [t for t in targets if n.event in t.events]
            if not chosen:
                return
            body = slack_body(n)
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

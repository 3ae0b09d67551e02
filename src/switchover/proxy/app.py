"""The proxy itself: a plain ASGI application in front of a legacy and a candidate service.

For each request: find its route, refuse it if it breaks a limit (413, 503) or its
signature (401), decide the side from the migration's snapshot by the request's key,
forward it with httpx (pooled connections, bodies streamed both ways), fall back to
legacy where the route is safe to repeat, and record one observation into the
migration (side, status class, latency, time to the response head, fallback, the
outcome header's counters).

The request body is read whole only when something needs it before forwarding: a
signature to check, a ``json:`` key, a shadow copy, or a candidate request that may
have to be repeated on legacy. Otherwise it streams to the upstream as it arrives.
Responses always stream back chunk by chunk. ``/_switchover/livez``, ``/readyz`` and
``/metrics`` are the proxy's own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import httpx

from switchover.core.decision import Decision, Side
from switchover.core.redact import redact
from switchover.proxy import observe
from switchover.proxy.config import RESERVED_PREFIX, ProxyConfig, Route
from switchover.proxy.headers import request_headers, response_headers
from switchover.proxy.keys import RequestView, extract
from switchover.proxy.signature import verify
from switchover.sdk.client import Client

log = logging.getLogger("switchover.proxy")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

SHADOW_BODY_CAP = 256 * 1024
"""Bytes of each answer kept for a shadow comparison; a longer one compares as truncated."""
_LEGACY = Side.LEGACY.value
_CANDIDATE = Side.CANDIDATE.value
_perf = time.perf_counter
_JSON = [(b"content-type", b"application/json")]


class BodyTooLarge(Exception):
    """The request body passed ``max_body_bytes`` while it was being read."""


class ClientGone(Exception):
    """The caller disconnected before its request body ended."""


class Failure(Exception):
    """An upstream gave no usable answer: ``kind`` is what is recorded as the error type."""

    def __init__(self, kind: str, status: int) -> None:
        super().__init__(kind)
        self.kind = kind
        self.status = status


def log_event(level: int, event: str, **fields: Any) -> None:
    """One JSON line; callers pass no bodies, keys or secrets."""
    if log.isEnabledFor(level):
        log.log(level, json.dumps({"event": event, **fields}, default=str))


class ProxyApp:
    """ASGI app: ``uvicorn.run(ProxyApp(config, client))``.

    ``client`` (an SDK :class:`~switchover.sdk.client.Client`) gives the decisions and
    records the observations; the caller owns it and closes it after the server stops.
    ``transport`` replaces the pooled httpx transport built at start-up.
    """

    def __init__(
        self,
        config: ProxyConfig,
        client: Client,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        progress_interval: float = 30.0,
    ) -> None:
        self.config = config
        self.client = client
        self.recorder = client.recorder
        self.transport = transport
        self.progress_interval = progress_interval
        self.inflight = 0
        self.draining = False
        self.counts: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._progress: asyncio.Task[None] | None = None
        self._drop_request = frozenset({b"expect"})
        self._drop_response = frozenset({config.outcome_header.lower().encode()})
        self._outcome_header = config.outcome_header.lower().encode()
        t = config.timeouts
        self._timeouts = {
            _CANDIDATE: {
                "connect": t.connect,
                "read": t.candidate,
                "write": t.candidate,
                "pool": t.candidate,
            },
            _LEGACY: {"connect": t.connect, "read": t.legacy, "write": t.legacy, "pool": t.legacy},
        }
        self._bases = {_CANDIDATE: config.candidate, _LEGACY: config.legacy}

    # ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path.startswith(RESERVED_PREFIX):
                await self._own(path, send)
            else:
                await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        if self.transport is None:
            n = self.config.limits.max_concurrency
            self.transport = httpx.AsyncHTTPTransport(
                limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
                retries=0,
            )
        if self.progress_interval > 0:
            self._progress = asyncio.get_running_loop().create_task(self._report())
        log_event(
            logging.INFO,
            "proxy_started",
            migration=self.config.migration,
            routes=len(self.config.routes),
        )

    async def shutdown(self) -> None:
        """After the server stopped taking requests: shadows finish, records are flushed."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.config.drain.timeout)
        if self._progress is not None:
            self._progress.cancel()
        if self.transport is not None:
            await self.transport.aclose()
        await asyncio.to_thread(self.recorder.flush)
        log_event(logging.INFO, "proxy_stopped", **self.summary())

    def begin_drain(self) -> None:
        """SIGTERM: readiness answers 503 from now on; requests are still served."""
        if not self.draining:
            self.draining = True
            log_event(logging.INFO, "drain_started", inflight=self.inflight)

    def summary(self) -> dict[str, Any]:
        return {"inflight": self.inflight, **dict(sorted(self.counts.items()))}

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(self.progress_interval)
            log_event(logging.INFO, "progress", **self.summary())

    # the proxy's own endpoints ------------------------------------------------------------

    async def _own(self, path: str, send: Send) -> None:
        name = path[len(RESERVED_PREFIX) :]
        if name == "livez":
            await _answer(send, 200, {"live": True})
        elif name == "readyz":
            health = self.client.health()
            known = self.client.compiled(self.config.migration) is not None
            ready = not self.draining and self.transport is not None
            await _answer(
                send,
                200 if ready else 503,
                {
                    "ready": ready,
                    "draining": self.draining,
                    "migration": self.config.migration,
                    "migration_loaded": known,
                    "snapshot_stale": health["stale"],
                },
            )
        elif name == "metrics":
            from switchover.proxy.metrics import render

            body, content_type = render(self.config.migration, self.counts, self.inflight)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", content_type.encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
        else:
            await _answer(
                send,
                404,
                {"error": f"{path} is not one of the proxy's endpoints: livez, readyz, metrics"},
            )

    # one request --------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = _perf()
        cfg = self.config
        method = scope["method"]
        route = cfg.route_for(method, scope["path"])
        self.counts["requests"] += 1
        if route is None:
            self.counts["refused.no_route"] += 1
            await _answer(
                send, 404, {"error": f"no route of the proxy takes {method} {scope['path']}"}
            )
            return
        length, chunked = _body_framing(scope["headers"])
        if length is not None and length > cfg.limits.max_body_bytes:
            await self._too_large(send, route)
            return
        if self.inflight >= cfg.limits.max_concurrency:
            await self._refuse(
                send,
                route,
                503,
                "max_concurrency",
                f"the proxy is forwarding {cfg.limits.max_concurrency} requests "
                "already (max_concurrency); retry shortly or raise "
                "--max-concurrency",
                {"retry-after": "1"},
            )
            return
        self.inflight += 1
        try:
            await self._forward(scope, receive, send, route, bool(length) or chunked, started)
        finally:
            self.inflight -= 1

    async def _forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        has_body: bool,
        started: float,
    ) -> None:
        """One request within the limits: its body, signature, decision, and the side."""
        cfg = self.config
        signature = cfg.signature if route.signed else None
        buffered = (
            signature is not None
            or route.shadow
            or route.key.needs_body  # type: ignore[union-attr]
            or (route.tenant is not None and route.tenant.needs_body)
            or cfg.repeat_safe(route, scope["method"])
        )
        body: bytes | None = None
        if buffered or not has_body:
            try:
                body = await _read_body(receive, cfg.limits.max_body_bytes) if has_body else b""
            except BodyTooLarge:
                await self._too_large(send, route)
                return
            except ClientGone:
                return
        view = RequestView(scope["path"], scope["query_string"], scope["headers"], body)
        if signature is not None:
            given = view.header(signature.header.lower())
            if not verify(signature, body or b"", given):
                self.counts["refused.signature"] += 1
                log_event(
                    logging.WARNING,
                    "signature_refused",
                    operation=route.operation,
                    header=signature.header,
                    present=given is not None,
                )
                message = f"the {signature.header} signature is missing or does not match"
                await _answer(send, 401, {"error": message + " the body"})
                return
        key = extract(route.key, view)  # type: ignore[arg-type]
        tenant = None if route.tenant is None else extract(route.tenant, view)
        decision, context = self._decide(route, key, tenant)
        if route.shadow:
            await self._shadow(scope, send, route, body or b"", decision, context, tenant, started)
        else:
            await self._route(scope, receive, send, route, body, decision, tenant, started)

    def _decide(
        self, route: Route, key: str | None, tenant: str | None
    ) -> tuple[Decision, dict[str, str]]:
        compiled = self.client.compiled(self.config.migration)
        if compiled is None:
            return self.client.missing(self.config.migration, route.feature), {}
        context: dict[str, str] = {}
        if key is not None:
            context[compiled.migration.stickiness] = key
        if tenant is not None:
            context[compiled.tenant_key] = tenant
        return compiled.decide(route.feature, context), context

    # route -------------------------------------------------------------------------------

    async def _route(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: Route,
        body: bytes | None,
        decision: Decision,
        tenant: str | None,
        started: float,
    ) -> None:
        side = decision.side.value
        content: Any = body if body is not None else _stream_body(receive, self.config.limits)
        self.counts[f"side.{side}"] += 1
        try:
            response = await self._send(scope, side, content)
        except BodyTooLarge:
            await self._too_large(send, route)
            return
        except ClientGone:
            return
        except Failure as failure:
            if (
                side == _CANDIDATE
                and body is not None
                and self.config.repeat_safe(route, scope["method"])
            ):
                await self._fallback(scope, send, route, body, tenant, started, failure.kind)
                return
            await self._fail(send, route, side, failure, tenant, started)
            return
        if (
            side == _CANDIDATE
            and response.status_code >= 500
            and body is not None
            and self.config.repeat_safe(route, scope["method"])
        ):
            await response.aclose()
            await self._fallback(scope, send, route, body, tenant, started, "http_5xx")
            return
        await self._serve(send, route, side, response, tenant, started)

    async def _fallback(
        self,
        scope: Scope,
        send: Send,
        route: Route,
        body: bytes,
        tenant: str | None,
        started: float,
        kind: str,
    ) -> None:
        """The candidate failed on a route safe to repeat: legacy answers. Recorded like
        the SDK router's fallback: one candidate call, failed, ``fallback``, with the
        outcome of legacy's answer."""
        candidate_ms = (_perf() - started) * 1000.0
        self.counts["fallback"] += 1
        log_event(
            logging.WARNING,
            "fallback",
            operation=route.operation,
            error_type=kind,
            candidate_ms=round(candidate_ms, 3),
        )
        try:
            response = await self._send(scope, _LEGACY, body)
        except Failure as failure:
            self.counts["total_failure"] += 1
            self.recorder.record(
                self.config.migration,
                route.operation,
                _CANDIDATE,
                candidate_ms,
                False,
                kind,
                True,
                None,
                None,
                True,
                tenant=tenant,
            )
            log_event(
                logging.ERROR,
                "total_failure",
                operation=route.operation,
                candidate_error_type=kind,
                legacy_error_type=failure.kind,
            )
            await _answer(
                send,
                failure.status,
                {"error": f"the candidate failed ({kind}) and legacy too ({failure.kind})"},
            )
            return
        ttfb = (_perf() - started) * 1000.0
        status = response.status_code
        outcome_value = _header(response.headers.raw, self._outcome_header)
        await self._relay(send, response)
        self.recorder.record(
            self.config.migration,
            route.operation,
            _CANDIDATE,
            candidate_ms,
            False,
            kind,
            True,
            observe.outcome(status, outcome_value),
            tenant=tenant,
            first_chunk_ms=ttfb,
        )

    async def _serve(
        self,
        send: Send,
        route: Route,
        side: str,
        response: httpx.Response,
        tenant: str | None,
        started: float,
    ) -> None:
        ttfb = (_perf() - started) * 1000.0
        status = response.status_code
        outcome_value = _header(response.headers.raw, self._outcome_header)
        complete = await self._relay(send, response)
        ok = status < 500 and complete
        error = None if ok else ("midstream_error" if not complete else "http_5xx")
        self.recorder.record(
            self.config.migration,
            route.operation,
            side,
            (_perf() - started) * 1000.0,
            ok,
            error,
            False,
            observe.outcome(status, outcome_value),
            tenant=tenant,
            first_chunk_ms=ttfb,
        )

    async def _fail(
        self,
        send: Send,
        route: Route,
        side: str,
        failure: Failure,
        tenant: str | None,
        started: float,
    ) -> None:
        self.counts[f"error.{side}"] += 1
        log_event(
            logging.WARNING,
            "upstream_error",
            operation=route.operation,
            side=side,
            error_type=failure.kind,
        )
        self.recorder.record(
            self.config.migration,
            route.operation,
            side,
            (_perf() - started) * 1000.0,
            False,
            failure.kind,
            tenant=tenant,
        )
        await _answer(
            send,
            failure.status,
            {"error": f"the {side} service gave no answer ({failure.kind})", "side": side},
        )

    # shadow ------------------------------------------------------------------------------

    async def _shadow(
        self,
        scope: Scope,
        send: Send,
        route: Route,
        body: bytes,
        decision: Decision,
        context: dict[str, str],
        tenant: str | None,
        started: float,
    ) -> None:
        """Legacy answers; the candidate gets a copy in a task beside it, compared after."""
        legacy_done: asyncio.Future[tuple[int, Any] | None] | None = None
        if decision.reason.value not in ("kill_switch", "feature_off") and (
            route.shadow_sample >= 1.0 or random.random() < route.shadow_sample
        ):
            if self.inflight >= self.config.limits.max_concurrency:
                self.counts["shadow.skipped"] += 1
            else:
                legacy_done = asyncio.get_running_loop().create_future()
                task = asyncio.get_running_loop().create_task(
                    self._shadow_candidate(scope, route, body, context, tenant, legacy_done)
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        self.counts[f"side.{_LEGACY}"] += 1
        try:
            response = await self._send(scope, _LEGACY, body)
        except Failure as failure:
            if legacy_done is not None:
                legacy_done.set_result(None)
            await self._fail(send, route, _LEGACY, failure, tenant, started)
            return
        ttfb = (_perf() - started) * 1000.0
        status = response.status_code
        outcome_value = _header(response.headers.raw, self._outcome_header)
        kept: list[bytes] = []
        complete = await self._relay(send, response, kept)
        self.recorder.record(
            self.config.migration,
            route.operation,
            _LEGACY,
            (_perf() - started) * 1000.0,
            status < 500 and complete,
            None if status < 500 and complete else "http_5xx",
            False,
            observe.outcome(status, outcome_value),
            tenant=tenant,
            first_chunk_ms=ttfb,
        )
        if legacy_done is not None:
            data = b"".join(kept)
            legacy_done.set_result(
                (status, observe.body_value(data, len(data) > SHADOW_BODY_CAP))
                if complete
                else None
            )

    async def _shadow_candidate(
        self,
        scope: Scope,
        route: Route,
        body: bytes,
        context: dict[str, str],
        tenant: str | None,
        legacy_done: asyncio.Future[tuple[int, Any] | None],
    ) -> None:
        started = _perf()
        migration, op = self.config.migration, route.operation
        self.inflight += 1
        answer: tuple[int, Any] | None = None
        error: str | None = None
        ttfb = None
        try:
            response = await self._send(scope, _CANDIDATE, body)
            ttfb = (_perf() - started) * 1000.0
            try:
                data, truncated = await _read_capped(response, SHADOW_BODY_CAP)
            finally:
                await response.aclose()
            answer = (response.status_code, observe.body_value(data, truncated))
            if response.status_code >= 500:
                error = "http_5xx"
        except Failure as failure:
            error = failure.kind
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        finally:
            self.inflight -= 1
        elapsed = (_perf() - started) * 1000.0
        outcome = None if answer is None else observe.outcome(answer[0], None)
        self.recorder.record(
            migration,
            op,
            _CANDIDATE,
            elapsed,
            error is None,
            error,
            outcome=outcome,
            tenant=tenant,
            first_chunk_ms=ttfb,
        )
        legacy = await legacy_done
        if legacy is None:
            self.recorder.add_outcome(migration, op, _CANDIDATE, {"shadow.legacy_error": 1.0})
            return
        if answer is not None and observe.same_answer(legacy, answer):
            self.counts["shadow.match"] += 1
            self.recorder.add_outcome(migration, op, _CANDIDATE, {"shadow.match": 1.0})
            return
        kind = "mismatch" if answer is not None and error is None else "candidate_error"
        self.counts[f"shadow.{kind}"] += 1
        self.recorder.add_outcome(migration, op, _CANDIDATE, {f"shadow.{kind}": 1.0})
        shown: Any = (
            {"status": answer[0], "body": answer[1]} if answer is not None else {"error": error}
        )
        redactor = self.client.redactor
        self.recorder.add_sample(
            {
                "migration": migration,
                "operation": op,
                "kind": kind,
                "at": time.time(),
                "context": redact(context, redactor=redactor),
                "legacy": redact({"status": legacy[0], "body": legacy[1]}, redactor=redactor),
                "candidate": redact(shown, redactor=redactor),
                "candidate_ms": round(elapsed, 3),
            }
        )

    # upstream I/O ------------------------------------------------------------------------

    async def _send(self, scope: Scope, side: str, content: Any) -> httpx.Response:
        """The request on ``side``, up to its response head; failures as :class:`Failure`."""
        assert self.transport is not None, "the proxy serves after its start-up"
        target = self._bases[side] + scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        headers = request_headers(
            scope["headers"],
            scope.get("client"),
            scope.get("scheme", "http"),
            self._drop_request,
        )
        request = httpx.Request(
            scope["method"],
            target,
            headers=headers,
            content=content if content else None,
            extensions={"timeout": self._timeouts[side]},
        )
        try:
            return await self.transport.handle_async_request(request)
        except httpx.TimeoutException as exc:
            raise Failure("timeout", 504) from exc
        except httpx.ConnectError as exc:
            raise Failure("connect_error", 502) from exc
        except httpx.TransportError as exc:
            raise Failure(_snake(type(exc).__name__), 502) from exc

    async def _relay(
        self, send: Send, response: httpx.Response, keep: list[bytes] | None = None
    ) -> bool:
        """Stream ``response`` to the caller; False if the upstream broke off mid-way.
        ``keep`` collects up to :data:`SHADOW_BODY_CAP` bytes (and one more) of it."""
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response_headers(response.headers.raw, self._drop_response),
            }
        )
        kept = 0
        try:
            async for chunk in response.stream:  # type: ignore[union-attr]
                if not chunk:
                    continue
                if keep is not None and kept <= SHADOW_BODY_CAP:
                    keep.append(chunk)
                    kept += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.HTTPError as exc:
            log_event(logging.WARNING, "midstream_error", error_type=type(exc).__name__)
            return False
        finally:
            await response.aclose()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True

    # refusals ----------------------------------------------------------------------------

    async def _too_large(self, send: Send, route: Route) -> None:
        limit = self.config.limits.max_body_bytes
        await self._refuse(
            send,
            route,
            413,
            "max_body_bytes",
            f"the request body is larger than the proxy's max_body_bytes "
            f"({limit} bytes); send less or raise --max-body-bytes",
        )

    async def _refuse(
        self,
        send: Send,
        route: Route,
        status: int,
        limit: str,
        message: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.counts[f"refused.{limit}"] += 1
        log_event(logging.WARNING, "limit", operation=route.operation, limit=limit, status=status)
        await _answer(send, status, {"error": message, "limit": limit}, extra)


# helpers -----------------------------------------------------------------------------------


async def _answer(
    send: Send, status: int, payload: dict[str, Any], extra: dict[str, str] | None = None
) -> None:
    body = json.dumps(payload).encode()
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend((k.encode(), v.encode()) for k, v in extra.items())
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _body_framing(headers: Iterable[tuple[bytes, bytes]]) -> tuple[int | None, bool]:
    """The request's ``Content-Length`` (None if absent) and whether it is chunked."""
    length = None
    chunked = False
    for key, value in headers:
        if key == b"content-length":
            try:
                length = int(value)
            except ValueError:
                length = None
        elif key == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
    return length, chunked


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _stream_body(receive: Receive, limits: Any) -> AsyncIterator[bytes]:
    """The caller's body as it arrives, for a request forwarded without buffering."""
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise BodyTooLarge
            yield chunk
        if not message.get("more_body", False):
            return


async def _read_capped(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.stream:  # type: ignore[union-attr]
        size += len(chunk)
        if size > cap:
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


def _snake(name: str) -> str:
    out = "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")
    return out.removesuffix("_error") + "_error"

"""Run one operation on the decided side; fall back to legacy; shadow; record it all.

Route: the candidate's exception or timeout returns legacy's result and records a
fallback with the error type. If legacy then fails too, the caller gets legacy's
exception with the candidate's attached (``exc.candidate_error`` and a note): a total
failure, counted as such. A legacy call chosen directly that fails is recorded and
re-raised unchanged.

Shadow (GitHub Scientist's experiment, async): legacy is the control and is always
what the caller gets, at its own latency; the candidate runs concurrently with its own
timeout, its exceptions and slowness never reach the caller, and the comparison is
recorded when it is done. Every user callable (compare, outcome) is guarded: a
failure is counted and reported to one hook.

Streams (``route_stream``, ``route_stream_sync``, ``shadow_stream``): the candidate may
fall back only before its first chunk (it raised, or gave none within
``first_chunk_timeout``); after that the side is fixed and a failure is recorded as a
mid-stream error and raised. Closing or cancelling the caller's stream closes the side's.

Every shape runs on :class:`~switchover.sdk.executor.Executor`'s shared steps; the
methods here differ only in how they wait for a side.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import switchover.sdk.deadline as deadline
import switchover.sdk.stream as streams
from switchover.core.compare import Comparator, comparator
from switchover.core.decision import Side
from switchover.core.redact import redact
from switchover.sdk.executor import (
    DEFAULT_TIMEOUT,
    CandidateTimeout,
    Executor,
    OperationConfig,
    _awaitable,
    _error_type,
    timed_out,
)
from switchover.sdk.types import Outcome, RoutedHandle

__all__ = ["DEFAULT_TIMEOUT", "CandidateTimeout", "OperationConfig", "Router", "routed_decorator"]

_perf = time.perf_counter
_LEGACY = Side.LEGACY.value
_CANDIDATE = Side.CANDIDATE.value
_NO_KWARGS: dict[str, Any] = {}
_INCOMPLETE: Any = object()
"""Shadow streams: the caller closed legacy's stream before its end."""


class Router(Executor):
    """Routing for one migration of a client; created by its handle, not by users."""

    # route (async) ---------------------------------------------------------------------

    async def route(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        legacy: Callable[..., Any],
        candidate: Callable[..., Any],
        outcome: Outcome,
        timeout: float | None,
    ) -> Any:
        cfg = self.ops.get(operation) or self.config(operation)
        decision, tenant = self._decide(cfg, context)
        if decision.side is Side.CANDIDATE:
            limit = cfg.timeout if timeout is None else timeout
            started = _perf()
            try:
                # Executor._await_side's steps, in this frame
                entry = None if limit is None else deadline.start(limit)
                try:
                    result = candidate(*args, **kwargs)
                    if _awaitable(result):
                        result = await result
                except asyncio.CancelledError:
                    timed_out(entry, operation, limit)
                    raise
                finally:
                    if entry is not None:
                        deadline.finish(entry)
            except Exception as exc:
                elapsed = (_perf() - started) * 1000.0
                if self._no_fallback(cfg, operation, context, tenant, exc, elapsed):
                    raise
                return await self._fallback(
                    operation, context, tenant, args, kwargs, legacy, outcome, exc, elapsed
                )
            except BaseException:  # cancelled: a probe let through ended neither way
                if cfg.circuit is not None:
                    cfg.circuit.abandon()
                raise
            if cfg.circuit is not None:
                self._candidate_ok(cfg)
            self._served(operation, _CANDIDATE, started, tenant, outcome, result)
            return result
        started = _perf()
        try:
            result = legacy(*args, **kwargs)
            if _awaitable(result):
                result = await result
        except Exception as exc:
            self._failed(operation, _LEGACY, started, tenant, exc)
            raise
        self._served(operation, _LEGACY, started, tenant, outcome, result)
        return result

    async def _fallback(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        tenant: str | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        legacy: Callable[..., Any],
        outcome: Outcome,
        candidate_exc: Exception,
        candidate_ms: float,
    ) -> Any:
        try:
            result = legacy(*args, **kwargs)
            if _awaitable(result):
                result = await result
        except Exception as legacy_exc:
            self._total_failure(operation, context, tenant, candidate_exc, candidate_ms, legacy_exc)
            raise
        self._record_fallback(
            operation, context, tenant, candidate_exc, candidate_ms, outcome, result
        )
        return result

    # route (sync) ----------------------------------------------------------------------

    def route_sync(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        legacy: Callable[..., Any],
        candidate: Callable[..., Any],
        outcome: Outcome,
        timeout: float | None,
    ) -> Any:
        cfg = self.ops.get(operation) or self.config(operation)
        decision, tenant = self._decide(cfg, context)
        if decision.side is Side.CANDIDATE:
            limit = cfg.sync_timeout if timeout is None else timeout
            started = _perf()
            try:
                if limit is None:
                    result = candidate(*args, **kwargs)
                else:
                    result = self._call_side(candidate, args, kwargs, limit, operation)
            except Exception as exc:
                elapsed = (_perf() - started) * 1000.0
                if self._no_fallback(cfg, operation, context, tenant, exc, elapsed):
                    raise
                try:
                    result = legacy(*args, **kwargs)
                except Exception as legacy_exc:
                    self._total_failure(operation, context, tenant, exc, elapsed, legacy_exc)
                    raise
                self._record_fallback(operation, context, tenant, exc, elapsed, outcome, result)
                return result
            except BaseException:
                if cfg.circuit is not None:
                    cfg.circuit.abandon()
                raise
            if cfg.circuit is not None:
                self._candidate_ok(cfg)
            self._served(operation, _CANDIDATE, started, tenant, outcome, result)
            return result
        started = _perf()
        try:
            result = legacy(*args, **kwargs)
        except Exception as exc:
            self._failed(operation, _LEGACY, started, tenant, exc)
            raise
        self._served(operation, _LEGACY, started, tenant, outcome, result)
        return result

    # route (streams) -------------------------------------------------------------------

    def _first_chunk_limit(
        self, cfg: OperationConfig, first_chunk_timeout: float | None, sync: bool
    ) -> float | None:
        if first_chunk_timeout is not None:
            return first_chunk_timeout
        if cfg.first_chunk_timeout is not None:
            return cfg.first_chunk_timeout
        return cfg.sync_timeout if sync else cfg.timeout

    async def route_stream(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        legacy: Any,
        candidate: Any,
        first_chunk_timeout: float | None,
    ) -> AsyncIterator[Any]:
        """An async generator: the caller's ``async for`` runs it, ``aclose()`` closes it."""
        cfg = self.ops.get(operation) or self.config(operation)
        decision, tenant = self._decide(cfg, context)
        call = streams.StreamCall(self, cfg, operation, context, tenant, _perf())
        it: Any = None
        first: Any = streams.END
        if decision.side is Side.CANDIDATE:
            try:
                it, first = await self._await_side(
                    streams.start,
                    (candidate, args, kwargs),
                    _NO_KWARGS,
                    self._first_chunk_limit(cfg, first_chunk_timeout, False),
                    operation,
                    "candidate's first chunk of",
                )
            except Exception as exc:
                if call.candidate_failed(exc, _perf()):
                    raise
            except BaseException:
                if cfg.circuit is not None:
                    cfg.circuit.abandon()
                raise
            else:
                call.first_chunk(_CANDIDATE, _perf())
        if it is None:
            try:
                it, first = await streams.start(legacy, args, kwargs)
            except Exception as exc:
                call.legacy_failed(exc, _perf())
                raise
            call.first_chunk(_LEGACY, _perf())
        ended = first is streams.END
        try:
            if not ended:
                yield first
                async for chunk in it:
                    yield chunk
                ended = True
        except Exception as exc:
            call.midstream_error(exc, _perf())
            raise
        finally:
            try:
                if not ended:  # closed or cancelled by the caller, or failed: close the side
                    await streams.aclose(it)
            finally:
                call.end(_perf())

    def route_stream_sync(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        legacy: Any,
        candidate: Any,
        first_chunk_timeout: float | None,
    ) -> Iterator[Any]:
        """The synchronous twin: a generator (a first-chunk timeout needs a worker thread)."""
        cfg = self.ops.get(operation) or self.config(operation)
        decision, tenant = self._decide(cfg, context)
        call = streams.StreamCall(self, cfg, operation, context, tenant, _perf())
        it: Any = None
        first: Any = streams.END
        if decision.side is Side.CANDIDATE:
            try:
                it, first = self._call_side(
                    streams.start_sync,
                    (candidate, args, kwargs),
                    _NO_KWARGS,
                    self._first_chunk_limit(cfg, first_chunk_timeout, True),
                    operation,
                    "candidate's first chunk of",
                )
            except Exception as exc:
                if call.candidate_failed(exc, _perf()):
                    raise
            except BaseException:
                if cfg.circuit is not None:
                    cfg.circuit.abandon()
                raise
            else:
                call.first_chunk(_CANDIDATE, _perf())
        if it is None:
            try:
                it, first = streams.start_sync(legacy, args, kwargs)
            except Exception as exc:
                call.legacy_failed(exc, _perf())
                raise
            call.first_chunk(_LEGACY, _perf())
        try:
            if first is not streams.END:
                yield first
                yield from it
        except Exception as exc:
            call.midstream_error(exc, _perf())
            raise
        finally:
            try:
                streams.close(it)
            finally:
                call.end(_perf())

    # shadow ----------------------------------------------------------------------------

    def _shadow_start(
        self,
        cfg: OperationConfig,
        operation: str,
        context: Mapping[str, Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        candidate: Callable[..., Any],
        compare: str | Comparator | None,
        sample: float,
        timeout: float | None,
    ) -> tuple[str | None, asyncio.Future[tuple[bool, Any]] | None]:
        """Decide; start the candidate beside legacy if it is to run. The future is
        legacy's result, for the comparison."""
        compare_fn = comparator(compare)
        decision, tenant = self._decide(cfg, context, False)
        run_candidate = decision.reason.value not in ("kill_switch", "feature_off") and (
            sample >= 1.0 or random.random() < sample
        )
        if not run_candidate:
            return tenant, None
        loop = asyncio.get_running_loop()
        legacy_done: asyncio.Future[tuple[bool, Any]] = loop.create_future()
        task = loop.create_task(
            self._shadow_candidate(
                operation,
                context,
                tenant,
                args,
                kwargs,
                candidate,
                compare_fn,
                cfg.timeout if timeout is None else timeout,
                legacy_done,
            )
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return tenant, legacy_done

    async def shadow(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        legacy: Callable[..., Any],
        candidate: Callable[..., Any],
        compare: str | Comparator | None,
        sample: float,
        outcome: Outcome,
        timeout: float | None,
    ) -> Any:
        cfg = self.ops.get(operation) or self.config(operation)
        tenant, legacy_done = self._shadow_start(
            cfg, operation, context, args, kwargs, candidate, compare, sample, timeout
        )
        started = _perf()
        try:
            result = legacy(*args, **kwargs)
            if _awaitable(result):
                result = await result
        except Exception as exc:
            self._failed(operation, _LEGACY, started, tenant, exc)
            if legacy_done is not None:
                legacy_done.set_result((False, exc))
            raise
        except BaseException as exc:  # the caller was cancelled: nothing to compare
            if legacy_done is not None:
                legacy_done.set_result((False, exc))
            raise
        self._served(operation, _LEGACY, started, tenant, outcome, result)
        if legacy_done is not None:
            legacy_done.set_result((True, result))
        return result

    async def shadow_stream(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        legacy: Any,
        candidate: Any,
        compare: str | Comparator | None,
        sample: float,
        timeout: float | None,
    ) -> AsyncIterator[Any]:
        """Legacy's chunks, as they come; the candidate's stream is consumed in a task
        beside it (``timeout`` for the whole of it) and the two lists of chunks are
        compared once both ended."""
        cfg = self.ops.get(operation) or self.config(operation)
        tenant, legacy_done = self._shadow_start(
            cfg,
            operation,
            context,
            (candidate, args, kwargs),
            _NO_KWARGS,
            streams.collect,
            compare,
            sample,
            timeout,
        )
        call = streams.StreamCall(self, cfg, operation, context, tenant, _perf())
        chunks: list[Any] = []
        try:
            it, first = await streams.start(legacy, args, kwargs)
        except Exception as exc:
            call.legacy_failed(exc, _perf())
            if legacy_done is not None:
                legacy_done.set_result((False, exc))
            raise
        call.first_chunk(_LEGACY, _perf())
        complete = False
        try:
            if first is not streams.END:
                chunks.append(first)
                yield first
                async for chunk in it:
                    chunks.append(chunk)
                    yield chunk
            complete = True
        except Exception as exc:
            call.midstream_error(exc, _perf())
            if legacy_done is not None and not legacy_done.done():
                legacy_done.set_result((False, exc))
            raise
        finally:
            try:
                await streams.aclose(it)
            finally:
                call.end(_perf())
                if legacy_done is not None and not legacy_done.done():
                    legacy_done.set_result((True, chunks) if complete else (False, _INCOMPLETE))

    async def _shadow_candidate(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        tenant: str | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        candidate: Callable[..., Any],
        compare_fn: Comparator,
        limit: float | None,
        legacy_done: asyncio.Future[tuple[bool, Any]],
    ) -> None:
        recorder = self.view.recorder
        name = self.name
        started = _perf()
        candidate_exc: BaseException | None = None
        value: Any = None
        try:
            value = await self._await_side(
                candidate, args, kwargs, limit, operation, "shadow candidate"
            )
        except Exception as exc:
            candidate_exc = exc
        elapsed = (_perf() - started) * 1000.0
        recorder.record(
            name,
            operation,
            _CANDIDATE,
            elapsed,
            candidate_exc is None,
            None if candidate_exc is None else _error_type(candidate_exc),
            tenant=tenant,
        )
        legacy_ok, legacy_value = await legacy_done
        if not legacy_ok:
            kind = "shadow.incomplete" if legacy_value is _INCOMPLETE else "shadow.legacy_error"
            recorder.add_outcome(name, operation, _CANDIDATE, {kind: 1.0})
            return
        if candidate_exc is not None:
            kind = "candidate_error"
            shown: Any = {"error_type": _error_type(candidate_exc), "error": str(candidate_exc)}
        else:
            try:
                same = bool(compare_fn(legacy_value, value))
            except Exception as exc:
                self._guard("compare", exc)
                recorder.add_outcome(name, operation, _CANDIDATE, {"shadow.compare_error": 1.0})
                return
            if same:
                recorder.add_outcome(name, operation, _CANDIDATE, {"shadow.match": 1.0})
                return
            kind, shown = "mismatch", value
        recorder.add_outcome(name, operation, _CANDIDATE, {f"shadow.{kind}": 1.0})
        recorder.add_sample(
            {
                "migration": name,
                "operation": operation,
                "kind": kind,
                "at": time.time(),
                "context": redact(dict(context or {}), redactor=self.redactor),
                "legacy": redact(legacy_value, redactor=self.redactor),
                "candidate": redact(shown, redactor=self.redactor),
                "candidate_ms": round(elapsed, 3),
            }
        )


def routed_decorator(
    handle: RoutedHandle,
    operation: str,
    legacy: Callable[..., Any],
    context_from: Callable[..., Mapping[str, Any]] | str | None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``@m.routed("tts", legacy=legacy_tts)`` on the candidate function."""

    def context_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Mapping[str, Any] | None:
        if callable(context_from):
            return context_from(*args, **kwargs)
        key = context_from or "context"
        return kwargs.pop(key, None)

    def decorate(candidate: Callable[..., Any]) -> Callable[..., Any]:
        import functools

        if inspect.iscoroutinefunction(candidate):

            @functools.wraps(candidate)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                ctx = context_of(args, kwargs)
                return await handle.route(
                    operation, ctx, *args, legacy=legacy, candidate=candidate, **kwargs
                )

            return async_wrapper

        @functools.wraps(candidate)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = context_of(args, kwargs)
            return handle.route_sync(
                operation, ctx, *args, legacy=legacy, candidate=candidate, **kwargs
            )

        return sync_wrapper

    return decorate

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
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import switchover.sdk.deadline as deadline
from switchover.core.compare import Comparator, comparator
from switchover.core.decision import Decision, Side
from switchover.core.observation import validate_outcome
from switchover.core.redact import redact, redact_text
from switchover.sdk.types import ErrorHook, Outcome, RoutedHandle, SnapshotView

log = logging.getLogger("switchover.router")

DEFAULT_TIMEOUT = 10.0
_perf = time.perf_counter
_EMPTY: Mapping[str, Any] = {}
_LEGACY = Side.LEGACY.value
_CANDIDATE = Side.CANDIDATE.value


@dataclass(slots=True)
class OperationConfig:
    feature: str | None
    timeout: float | None
    """Seconds; async calls default to DEFAULT_TIMEOUT."""
    sync_timeout: float | None = None
    """Seconds for route_sync: abandoning a sync call needs a worker thread, so it is
    paid for only when set (``configure(op, timeout=…)`` sets both)."""


class CandidateTimeout(TimeoutError):
    """The candidate did not answer within its operation's timeout."""


async def _probe() -> None:
    return None


_probe_coroutine = _probe()
_COROUTINE = type(_probe_coroutine)
_probe_coroutine.close()


def _awaitable(value: Any, _isawaitable: Any = inspect.isawaitable) -> bool:
    """``inspect.isawaitable`` with a fast path for coroutines, the common case."""
    return value.__class__ is _COROUTINE or _isawaitable(value)


def _error_type(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout"
    return type(exc).__name__


def _log_event(event: str, **fields: Any) -> None:
    """One structured (JSON) log line; values are redacted of PII and keys."""
    if log.isEnabledFor(logging.WARNING):
        log.warning(json.dumps({"event": event, **redact(fields)}, default=str))


def _attach(legacy_exc: BaseException, candidate_exc: BaseException) -> None:
    legacy_exc.candidate_error = candidate_exc  # type: ignore[attr-defined]
    legacy_exc.add_note(
        "switchover: the candidate failed first with "
        f"{type(candidate_exc).__name__}: {redact_text(str(candidate_exc))[:300]}"
    )


class Router:
    """Routing for one migration of a client; created by its handle, not by users."""

    def __init__(self, name: str, view: SnapshotView, error_hook: ErrorHook | None = None) -> None:
        self.name = name
        self.view = view
        self.error_hook = error_hook
        self.ops: dict[str, OperationConfig] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    # configuration ---------------------------------------------------------------------

    def config(self, operation: str) -> OperationConfig:
        cfg = self.ops.get(operation)
        if cfg is None:
            cfg = self.ops[operation] = OperationConfig(operation, DEFAULT_TIMEOUT)
        return cfg

    def _guard(self, what: str, exc: BaseException) -> None:
        if self.error_hook is not None:
            try:
                self.error_hook(what, exc)
            except Exception:
                log.exception("switchover: the error hook itself failed")
        else:
            log.warning("switchover: %s raised %s", what, type(exc).__name__)

    def _outcome(self, outcome: Outcome, result: Any) -> Mapping[str, float] | None:
        """The call's outcome counters; a bad one is reported, never raised to the caller."""
        try:
            value = outcome(result) if callable(outcome) else outcome
            return validate_outcome(value)
        except Exception as exc:
            self._guard("outcome", exc)
            return None

    def _decide(
        self, feature: str | None, context: Mapping[str, Any] | None
    ) -> tuple[Decision, str | None]:
        """The decision, and the caller's tenant for per-tenant counts."""
        compiled = self.view.compiled(self.name)
        if compiled is None:
            return self.view.missing(self.name, feature), None
        if not context:
            return compiled.decide(feature, _EMPTY), None
        tenant = context.get(compiled.tenant_key)
        if tenant is not None and tenant.__class__ is not str:
            tenant = str(tenant)
        return compiled.decide(feature, context), tenant

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
        decision, tenant = self._decide(cfg.feature, context)
        if decision.side is Side.CANDIDATE:
            limit = cfg.timeout if timeout is None else timeout
            started = _perf()
            try:
                if limit is None:
                    result = candidate(*args, **kwargs)
                    if _awaitable(result):
                        result = await result
                else:
                    entry = deadline.start(limit)
                    try:
                        result = candidate(*args, **kwargs)
                        if _awaitable(result):
                            result = await result
                    except asyncio.CancelledError:
                        if deadline.finish(entry):
                            raise CandidateTimeout(
                                f"candidate {operation!r} took longer than {limit} s"
                            ) from None
                        raise
                    finally:
                        deadline.finish(entry)
            except Exception as exc:
                elapsed = (_perf() - started) * 1000.0
                return await self._fallback(
                    operation, context, tenant, args, kwargs, legacy, outcome, exc, elapsed
                )
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

    def _served(
        self,
        operation: str,
        side: str,
        started: float,
        tenant: str | None,
        outcome: Outcome,
        result: Any,
    ) -> None:
        self.view.recorder.record(
            self.name,
            operation,
            side,
            (_perf() - started) * 1000.0,
            True,
            None,
            False,
            None if outcome is None else self._outcome(outcome, result),
            tenant=tenant,
        )

    def _failed(
        self, operation: str, side: str, started: float, tenant: str | None, exc: BaseException
    ) -> None:
        self.view.recorder.record(
            self.name,
            operation,
            side,
            (_perf() - started) * 1000.0,
            False,
            _error_type(exc),
            tenant=tenant,
        )

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

    def _record_fallback(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        tenant: str | None,
        candidate_exc: BaseException,
        candidate_ms: float,
        outcome: Outcome,
        result: Any,
    ) -> None:
        error_type = _error_type(candidate_exc)
        self.view.recorder.record(
            self.name,
            operation,
            _CANDIDATE,
            candidate_ms,
            False,
            error_type,
            True,
            None if outcome is None else self._outcome(outcome, result),
            tenant=tenant,
        )
        _log_event(
            "fallback",
            migration=self.name,
            operation=operation,
            error_type=error_type,
            error=str(candidate_exc)[:500],
            candidate_ms=round(candidate_ms, 3),
            context=dict(context or {}),
        )

    def _total_failure(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        tenant: str | None,
        candidate_exc: BaseException,
        candidate_ms: float,
        legacy_exc: BaseException,
    ) -> None:
        error_type = _error_type(candidate_exc)
        self.view.recorder.record(
            self.name,
            operation,
            _CANDIDATE,
            candidate_ms,
            False,
            error_type,
            True,
            None,
            None,
            True,
            tenant=tenant,
        )
        _attach(legacy_exc, candidate_exc)
        _log_event(
            "total_failure",
            migration=self.name,
            operation=operation,
            error_type=error_type,
            candidate_error_type=error_type,
            candidate_error=str(candidate_exc)[:500],
            legacy_error_type=type(legacy_exc).__name__,
            legacy_error=str(legacy_exc)[:500],
            context=dict(context or {}),
        )

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
        decision, tenant = self._decide(cfg.feature, context)
        if decision.side is Side.CANDIDATE:
            limit = cfg.sync_timeout if timeout is None else timeout
            started = _perf()
            try:
                if limit is None:
                    result = candidate(*args, **kwargs)
                else:
                    # a thread is the only way to stop waiting for a sync call; the call
                    # itself runs on to its end in that thread
                    future = self._executor().submit(candidate, *args, **kwargs)
                    try:
                        result = future.result(timeout=limit)
                    except concurrent.futures.TimeoutError:
                        raise CandidateTimeout(
                            f"candidate {operation!r} took longer than {limit} s"
                        ) from None
            except Exception as exc:
                elapsed = (_perf() - started) * 1000.0
                try:
                    result = legacy(*args, **kwargs)
                except Exception as legacy_exc:
                    self._total_failure(operation, context, tenant, exc, elapsed, legacy_exc)
                    raise
                self._record_fallback(operation, context, tenant, exc, elapsed, outcome, result)
                return result
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

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=32, thread_name_prefix=f"switchover-{self.name}"
            )
        return self._pool

    # shadow ----------------------------------------------------------------------------

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
        compare_fn = comparator(compare)
        decision, tenant = self._decide(cfg.feature, context)
        run_candidate = decision.reason.value not in ("kill_switch", "feature_off") and (
            sample >= 1.0 or random.random() < sample
        )
        legacy_done: asyncio.Future[tuple[bool, Any]] | None = None
        if run_candidate:
            loop = asyncio.get_running_loop()
            legacy_done = loop.create_future()
            limit = cfg.timeout if timeout is None else timeout
            task = loop.create_task(
                self._shadow_candidate(
                    operation,
                    context,
                    tenant,
                    args,
                    kwargs,
                    candidate,
                    compare_fn,
                    limit,
                    legacy_done,
                )
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
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
            if limit is None:
                value = candidate(*args, **kwargs)
                if _awaitable(value):
                    value = await value
            else:
                entry = deadline.start(limit)
                try:
                    value = candidate(*args, **kwargs)
                    if _awaitable(value):
                        value = await value
                except asyncio.CancelledError:
                    if deadline.finish(entry):
                        raise CandidateTimeout(
                            f"shadow candidate {operation!r} took longer than {limit} s"
                        ) from None
                    raise
                finally:
                    deadline.finish(entry)
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
            recorder.add_outcome(name, operation, _CANDIDATE, {"shadow.legacy_error": 1.0})
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
                "context": redact(dict(context or {})),
                "legacy": redact(legacy_value),
                "candidate": redact(shown),
                "candidate_ms": round(elapsed, 3),
            }
        )

    async def drain(self) -> None:
        """Wait for shadow candidates still running (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


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

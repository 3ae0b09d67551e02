"""The steps every routed call shares, whatever its shape (STYLE lesson 16).

``route``, ``route_sync``, ``shadow`` and the stream routes differ only in how they
wait for a side (await, a worker thread, a task beside, chunk by chunk); the deciding
(snapshot, call pin, circuit), the deadlines, the candidate-failure policy (circuit,
``fallback=False``), the recording and the hooks are here, once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import switchover.sdk.deadline as deadline
import switchover.sdk.telemetry as telemetry
from switchover.core.decision import Decision, Side, circuit_open
from switchover.core.observation import validate_outcome
from switchover.core.redact import Redactor, redact, redact_text
from switchover.sdk.circuit import DEFAULT_POLICY, Circuit, CircuitPolicy
from switchover.sdk.pin import PINS, Pin
from switchover.sdk.types import ErrorHook, Outcome, SnapshotView

log = logging.getLogger("switchover.router")

DEFAULT_TIMEOUT = 10.0
_perf = time.perf_counter
_EMPTY: Mapping[str, Any] = {}
_LEGACY = Side.LEGACY.value
_CANDIDATE = Side.CANDIDATE.value
_NO_KWARGS: dict[str, Any] = {}


@dataclass(slots=True)
class OperationConfig:
    feature: str | None
    timeout: float | None
    """Seconds; async calls default to DEFAULT_TIMEOUT."""
    sync_timeout: float | None = None
    """Seconds for route_sync: abandoning a sync call needs a worker thread, so it is
    paid for only when set (``configure(op, timeout=…)`` sets both)."""
    fallback: bool = True
    """False: a candidate failure is raised, not repeated on legacy (side effects)."""
    first_chunk_timeout: float | None = None
    """Streams: seconds to the candidate's first chunk (None: ``timeout``)."""
    circuit_policy: CircuitPolicy | None = DEFAULT_POLICY
    circuit: Circuit | None = None
    """Built at the operation's first candidate failure."""


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


def _log_event(event: str, _redactor: Redactor | None = None, **fields: Any) -> None:
    """One structured (JSON) log line; values are redacted of PII and keys (by
    ``_redactor``, the default redactor when None)."""
    if log.isEnabledFor(logging.WARNING):
        shown = redact(fields, redactor=_redactor)
        log.warning(json.dumps({"event": event, **shown}, default=str))


def _attach(
    legacy_exc: BaseException, candidate_exc: BaseException, redactor: Redactor | None = None
) -> None:
    legacy_exc.candidate_error = candidate_exc  # type: ignore[attr-defined]
    text = redact_text(str(candidate_exc), redactor=redactor)
    legacy_exc.add_note(
        f"switchover: the candidate failed first with {type(candidate_exc).__name__}: {text[:300]}"
    )


def timed_out(
    entry: deadline.Entry | None, operation: str, limit: float | None, what: str = "candidate"
) -> None:
    """On a cancellation: raise :class:`CandidateTimeout` if it was the deadline's."""
    if entry is not None and deadline.finish(entry):
        raise CandidateTimeout(f"{what} {operation!r} took longer than {limit} s") from None


class Executor:
    """Deciding, deadlines, failure policy, recording and hooks for one migration."""

    def __init__(
        self,
        name: str,
        view: SnapshotView,
        error_hook: ErrorHook | None = None,
        monotonic: Callable[[], float] | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.name = name
        self.view = view
        self.redactor = redactor
        """What redacts log lines, exception notes and shadow samples (None: the default)."""
        self.error_hook = error_hook
        self.monotonic = monotonic or time.monotonic
        self.ops: dict[str, OperationConfig] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.telemetry = telemetry.for_migration(name)
        """Spans and GenAI metrics; None without OpenTelemetry installed."""

    def _log(self, event: str, **fields: Any) -> None:
        _log_event(event, self.redactor, **fields)

    # configuration ---------------------------------------------------------------------

    def config(self, operation: str) -> OperationConfig:
        cfg = self.ops.get(operation)
        if cfg is None:
            cfg = self.ops[operation] = OperationConfig(operation, DEFAULT_TIMEOUT)
        return cfg

    def circuit_state(self, operation: str) -> str:
        circuit = self.config(operation).circuit
        return "closed" if circuit is None else circuit.state

    # hooks -----------------------------------------------------------------------------

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

    # deciding --------------------------------------------------------------------------

    def _decide(
        self,
        cfg: OperationConfig,
        context: Mapping[str, Any] | None,
        breaker: bool = True,
        _pins: Callable[[], Mapping[str, Pin] | None] = PINS.get,
    ) -> tuple[Decision, str | None]:
        """The decision (snapshot or call pin, then circuit), and the caller's tenant.
        ``breaker=False`` (shadow, which always serves legacy) leaves the circuit alone:
        it must not take the probe it would never report on."""
        pins = _pins()
        pin = None if pins is None else pins.get(self.name)
        if pin is not None:
            decision: Decision = self.decide_pinned(pin, cfg.feature)
            tenant = pin.tenant
        else:
            compiled = self.view.compiled(self.name)
            if compiled is None:
                return self.view.missing(self.name, cfg.feature), None
            if not context:
                decision, tenant = compiled.decide(cfg.feature, _EMPTY), None
            else:
                tenant = context.get(compiled.tenant_key)
                if tenant is not None and tenant.__class__ is not str:
                    tenant = str(tenant)
                decision = compiled.decide(cfg.feature, context)
        circuit = cfg.circuit
        if (
            circuit is not None
            and breaker
            and decision.side is Side.CANDIDATE
            and not circuit.allow()
        ):
            cached = circuit.decisions.get(id(decision))
            if cached is None or cached[0] is not decision:
                if len(circuit.decisions) > 64:  # decisions of old snapshots
                    circuit.decisions.clear()
                cached = circuit.decisions[id(decision)] = (decision, circuit_open(decision))
            decision = cached[1]
        if self.telemetry is not None:
            self.telemetry.decided(cfg.feature, decision)
        return decision, tenant

    def decide_pinned(self, pin: Pin, feature: str | None) -> Decision:
        return pin.decide(feature, self.view.compiled(self.name))

    # the candidate's failure policy ---------------------------------------------------

    def _candidate_ok(self, cfg: OperationConfig) -> None:
        circuit = cfg.circuit
        if circuit is not None:
            circuit.success()

    def _candidate_failed(self, cfg: OperationConfig, operation: str) -> None:
        policy = cfg.circuit_policy
        if policy is None:
            return
        circuit = cfg.circuit
        if circuit is None:
            circuit = Circuit(operation, policy, self.monotonic, self._circuit_changed)
            cfg.circuit = circuit
        circuit.failure()

    def _circuit_changed(self, operation: str, old: str, new: str) -> None:
        try:
            counter = {f"circuit.{new}": 1.0}
            self.view.recorder.add_outcome(self.name, operation, _CANDIDATE, counter)
        except Exception as exc:  # never into the caller
            self._guard("circuit", exc)
        self._log("circuit", migration=self.name, operation=operation, old=old, new=new)

    def _no_fallback(
        self,
        cfg: OperationConfig,
        operation: str,
        context: Mapping[str, Any] | None,
        tenant: str | None,
        exc: BaseException,
        elapsed_ms: float,
        first_chunk_ms: float | None = None,
    ) -> bool:
        """After a candidate failure: True to fall back to legacy; else it is recorded
        (``configure(op, fallback=False)``) and the caller re-raises it."""
        self._candidate_failed(cfg, operation)
        if cfg.fallback:
            return False
        error_type = _error_type(exc)
        self._record(operation, _CANDIDATE, elapsed_ms, False, error_type, tenant=tenant)
        self._log(
            "candidate_failure",
            migration=self.name,
            operation=operation,
            error_type=error_type,
            error=str(exc)[:500],
            candidate_ms=round(elapsed_ms, 3),
            fallback=False,
            context=dict(context or {}),
        )
        return True

    # waiting for a side ----------------------------------------------------------------

    async def _await_side(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        limit: float | None,
        operation: str,
        what: str = "candidate",
    ) -> Any:
        """``fn(*args, **kwargs)``, awaited if awaitable, within ``limit`` seconds.

        ``route`` spells these same steps out in its own frame (one coroutine less on
        the hottest path): :func:`deadline.start`, the call, :func:`timed_out` on a
        cancellation, :func:`deadline.finish`."""
        entry = None if limit is None else deadline.start(limit)
        try:
            result = fn(*args, **kwargs)
            if _awaitable(result):
                result = await result
            return result
        except asyncio.CancelledError:
            timed_out(entry, operation, limit, what)
            raise
        finally:
            if entry is not None:
                deadline.finish(entry)

    def _call_side(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        limit: float | None,
        operation: str,
        what: str = "candidate",
    ) -> Any:
        """``fn(*args, **kwargs)`` in this thread, or waited for ``limit`` s in a worker."""
        if limit is None:
            return fn(*args, **kwargs)
        # a thread is the only way to stop waiting for a sync call; the call itself runs
        # on to its end in that thread
        future = self._executor().submit(fn, *args, **kwargs)
        try:
            return future.result(timeout=limit)
        except concurrent.futures.TimeoutError:
            raise CandidateTimeout(f"{what} {operation!r} took longer than {limit} s") from None

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=32, thread_name_prefix=f"switchover-{self.name}"
            )
        return self._pool

    # recording -------------------------------------------------------------------------

    def _record(
        self,
        operation: str,
        side: str,
        latency_ms: float,
        ok: bool = True,
        error_type: str | None = None,
        fallback: bool = False,
        outcome: Mapping[str, float] | None = None,
        total_failure: bool = False,
        tenant: str | None = None,
        first_chunk_ms: float | None = None,
    ) -> None:
        """One observation (``first_chunk_ms`` for a stream)."""
        self.view.recorder.record(
            self.name,
            operation,
            side,
            latency_ms,
            ok,
            error_type,
            fallback,
            outcome,
            None,
            total_failure,
            tenant=tenant,
            first_chunk_ms=first_chunk_ms,
        )
        if self.telemetry is not None:
            self.telemetry.observed(
                operation, side, latency_ms, ok, error_type, fallback, total_failure, first_chunk_ms
            )

    def _served(
        self,
        operation: str,
        side: str,
        started: float,
        tenant: str | None,
        outcome: Outcome,
        result: Any,
    ) -> None:
        latency_ms = (_perf() - started) * 1000.0
        self.view.recorder.record(
            self.name,
            operation,
            side,
            latency_ms,
            True,
            None,
            False,
            None if outcome is None else self._outcome(outcome, result),
            tenant=tenant,
        )
        if self.telemetry is not None:
            self.telemetry.observed(operation, side, latency_ms, True, None, False, False, None)

    def _failed(
        self,
        operation: str,
        side: str,
        started: float,
        tenant: str | None,
        exc: BaseException,
        first_chunk_ms: float | None = None,
    ) -> None:
        self._record(
            operation,
            side,
            (_perf() - started) * 1000.0,
            False,
            _error_type(exc),
            tenant=tenant,
            first_chunk_ms=first_chunk_ms,
        )

    def _record_fallback(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        tenant: str | None,
        candidate_exc: BaseException,
        candidate_ms: float,
        outcome: Outcome,
        result: Any,
        first_chunk_ms: float | None = None,
    ) -> None:
        error_type = _error_type(candidate_exc)
        self._record(
            operation,
            _CANDIDATE,
            candidate_ms,
            False,
            error_type,
            True,
            None if outcome is None else self._outcome(outcome, result),
            tenant=tenant,
            first_chunk_ms=first_chunk_ms,
        )
        self._log(
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
        self._record(
            operation, _CANDIDATE, candidate_ms, False, error_type, True, None, True, tenant
        )
        _attach(legacy_exc, candidate_exc, self.redactor)
        self._log(
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

    # lifecycle -------------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait for shadow candidates still running (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

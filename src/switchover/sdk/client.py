"""``switchover.connect(url)``: decisions in about a microsecond, from a local snapshot.

The client loads every migration once, compiles each for fast decisions, and keeps
them fresh from a background thread: every ``refresh_interval`` seconds it asks its
backend for the version and reloads when it moved; on PostgreSQL it also waits on
LISTEN/NOTIFY, so a change reaches it within milliseconds. If the backend becomes
unreachable the last snapshot keeps serving and :meth:`Client.health` reports how
stale it is; with no snapshot at all every decision is legacy, reason
``store_unreachable``. :meth:`MigrationHandle.decide` never raises for a store problem.

The client talks to one :class:`~switchover.sdk.backends.Backend` and never asks which
kind: the store, a switchover server, or memory (``Client(MemoryBackend([...]))``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from switchover.core.clock import Clock, SystemClock
from switchover.core.compare import Comparator
from switchover.core.decision import (
    CompiledMigration,
    Decision,
    Side,
    unknown_migration,
    unreachable,
)
from switchover.core.migration import Migration
from switchover.core.observation import validate_outcome
from switchover.core.redact import Redactor
from switchover.core.scores import score_counters, validate_scores
from switchover.sdk.backends import Backend, SnapshotSource, as_backend, backend_for
from switchover.sdk.circuit import CircuitPolicy
from switchover.sdk.pin import Pin, PinnedCall
from switchover.sdk.recorder import DEFAULT_FLUSH_INTERVAL, Recorder
from switchover.sdk.router import Router, routed_decorator
from switchover.sdk.types import ErrorHook, Outcome

log = logging.getLogger("switchover.sdk")

_EMPTY: Mapping[str, Any] = {}


class MigrationHandle:
    """One migration as seen by this process."""

    __slots__ = ("_client", "_router", "name")

    def __init__(self, client: Client, name: str) -> None:
        self._client = client
        self.name = name
        self._router = Router(
            name, client, client.error_hook, client._clock.monotonic, client.redactor
        )

    # routing ---------------------------------------------------------------------------

    def configure(
        self,
        operation: str,
        *,
        feature: str | object | None = ...,
        timeout: float | object | None = ...,
        fallback: bool | object = ...,
        first_chunk_timeout: float | object | None = ...,
        circuit: CircuitPolicy | object | None = ...,
    ) -> MigrationHandle:
        """Map ``operation`` to a feature (default: same name; None: the migration alone)
        and set its candidate timeout in seconds (None: no timeout).

        Without one, ``route`` and ``shadow`` give the candidate 10 s; ``route_sync`` waits
        for it, since abandoning a sync call costs a worker thread per call.

        ``fallback=False``: a candidate failure is raised to the caller instead of
        repeating the call on legacy (an operation with side effects, such as sending a
        message). ``first_chunk_timeout``: seconds a stream's candidate has for its first
        chunk (default: ``timeout``). ``circuit``: a :class:`CircuitPolicy` (default 5
        failures in a row within 30 s open it for 10 s), or None for no circuit breaker.
        """
        cfg = self._router.config(operation)
        if fallback is not ... and not isinstance(fallback, bool):
            raise ValueError("fallback must be True or False")
        if circuit is not ... and circuit is not None and not isinstance(circuit, CircuitPolicy):
            raise ValueError("circuit must be a CircuitPolicy(failures=…) or None")
        for name, value in (("timeout", timeout), ("first_chunk_timeout", first_chunk_timeout)):
            if (value is not ... and value is not None) and (
                isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
            ):
                raise ValueError(f"{name} must be a positive number of seconds or None")
        if feature is not ...:
            cfg.feature = feature  # type: ignore[assignment]
        if timeout is not ...:
            cfg.timeout = timeout  # type: ignore[assignment]
            cfg.sync_timeout = timeout  # type: ignore[assignment]
        if fallback is not ...:
            cfg.fallback = fallback  # type: ignore[assignment]
        if first_chunk_timeout is not ...:
            cfg.first_chunk_timeout = first_chunk_timeout  # type: ignore[assignment]
        if circuit is not ...:
            cfg.circuit_policy = circuit  # type: ignore[assignment]
            cfg.circuit = None
        return self

    def circuit(self, operation: str) -> str:
        """``operation``'s circuit in this process: ``closed``, ``open`` or ``half_open``."""
        return self._router.circuit_state(operation)

    def call(self, call_id: str, context: Mapping[str, Any] | None = None) -> PinnedCall:
        """One decision for a whole call: ``with m.call(call_id, ctx) as call:`` (or
        ``async with``). Every operation routed inside uses the side and migration
        version decided here; the kill switch still wins, at the call's next operation."""
        if not isinstance(call_id, str) or not call_id:
            raise ValueError("call_id must be a non-empty string")
        compiled = self._client._compiled.get(self.name)
        if compiled is None:
            decision = self._client.missing(self.name, None)
        else:
            decision = compiled.decide(None, context if context is not None else _EMPTY)
        return PinnedCall(self, Pin(call_id, context, compiled, decision))

    async def route(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        *args: Any,
        legacy: Callable[..., Any],
        candidate: Callable[..., Any],
        outcome: Outcome = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run ``operation`` on the decided side; on candidate failure or timeout, legacy.

        ``idempotency_key``, when given, is passed (as ``idempotency_key=``) to whichever
        side runs, the candidate and then legacy alike, so a send can deduplicate."""
        if idempotency_key is not None:
            kwargs["idempotency_key"] = idempotency_key
        return await self._router.route(
            operation, context, args, kwargs, legacy, candidate, outcome, timeout
        )

    def route_sync(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        *args: Any,
        legacy: Callable[..., Any],
        candidate: Callable[..., Any],
        outcome: Outcome = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """The synchronous twin of :meth:`route` (a timeout needs a worker thread)."""
        if idempotency_key is not None:
            kwargs["idempotency_key"] = idempotency_key
        return self._router.route_sync(
            operation, context, args, kwargs, legacy, candidate, outcome, timeout
        )

    def route_stream(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        *args: Any,
        legacy: Any,
        candidate: Any,
        first_chunk_timeout: float | None = None,
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Stream ``operation``'s chunks from the decided side: ``async for chunk in
        m.route_stream("llm", ctx, prompt, legacy=…, candidate=…)``.

        ``legacy`` and ``candidate`` are async generator functions (called with the
        arguments) or async iterables. If the candidate raises, or gives no chunk within
        ``first_chunk_timeout`` seconds (default: the operation's timeout), legacy serves
        before any chunk reaches the caller. After the first chunk the side is fixed: a
        later failure is recorded as a mid-stream error and raised. ``aclose()`` and
        cancellation reach the side's stream.
        """
        if first_chunk_timeout is not None and not first_chunk_timeout > 0:
            raise ValueError("first_chunk_timeout must be a positive number of seconds or None")
        if idempotency_key is not None:
            kwargs["idempotency_key"] = idempotency_key
        return self._router.route_stream(
            operation, context, args, kwargs, legacy, candidate, first_chunk_timeout
        )

    def route_stream_sync(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        *args: Any,
        legacy: Any,
        candidate: Any,
        first_chunk_timeout: float | None = None,
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> Iterator[Any]:
        """The synchronous twin of :meth:`route_stream`, for generators and iterables.
        A first-chunk timeout (given here or by ``configure(op, timeout=…)``) runs the
        candidate's first step in a worker thread."""
        if first_chunk_timeout is not None and not first_chunk_timeout > 0:
            raise ValueError("first_chunk_timeout must be a positive number of seconds or None")
        if idempotency_key is not None:
            kwargs["idempotency_key"] = idempotency_key
        return self._router.route_stream_sync(
            operation, context, args, kwargs, legacy, candidate, first_chunk_timeout
        )

    def shadow_stream(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        *args: Any,
        legacy: Any,
        candidate: Any,
        compare: str | Comparator | None = None,
        sample: float = 1.0,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        """Serve legacy's stream; consume the candidate's beside it on ``sample`` of calls
        and compare the two lists of chunks once both ended. The caller's chunks are
        never delayed by the candidate."""
        if not 0.0 <= sample <= 1.0:
            raise ValueError("sample must be between 0 and 1")
        return self._router.shadow_stream(
            operation, context, args, kwargs, legacy, candidate, compare, sample, timeout
        )

    def routed(
        self,
        operation: str,
        *,
        legacy: Callable[..., Any],
        context: Callable[..., Mapping[str, Any]] | str | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorate the candidate: ``@m.routed("tts", legacy=legacy_tts)``.

        The call's context comes from the keyword argument ``context=`` (removed before
        the call), another keyword named by ``context``, or a callable of the arguments.
        """
        return routed_decorator(self, operation, legacy, context)

    async def shadow(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        *args: Any,
        legacy: Callable[..., Any],
        candidate: Callable[..., Any],
        compare: str | Comparator | None = None,
        sample: float = 1.0,
        outcome: Outcome = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """Serve legacy; run the candidate beside it on ``sample`` of calls and compare."""
        if not 0.0 <= sample <= 1.0:
            raise ValueError("sample must be between 0 and 1")
        return await self._router.shadow(
            operation, context, args, kwargs, legacy, candidate, compare, sample, outcome, timeout
        )

    def record_outcome(
        self,
        operation: str,
        outcome: Mapping[str, float],
        *,
        context: Mapping[str, Any] | None = None,
        side: str | Side | None = None,
    ) -> None:
        """Outcome counters known after the call (``{"booked": 1}``) for its side.

        Give ``side``, or the call's ``context`` and the side is decided again (it is
        sticky, so it is the side that served the call).
        """
        clean = validate_outcome(outcome)
        if side is None:
            cfg = self._router.config(operation)
            side = self.decide(cfg.feature, context).side
        self._client.recorder.add_outcome(self.name, operation, Side(side).value, clean)

    def record_score(
        self,
        operation: str,
        scores: Mapping[str, float],
        *,
        context: Mapping[str, Any] | None = None,
        side: str | Side | None = None,
    ) -> None:
        """Scores of one call known after it (``{"csat": 4}``, a 1-5 rating) for its side:
        what ``score.csat >= 4.5`` and ``score_drop.csat <= 0.2`` gates read.

        Give ``side``, or the call's ``context`` (the side is sticky). Raises
        ``ValidationError`` for a score name or value that breaks the rules.
        """
        clean = score_counters(validate_scores(scores))
        if side is None:
            cfg = self._router.config(operation)
            side = self.decide(cfg.feature, context).side
        self._client.recorder.add_outcome(self.name, operation, Side(side).value, clean)

    def window(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        operation: str | None = None,
        *,
        last: timedelta | None = None,
    ) -> dict[str, Any]:
        """Per side: calls, error and fallback rates, p50/p95/p99, outcome rates.

        Reads the store (or the server), so it includes every process's flushed calls;
        flush this process's recorder first to include its latest.
        """
        return self._client._window(self.name, since, until, operation, last)

    async def drain(self) -> None:
        """Wait for shadowed candidates still running."""
        await self._router.drain()

    def decide(
        self, feature: str | None = None, context: Mapping[str, Any] | None = None
    ) -> Decision:
        """Which side serves this call. Never raises for a store problem."""
        compiled = self._client._compiled.get(self.name)
        if compiled is None:
            return self._client.missing(self.name, feature)
        return compiled.decide(feature, context if context is not None else _EMPTY)

    def is_candidate(
        self, feature: str | None = None, context: Mapping[str, Any] | None = None
    ) -> bool:
        return self.decide(feature, context).candidate

    @property
    def snapshot(self) -> Migration | None:
        """The migration as this process last loaded it, or None."""
        compiled = self._client._compiled.get(self.name)
        return compiled.migration if compiled is not None else None

    def status(self) -> dict[str, Any]:
        """Seed 003 §5.5's rollout status, read from the store (may raise StoreError)."""
        return self._client._status(self.name)

    def __repr__(self) -> str:
        return f"<MigrationHandle {self.name!r}>"


class Client:
    """Decisions from a local snapshot of ``backend``, routing, and recorded calls.

    ``backend`` is a :class:`~switchover.sdk.backends.Backend` (``connect(url)`` builds
    one from a URL; ``MemoryBackend`` holds migrations in memory), or a bare snapshot
    source, which decides but keeps nothing recorded. Recorded calls are flushed to the
    backend every ``flush_interval`` seconds unless a ``recorder`` is given.
    ``status_reader`` and ``window_reader`` replace the backend's ``status`` and
    ``window`` reads (``reader(name)``, ``reader(name, since, until, operation, last)``).
    ``redactor`` (a :class:`~switchover.core.redact.Redactor` with your own patterns and
    field names) redacts router logs and shadow samples instead of the default one.
    """

    def __init__(
        self,
        backend: Backend | SnapshotSource,
        *,
        refresh_interval: float = 1.0,
        clock: Clock | None = None,
        background: bool = True,
        status_reader: Callable[[str], dict[str, Any]] | None = None,
        recorder: Recorder | None = None,
        window_reader: Callable[..., dict[str, Any]] | None = None,
        error_hook: ErrorHook | None = None,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        redactor: Redactor | None = None,
    ) -> None:
        if refresh_interval <= 0:
            raise ValueError("refresh_interval must be positive")
        self.backend: Backend = as_backend(backend)
        self._clock = clock or SystemClock()
        self.refresh_interval = refresh_interval
        self._compiled: dict[str, CompiledMigration] = {}
        self._loaded = False
        self._version: int | None = None
        self._last_ok: float | None = None
        self._last_error: str | None = None
        self._failures = 0
        self._status_reader = status_reader
        self._window_reader = window_reader
        self.recorder = recorder or Recorder(
            self.backend,
            flush_interval=flush_interval,
            time_fn=(lambda: clock.now().timestamp()) if clock is not None else time.time,
            background=background,
        )
        self.error_hook = error_hook
        self.redactor = redactor
        """Redacts router log lines, exception notes and shadow samples (None: the
        default, ``switchover.core.redact.DEFAULT_REDACTOR``); set it before the first
        ``migration()``, which hands it to that migration's router."""
        self._handles: dict[str, MigrationHandle] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.refresh()
        if background:
            self._thread = threading.Thread(
                target=self._run, name="switchover-snapshot", daemon=True
            )
            self._thread.start()

    # decisions ----------------------------------------------------------------------

    def migration(self, name: str) -> MigrationHandle:
        """The handle for ``name``; the same object each time, so its settings stay."""
        handle = self._handles.get(name)
        if handle is None:
            handle = self._handles[name] = MigrationHandle(self, name)
        return handle

    def compiled(self, name: str) -> CompiledMigration | None:
        """Migration ``name`` as compiled from the current snapshot, or None."""
        return self._compiled.get(name)

    def missing(self, name: str, feature: str | None) -> Decision:
        """Legacy for a migration not in the snapshot: unknown, or never loaded at all."""
        return unknown_migration(name, feature) if self._loaded else unreachable(name, feature)

    # freshness ----------------------------------------------------------------------

    def refresh(self) -> bool:
        """Check the backend once; reload when the version moved. False if unreachable."""
        with self._lock:
            try:
                version = self.backend.version()
                if version != self._version or not self._loaded:
                    version, migrations = self.backend.load()
                    self._compiled = {m.name: CompiledMigration(m) for m in migrations}
                    self._version = version
                    self._loaded = True
            except Exception as exc:
                self._failures += 1
                if self._last_error is None:
                    log.warning(
                        "switchover: snapshot refresh failed (%s); serving the last snapshot",
                        type(exc).__name__,
                    )
                self._last_error = f"{type(exc).__name__}: {_first_line(exc)}"
                return False
            if self._last_error is not None:
                log.info("switchover: snapshot source reachable again at version %s", version)
            self._last_error = None
            self._last_ok = self._clock.monotonic()
            return True

    def staleness(self) -> float | None:
        """Seconds since the snapshot was last confirmed current; None if never loaded."""
        if self._last_ok is None:
            return None
        return max(0.0, self._clock.monotonic() - self._last_ok)

    @property
    def stale_after(self) -> float:
        """Seconds without a confirmed refresh after which the snapshot counts as stale:
        a store that hangs raises nothing, so an error alone cannot say it."""
        return 3 * self.refresh_interval + 2.0

    def health(self) -> dict[str, Any]:
        staleness = self.staleness()
        overdue = staleness is not None and staleness > self.stale_after
        return {
            "loaded": self._loaded,
            "version": self._version,
            "migrations": sorted(self._compiled),
            "staleness_seconds": None if staleness is None else round(staleness, 3),
            "stale": self._last_error is not None or overdue,
            "last_error": self._last_error,
            "failed_refreshes": self._failures,
        }

    @property
    def version(self) -> int | None:
        return self._version

    def _run(self) -> None:
        while not self._stop.is_set():
            self.backend.wait_for_change(self.refresh_interval, self._stop)
            if self._stop.is_set():
                break
            self.refresh()

    def _window(
        self,
        name: str,
        since: datetime | None,
        until: datetime | None,
        operation: str | None,
        last: timedelta | None,
    ) -> dict[str, Any]:
        if self._window_reader is not None:
            return self._window_reader(name, since, until, operation, last)
        return self.backend.window(name, since=since, until=until, operation=operation, last=last)

    def _status(self, name: str) -> dict[str, Any]:
        if self._status_reader is not None:
            return self._status_reader(name)
        return self.backend.status(name)

    # lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Stop refreshing, flush recorded calls, release connections."""
        for handle in self._handles.values():
            handle._router.close()
        with contextlib.suppress(Exception):
            self.recorder.close()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with contextlib.suppress(Exception):
            self.backend.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""


def connect(
    url: str | None = None,
    *,
    backend: Backend | None = None,
    token: str | None = None,
    refresh_interval: float = 1.0,
    background: bool = True,
    clock: Clock | None = None,
    flush_interval: float = DEFAULT_FLUSH_INTERVAL,
    retention_days: float = 7.0,
    error_hook: ErrorHook | None = None,
    redactor: Redactor | None = None,
) -> Client:
    """A client for the store at ``url`` (a database URL, or a switchover server URL).

    ``url`` defaults to ``SWITCHOVER_DATABASE_URL`` or the embedded SQLite store.
    For a server URL the token defaults to ``SWITCHOVER_TOKEN``. Give ``backend``
    instead of a URL to use one directly (``connect(backend=MemoryBackend([...]))``).
    """
    if backend is None:
        url = url or os.environ.get("SWITCHOVER_DATABASE_URL") or _default_url()
        token = token or os.environ.get("SWITCHOVER_TOKEN")
        backend = backend_for(url, token, retention_days=retention_days, clock=clock)
    elif url is not None:
        raise ValueError("give connect() a url or a backend, not both")
    return Client(
        backend,
        refresh_interval=refresh_interval,
        clock=clock,
        background=background,
        flush_interval=flush_interval,
        error_hook=error_hook,
        redactor=redactor,
    )


def _default_url() -> str:
    from switchover.store.engine import DEFAULT_URL

    return DEFAULT_URL

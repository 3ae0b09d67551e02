"""Observations aggregated in memory into per-minute rollups, flushed in the background.

``record`` costs a lock, a dict look-up and a sketch update: no I/O, no allocation
per call beyond the first of its minute. A daemon thread flushes every
``flush_interval`` seconds (and :meth:`Recorder.close` / interpreter exit flushes
the rest), so the caller's thread or event loop never waits for the store.

When the store is down, unflushed rollups stay in memory and are retried at the next
flush. Memory is bounded by ``max_keys`` (minute, migration, operation, side)
entries: past it the oldest minutes are dropped and their calls are counted in
``dropped_observations`` and logged, never lost silently.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from switchover.core.observation import Observation
from switchover.core.rollup import Rollup, RollupKey

log = logging.getLogger("switchover.recorder")

DEFAULT_FLUSH_INTERVAL = 5.0
DEFAULT_MAX_KEYS = 20_000
DEFAULT_MAX_SAMPLES = 1_000


class RollupSink(Protocol):
    """Where flushed rollups go: the store, a switchover server, or nowhere."""

    def write(
        self, rollups: Sequence[tuple[RollupKey, Rollup]], samples: Sequence[dict[str, Any]]
    ) -> None: ...


class NullSink:
    def write(
        self, rollups: Sequence[tuple[RollupKey, Rollup]], samples: Sequence[dict[str, Any]]
    ) -> None:
        return None


class MemorySink:
    """Keeps what was flushed: for tests and for embedding."""

    def __init__(self) -> None:
        self.rollups: list[tuple[RollupKey, Rollup]] = []
        self.samples: list[dict[str, Any]] = []

    def write(
        self, rollups: Sequence[tuple[RollupKey, Rollup]], samples: Sequence[dict[str, Any]]
    ) -> None:
        self.rollups.extend(rollups)
        self.samples.extend(samples)


@dataclass(frozen=True, slots=True)
class RecorderStats:
    pending_keys: int
    pending_observations: int
    pending_samples: int
    flushed_rollups: int
    flushed_observations: int
    dropped_observations: int
    dropped_samples: int
    failed_flushes: int
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pending_keys": self.pending_keys,
            "pending_observations": self.pending_observations,
            "pending_samples": self.pending_samples,
            "flushed_rollups": self.flushed_rollups,
            "flushed_observations": self.flushed_observations,
            "dropped_observations": self.dropped_observations,
            "dropped_samples": self.dropped_samples,
            "failed_flushes": self.failed_flushes,
            "last_error": self.last_error,
        }


Listener = Callable[[str, str, str, float, bool, bool], None]


class Recorder:
    def __init__(
        self,
        sink: RollupSink,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        time_fn: Callable[[], float] = time.time,
        max_keys: int = DEFAULT_MAX_KEYS,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        background: bool = True,
    ) -> None:
        self.sink = sink
        self.flush_interval = flush_interval
        self._time = time_fn
        self.max_keys = max_keys
        self._pending: dict[tuple[int, str, str, str], Rollup] = {}
        self._samples: collections.deque[dict[str, Any]] = collections.deque(maxlen=max_samples)
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._flushed_rollups = 0
        self._flushed_observations = 0
        self._dropped = 0
        self._dropped_samples = 0
        self._failed = 0
        self._last_error: str | None = None
        self._listeners: list[Listener] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(
                target=self._run, name="switchover-recorder", daemon=True
            )
            self._thread.start()
        _live.add(self)

    # recording -------------------------------------------------------------------------

    def record(
        self,
        migration: str,
        operation: str,
        side: str,
        latency_ms: float,
        ok: bool = True,
        error_type: str | None = None,
        fallback: bool = False,
        outcome: Mapping[str, float] | None = None,
        at: float | None = None,
        total_failure: bool = False,
        tenant: str | None = None,
    ) -> None:
        # a plain tuple: a RollupKey is built only when flushing
        key = (int((self._time() if at is None else at) // 60), migration, operation, side)
        with self._lock:
            rollup = self._pending.get(key)
            if rollup is None:
                rollup = self._pending[key] = Rollup()
            rollup.add(latency_ms, ok, error_type, fallback, outcome, total_failure, tenant)
        if self._listeners:
            for listener in self._listeners:
                listener(migration, operation, side, latency_ms, ok, fallback)

    def record_observation(self, obs: Observation) -> None:
        self.record(
            obs.migration,
            obs.operation,
            obs.side.value,
            obs.latency_ms,
            obs.ok,
            obs.error_type,
            obs.fallback,
            obs.outcome,
            obs.at,
            obs.total_failure,
            obs.tenant,
        )

    def add_outcome(
        self,
        migration: str,
        operation: str,
        side: str,
        outcome: Mapping[str, float],
        at: float | None = None,
    ) -> None:
        """Outcome counters that arrive after the call (a booking, a delivery)."""
        key = (int((self._time() if at is None else at) // 60), migration, operation, side)
        with self._lock:
            rollup = self._pending.get(key)
            if rollup is None:
                rollup = self._pending[key] = Rollup()
            rollup.add_outcome(outcome)

    def add_sample(self, sample: dict[str, Any]) -> None:
        """A shadow mismatch sample, already redacted; the oldest go first when full."""
        with self._lock:
            if len(self._samples) == self._samples.maxlen:
                self._dropped_samples += 1
            self._samples.append(sample)

    def add_listener(self, listener: Listener) -> None:
        """Called for each recorded call (Prometheus export); must be cheap and not raise."""
        self._listeners.append(listener)

    # flushing --------------------------------------------------------------------------

    def flush(self) -> bool:
        """Write what is pending. False if the sink failed (the data is kept for later)."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
                samples = list(self._samples)
                self._samples.clear()
            if not pending and not samples:
                return True
            items = [(RollupKey(*key), pending[key]) for key in sorted(pending)]
            try:
                self.sink.write(items, samples)
            except Exception as exc:
                self._requeue(pending, samples, exc)
                return False
            self._flushed_rollups += len(items)
            self._flushed_observations += sum(r.count for _, r in items)
            if self._last_error is not None:
                log.info("switchover: recorder flushed again after %d failure(s)", self._failed)
            self._last_error = None
            return True

    def _requeue(
        self,
        pending: dict[tuple[int, str, str, str], Rollup],
        samples: list[dict[str, Any]],
        exc: Exception,
    ) -> None:
        self._failed += 1
        self._last_error = (
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        )
        with self._lock:
            for key, rollup in self._pending.items():
                if key in pending:
                    pending[key].merge(rollup)
                else:
                    pending[key] = rollup
            self._pending = pending
            combined = samples + list(self._samples)
            keep = self._samples.maxlen or len(combined)
            if len(combined) > keep:
                self._dropped_samples += len(combined) - keep
                combined = combined[-keep:]
            self._samples.clear()
            self._samples.extend(combined)
            dropped = self._trim()
        log.warning(
            "switchover: recorder flush failed (%s); keeping %d rollups in memory%s",
            type(exc).__name__,
            len(self._pending),
            f", dropped {dropped} observations over the memory bound" if dropped else "",
        )

    def _trim(self) -> int:
        """Drop the oldest minutes past ``max_keys``; called with the lock held."""
        excess = len(self._pending) - self.max_keys
        if excess <= 0:
            return 0
        dropped = 0
        for key in sorted(self._pending)[:excess]:
            dropped += self._pending.pop(key).count
        self._dropped += dropped
        return dropped

    def stats(self) -> RecorderStats:
        with self._lock:
            return RecorderStats(
                pending_keys=len(self._pending),
                pending_observations=sum(r.count for r in self._pending.values()),
                pending_samples=len(self._samples),
                flushed_rollups=self._flushed_rollups,
                flushed_observations=self._flushed_observations,
                dropped_observations=self._dropped,
                dropped_samples=self._dropped_samples,
                failed_flushes=self._failed,
                last_error=self._last_error,
            )

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.flush()
            except Exception:  # pragma: no cover - flush already guards the sink
                log.exception("switchover: recorder flush crashed")

    def close(self) -> None:
        """Stop the background thread and flush what is left (one attempt)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()
        _live.discard(self)


_live: weakref.WeakSet[Recorder] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for recorder in list(_live):
        with contextlib.suppress(Exception):
            recorder.flush()

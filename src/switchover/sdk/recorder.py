"""Observations aggregated in memory into per-minute rollups, flushed in the background.

``record`` costs a lock, a dict look-up and a sketch update: no I/O, no allocation
per call beyond the first of its minute. A daemon thread flushes every
``flush_interval`` seconds (and :meth:`Recorder.close` / interpreter exit flushes
the rest), so the caller's thread or event loop never waits for the store.

``record`` never raises into the caller. It checks what it is given against the rules
of :mod:`switchover.core.observation`: a call it cannot place (a migration name or side
that is not valid, a latency that is not 0 ms to a day, an ``at`` five years off) is
left out, counted in ``invalid_observations`` and logged once per problem; a name it can
repair (an operation, error type, tenant or outcome name too long or with characters
outside the set) is repaired the same way every time and counted in ``invalid_fields``,
and the call is kept; so is a call whose outcome counter is not a finite number, without
that counter.

Each flush is a :class:`~switchover.core.rollup.Batch` with an idempotency key. When
the sink fails, the batch is kept as it was and written first, with the same key, at
the next flush (calls recorded meanwhile wait in a batch of their own), so a sink that
keeps keys (the store, a switchover server) never counts a retried batch twice. A row
the sink refuses (its :class:`~switchover.core.rollup.WriteReport`) is counted in
``refused_observations`` and logged, and the rest is stored: one bad row never blocks a
flush, nor the flushes after it. Memory is bounded by ``max_keys`` (minute, migration,
operation, side) entries, pending and unsent together: past it the oldest minutes are
dropped and their calls are counted in ``dropped_observations`` and logged, never lost
silently.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import math
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from switchover.core.observation import (
    MAX_AT_SKEW,
    MAX_LATENCY_MS,
    MAX_OUTCOME_VALUE,
    MAX_OUTCOMES,
    MAX_TENANT,
    NAME_RULE,
    SIDES,
    TENANT_RULE,
    Observation,
    is_name,
    is_tenant,
    repaired_name,
    repaired_tenant,
)
from switchover.core.rollup import Batch, Rollup, RollupKey, WriteReport

log = logging.getLogger("switchover.recorder")

DEFAULT_FLUSH_INTERVAL = 5.0
DEFAULT_MAX_KEYS = 20_000
DEFAULT_MAX_SAMPLES = 1_000
_MAX_CACHED_NAMES = 4096
_MAX_LOGGED_PROBLEMS = 1000
_SAMPLE_KIND_LENGTH = 20
_MAX_LATENCY_MS = MAX_LATENCY_MS  # module globals: a little faster than the import's names
_MAX_TENANT = MAX_TENANT
_MAX_OUTCOME_VALUE = MAX_OUTCOME_VALUE


class RollupSink(Protocol):
    """Where flushed rollups go: the store, a switchover server, or nowhere.

    ``rollups`` is a :class:`~switchover.core.rollup.Batch` (its ``key`` names the batch
    for idempotent retries). Raise when nothing was stored (the batch is retried as it
    is); return a :class:`~switchover.core.rollup.WriteReport` for rows that were skipped.
    """

    def write(
        self, rollups: Sequence[tuple[RollupKey, Rollup]], samples: Sequence[dict[str, Any]]
    ) -> WriteReport | None: ...


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
    invalid_observations: int = 0
    """Calls left out when recorded: a migration or side not valid, a bad latency or at."""
    invalid_fields: int = 0
    """Names repaired and outcome counters left out of calls that were recorded."""
    refused_rollups: int = 0
    refused_observations: int = 0
    """Calls in rollups the sink could not store (skipped; the rest was stored)."""
    refused_samples: int = 0
    replayed_batches: int = 0
    """Batches the sink had stored already (a retry after a lost answer): not counted twice."""

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
            "invalid_observations": self.invalid_observations,
            "invalid_fields": self.invalid_fields,
            "refused_rollups": self.refused_rollups,
            "refused_observations": self.refused_observations,
            "refused_samples": self.refused_samples,
            "replayed_batches": self.replayed_batches,
        }


Listener = Callable[[str, str, str, float, bool, bool], None]


Key = tuple[int, str, str, str]
"""(minute, migration, operation, side): a RollupKey is built only when flushing."""


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
        self._pending: dict[Key, Rollup] = {}
        self._samples: collections.deque[dict[str, Any]] = collections.deque(maxlen=max_samples)
        self._unsent: tuple[Batch, list[dict[str, Any]]] | None = None
        """The batch a failed flush tried to write: written first, as it is, next time."""
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._flushed_rollups = 0
        self._flushed_observations = 0
        self._dropped = 0
        self._dropped_samples = 0
        self._failed = 0
        self._last_error: str | None = None
        self._invalid_observations = 0
        self._invalid_fields = 0
        self._refused_rollups = 0
        self._refused_observations = 0
        self._refused_samples = 0
        self._replayed = 0
        self._names: dict[object, str] = {}
        """name as given -> the valid name it is recorded under (itself when valid)"""
        self._logged: set[tuple[str, str]] = set()
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
        first_chunk_ms: float | None = None,
    ) -> None:
        """One call; never raises (what is not valid is repaired or left out, and counted).

        ``first_chunk_ms``: a stream's time to its first chunk, kept in the rollup's
        second sketch; one that is not 0 ms to a day is left out (the call is kept)."""
        try:
            if not 0.0 <= latency_ms <= _MAX_LATENCY_MS or latency_ms.__class__ is bool:
                self._left_out("latency_ms", latency_ms, "a number of ms from 0 to one day")
                return
            if first_chunk_ms is not None and (
                not 0.0 <= first_chunk_ms <= _MAX_LATENCY_MS or first_chunk_ms.__class__ is bool
            ):
                self._log_once(
                    "first_chunk_ms",
                    first_chunk_ms,
                    "the call is recorded without it; first_chunk_ms must be a number of ms "
                    "from 0 to one day",
                )
                first_chunk_ms = None
            # the fast path: a key already pending was checked when it was first recorded
            key = (int(self._time() // 60), migration, operation, side) if at is None else None
            if key is None or key not in self._pending:
                key = self._key(migration, operation, side, at)
                if key is None:
                    return
            if not ok and error_type and self._names.get(error_type) is not error_type:
                error_type = self._valid_name("error_type", error_type)
            if tenant is not None and (
                tenant.__class__ is not str
                or not 0 < len(tenant) <= _MAX_TENANT
                or not (tenant.isprintable() or is_tenant(tenant))
            ):
                tenant = self._tenant(tenant)
            if outcome:
                outcome = self._outcome(outcome)
            with self._lock:
                rollup = self._pending.get(key)
                if rollup is None:
                    rollup = self._pending[key] = Rollup()
                rollup.add(
                    latency_ms,
                    ok,
                    error_type,
                    fallback,
                    outcome,
                    total_failure,
                    tenant,
                    first_chunk_ms,
                )
        except Exception as exc:  # a value of a type nobody expected: leave the call out
            self._left_out("call", f"{type(exc).__name__}: {exc}"[:200], "valid arguments")
            return
        if self._listeners:
            for listener in self._listeners:
                listener(key[1], key[2], key[3], latency_ms, ok, fallback)

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
            obs.first_chunk_ms,
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
        try:
            key = self._key(migration, operation, side, at)
            if key is None:
                return
            clean = self._outcome(outcome)
            if not clean:
                return
            with self._lock:
                rollup = self._pending.get(key)
                if rollup is None:
                    rollup = self._pending[key] = Rollup()
                rollup.add_outcome(clean)
        except Exception as exc:
            self._left_out("outcome", f"{type(exc).__name__}: {exc}"[:200], "valid arguments")

    def add_sample(self, sample: dict[str, Any]) -> None:
        """A shadow mismatch sample, already redacted; the oldest go first when full.

        Numbers that are not finite become strings (no store keeps NaN in JSON); a sample
        without a valid migration is left out, an operation name is repaired."""
        try:
            migration, operation = sample.get("migration"), sample.get("operation")
            if not is_name(migration):
                self._left_out("migration", migration, NAME_RULE, what="sample")
                return
            kind = sample.get("kind", "mismatch")
            at = sample.get("at")
            clean = _json_safe(sample)
            clean["operation"] = self._valid_name("operation", operation)
            if not (is_name(kind) and len(kind) <= _SAMPLE_KIND_LENGTH):
                clean["kind"] = "mismatch"
            now = self._time()
            if at is not None and (
                isinstance(at, bool)
                or not isinstance(at, int | float)
                or not now - MAX_AT_SKEW <= at <= now + MAX_AT_SKEW
            ):
                clean["at"] = now
        except Exception as exc:
            self._left_out("sample", f"{type(exc).__name__}: {exc}"[:200], "a dict", what="sample")
            return
        with self._lock:
            if len(self._samples) == self._samples.maxlen:
                self._dropped_samples += 1
            self._samples.append(clean)

    def add_listener(self, listener: Listener) -> None:
        """Called for each recorded call (Prometheus export); must be cheap and not raise."""
        self._listeners.append(listener)

    # checking what is recorded (the slow path runs for the first call of a minute) --------

    def _key(self, migration: str, operation: str, side: str, at: float | None) -> Key | None:
        """The pending key of a call, its names repaired; None (counted) to leave it out."""
        if at is None:
            minute = int(self._time() // 60)
        else:
            now = self._time()
            if not now - MAX_AT_SKEW <= at <= now + MAX_AT_SKEW:
                self._left_out("at", at, "seconds since the epoch within five years of now")
                return None
            minute = int(at // 60)
        key = (minute, migration, operation, side)
        if key in self._pending:
            return key
        if not is_name(migration):
            self._left_out("migration", migration, NAME_RULE)
            return None
        if side not in SIDES:
            self._left_out("side", side, "'legacy' or 'candidate'")
            return None
        valid = self._valid_name("operation", operation)
        return key if valid is operation else (minute, migration, valid, side)

    def _valid_name(self, field: str, value: object) -> str:
        """``value`` as a valid name: itself, or repaired (counted each time)."""
        valid = self._names.get(value)
        if valid is None:
            valid = value if is_name(value) else repaired_name(value)  # type: ignore[assignment]
            if len(self._names) >= _MAX_CACHED_NAMES:
                self._names.clear()
            self._names[value] = valid  # type: ignore[assignment]
        if valid != value:
            self._invalid(field, value, f"{NAME_RULE}; recorded as {valid!r}")
        return valid  # type: ignore[return-value]

    def _tenant(self, value: object) -> str:
        valid = repaired_tenant(value)
        self._invalid("tenant", value, f"{TENANT_RULE}; recorded as {valid[:40]!r}…")
        return valid

    def _outcome(self, outcome: Mapping[str, float]) -> Mapping[str, float]:
        """``outcome`` itself when every counter is valid; else without the counters whose
        value is not a finite number up to 1e12, with names repaired."""
        names = self._names
        try:
            if len(outcome) <= MAX_OUTCOMES:
                for name, value in outcome.items():
                    if (
                        names.get(name) != name
                        or value.__class__ is bool
                        or not -_MAX_OUTCOME_VALUE <= value <= _MAX_OUTCOME_VALUE
                    ):
                        break
                else:
                    return outcome
        except (AttributeError, TypeError):  # not a mapping, or a value not a number
            pass
        return self._repaired_outcome(outcome)

    def _repaired_outcome(self, outcome: object) -> dict[str, float]:
        if not isinstance(outcome, Mapping):
            self._invalid("outcome", outcome, "a mapping of counter names to numbers; left out")
            return {}
        clean: dict[str, float] = {}
        for name, value in outcome.items():
            if len(clean) == MAX_OUTCOMES:
                self._invalid("outcome", name, f"at most {MAX_OUTCOMES} counters a call; left out")
                continue
            valid = self._valid_name("outcome name", name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not -MAX_OUTCOME_VALUE <= value <= MAX_OUTCOME_VALUE
            ):
                self._invalid(
                    "outcome", f"{name}={value!r}", "a finite number up to 1e12; left out"
                )
                continue
            clean[valid] = clean.get(valid, 0.0) + float(value)
        return clean

    def _invalid(self, field: str, value: object, rule: str) -> None:
        """A field repaired or left out of a call that is still recorded."""
        with self._lock:
            self._invalid_fields += 1
        self._log_once(field, value, f"the call is recorded; {field} must be: {rule}")

    def _left_out(self, field: str, value: object, rule: str, what: str = "call") -> None:
        """A call (or sample) left out: counted, and logged once per problem."""
        with self._lock:
            if what == "call":
                self._invalid_observations += 1
            else:
                self._dropped_samples += 1
        self._log_once(field, value, f"the {what} is not recorded; {field} must be {rule}")

    def _log_once(self, field: str, value: object, consequence: str) -> None:
        shown = repr(value)
        shown = shown if len(shown) <= 100 else shown[:97] + "..."
        problem = (field, shown)
        with self._lock:
            if problem in self._logged or len(self._logged) >= _MAX_LOGGED_PROBLEMS:
                return
            self._logged.add(problem)
        log.warning("switchover: %s %s is not valid: %s", field, shown, consequence)

    # flushing --------------------------------------------------------------------------

    def flush(self) -> bool:
        """Write what is pending. False if the sink failed (the data is kept for later).

        A batch that failed before is written first, as it was and with the same key;
        what was recorded since waits for it."""
        with self._flush_lock:
            if self._unsent is not None and not self._write(*self._unsent):
                return False
            with self._lock:
                pending, self._pending = self._pending, {}
                samples = list(self._samples)
                self._samples.clear()
                if not pending and not samples:
                    return True
                items = [(RollupKey(*key), pending[key]) for key in sorted(pending)]
                self._unsent = (Batch(items, uuid.uuid4().hex), samples)
            return self._write(*self._unsent)

    def _write(self, batch: Batch, samples: list[dict[str, Any]]) -> bool:
        """One attempt at ``batch`` (the unsent one); called with the flush lock held."""
        try:
            report = self.sink.write(batch, samples)
        except Exception as exc:
            self._keep(exc)
            return False
        refused = report.refused if isinstance(report, WriteReport) else ()
        refused_samples = report.refused_samples if isinstance(report, WriteReport) else 0
        refused_calls = sum(r.count for _, r in refused)
        with self._lock:
            self._unsent = None
            self._flushed_rollups += len(batch) - len(refused)
            self._flushed_observations += sum(r.count for _, r in batch) - refused_calls
            self._refused_rollups += len(refused)
            self._refused_observations += refused_calls
            self._refused_samples += refused_samples
            self._replayed += bool(isinstance(report, WriteReport) and report.replay)
        if refused or refused_samples:
            log.warning(
                "switchover: the sink refused %d rollup(s) (%d calls) and %d sample(s) of a "
                "flush; the rest was stored (%s)",
                len(refused),
                refused_calls,
                refused_samples,
                report.reason if isinstance(report, WriteReport) else "",
            )
        if self._last_error is not None:
            log.info("switchover: recorder flushed again after %d failure(s)", self._failed)
        self._last_error = None
        return True

    def _keep(self, exc: Exception) -> None:
        """The sink failed: keep the unsent batch for the next flush, within the bounds."""
        self._failed += 1
        self._last_error = (
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        )
        with self._lock:
            dropped = self._trim()
            self._trim_samples()
            kept = len(self._pending) + (len(self._unsent[0]) if self._unsent else 0)
        log.warning(
            "switchover: recorder flush failed (%s); keeping %d rollups in memory%s",
            type(exc).__name__,
            kept,
            f", dropped {dropped} observations over the memory bound" if dropped else "",
        )

    def _trim(self) -> int:
        """Drop the oldest minutes past ``max_keys`` (unsent and pending together); called
        with the lock held. The unsent batch keeps its key."""
        unsent = list(self._unsent[0]) if self._unsent else []
        excess = len(unsent) + len(self._pending) - self.max_keys
        if excess <= 0:
            return 0
        entries = sorted(
            [(tuple(key), 0, i) for i, (key, _) in enumerate(unsent)]
            + [(key, 1, -1) for key in self._pending]
        )
        dropped = 0
        gone: set[int] = set()
        for key, source, i in entries[:excess]:
            if source == 0:
                gone.add(i)
                dropped += unsent[i][1].count
            else:
                dropped += self._pending.pop(key).count  # type: ignore[arg-type]
        if self._unsent is not None and gone:
            batch, samples = self._unsent
            kept = [item for i, item in enumerate(unsent) if i not in gone]
            self._unsent = (Batch(kept, batch.key), samples)
        self._dropped += dropped
        return dropped

    def _trim_samples(self) -> None:
        """Unsent and pending samples together within ``max_samples``, the oldest dropped."""
        if self._unsent is None:
            return
        keep = self._samples.maxlen
        batch, samples = self._unsent
        excess = len(samples) + len(self._samples) - (keep if keep is not None else 1 << 62)
        if excess > 0:
            cut = min(excess, len(samples))
            self._unsent = (batch, samples[cut:])
            self._dropped_samples += cut

    def stats(self) -> RecorderStats:
        with self._lock:
            unsent, unsent_samples = self._unsent or ((), [])
            return RecorderStats(
                pending_keys=len(self._pending) + len(unsent),
                pending_observations=sum(r.count for r in self._pending.values())
                + sum(r.count for _, r in unsent),
                pending_samples=len(self._samples) + len(unsent_samples),
                flushed_rollups=self._flushed_rollups,
                flushed_observations=self._flushed_observations,
                dropped_observations=self._dropped,
                dropped_samples=self._dropped_samples,
                failed_flushes=self._failed,
                last_error=self._last_error,
                invalid_observations=self._invalid_observations,
                invalid_fields=self._invalid_fields,
                refused_rollups=self._refused_rollups,
                refused_observations=self._refused_observations,
                refused_samples=self._refused_samples,
                replayed_batches=self._replayed,
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


def _json_safe(value: Any, _depth: int = 0) -> Any:
    """``value`` with every number that is not finite as a string (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if _depth > 20:
        return repr(value)[:200]
    if isinstance(value, dict):
        return {str(k): _json_safe(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v, _depth + 1) for v in value]
    return value


_live: weakref.WeakSet[Recorder] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for recorder in list(_live):
        with contextlib.suppress(Exception):
            recorder.flush()

"""Legacy and candidate side by side over a window (seed 004's dashboard data)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from switchover.core.clock import Clock, SystemClock
from switchover.core.observation import MAX_AT_SKEW, NAME_RULE, is_name, observation_from_dict
from switchover.core.redact import redact
from switchover.core.rollup import Rollup, RollupKey, minute_of, rollup_from_payload
from switchover.core.window import SideStats, merge_by_minute, side_stats, window_stats
from switchover.errors import ValidationError
from switchover.store import ingest_keys
from switchover.store.ingest_keys import check_key
from switchover.store.repository import Store
from switchover.store.rollup_sink import StoreSink, sample_row, utc_at

MAX_OBSERVATIONS = 10_000
MAX_ROLLUPS = 20_000
MAX_SAMPLES = 1_000


@dataclass(frozen=True, slots=True)
class Ingested:
    """What an ingest stored: the count it accepted, and whether the batch was a replay of
    one stored before under the same idempotency key (then nothing was stored again)."""

    accepted: int
    replay: bool = False

    def to_dict(self, *, keyed: bool = True) -> dict[str, Any]:
        return (
            {"accepted": self.accepted, "replay": self.replay}
            if keyed
            else {"accepted": self.accepted}
        )


@dataclass(frozen=True, slots=True)
class WindowReport:
    migration: str
    operation: str | None
    since: datetime
    until: datetime
    percentage: int
    enabled: bool
    sides: dict[str, SideStats]

    def comparison(self) -> dict[str, float | None]:
        """Candidate relative to legacy: the ratios seed 004's regression detector reads."""
        legacy, cand = self.sides["legacy"], self.sides["candidate"]

        def ratio(a: float | None, b: float | None) -> float | None:
            if a is None or b is None or b == 0:
                return None
            return a / b

        return {
            "p95_ratio": ratio(cand.p95_ms, legacy.p95_ms),
            "p50_ratio": ratio(cand.p50_ms, legacy.p50_ms),
            "error_rate_ratio": ratio(cand.error_rate, legacy.error_rate),
            "error_rate_diff": None
            if cand.error_rate is None or legacy.error_rate is None
            else cand.error_rate - legacy.error_rate,
            "candidate_share": cand.calls / (cand.calls + legacy.calls)
            if cand.calls + legacy.calls
            else None,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "migration": self.migration,
            "operation": self.operation,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "percentage": self.percentage,
            "enabled": self.enabled,
            "sides": {k: v.to_dict() for k, v in self.sides.items()},
            "comparison": self.comparison(),
        }


def _minute(dt: datetime) -> int:
    return minute_of(dt.timestamp())


class MetricsService:
    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        clock_ = self.clock
        # one sink, so that its hourly retention prune runs hourly, not on every batch
        self._sink = StoreSink(store, time_fn=lambda: clock_.now().timestamp())

    def window(
        self,
        name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        last: timedelta | None = None,
        operation: str | None = None,
    ) -> WindowReport:
        until = until or self.clock.now()
        since = since or until - (last or timedelta(minutes=15))
        if since >= until:
            raise ValidationError("the window's start must be before its end", field="since")
        with self.store.read() as tx:
            m = tx.get_migration(name)
            rows = tx.rollups(name, _minute(since), _minute(until) + 1, operation)
        return WindowReport(
            migration=name,
            operation=operation,
            since=since,
            until=until,
            percentage=m.percentage,
            enabled=m.enabled,
            sides=window_stats(rows),
        )

    def series(
        self,
        name: str,
        *,
        since: datetime,
        until: datetime,
        operation: str | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """Per side, one point a minute: what charts and the controller's tests read."""
        with self.store.read() as tx:
            tx.get_migration(name)
            rows = tx.rollups(name, _minute(since), _minute(until) + 1, operation)
        out: dict[str, list[dict[str, Any]]] = {}
        for side, minutes in merge_by_minute(rows).items():
            out[side] = [
                {"minute": minute * 60, **side_stats(side, r).to_dict()}
                for minute, r in minutes.items()
            ]
        return out

    def operations(self, name: str, *, since: datetime, until: datetime) -> list[str]:
        with self.store.read() as tx:
            rows = tx.rollups(name, _minute(since), _minute(until) + 1)
        return sorted({r.key.operation for r in rows})

    def ingest(self, observations: Sequence[Any], *, idempotency_key: str | None = None) -> int:
        """Validate a batch (all or nothing), roll it up, append it. Returns the count."""
        return self.ingest_batch(observations, idempotency_key=idempotency_key).accepted

    def ingest_batch(
        self, observations: Sequence[Any], *, idempotency_key: str | None = None
    ) -> Ingested:
        """:meth:`ingest`, saying whether the batch was a replay of one already stored.

        With an ``idempotency_key`` the key is stored in the transaction that stores the
        batch; a batch sent again with the same key (within a day) stores nothing and
        answers the count the first one accepted."""
        idem = None if idempotency_key is None else check_key(idempotency_key)
        if not isinstance(observations, list | tuple):
            raise ValidationError("observations must be a list", field="observations")
        if len(observations) > MAX_OBSERVATIONS:
            raise ValidationError(
                f"observations has {len(observations)} entries; send at most "
                f"{MAX_OBSERVATIONS} per request",
                field="observations",
            )
        now = self.clock.now().timestamp()
        parsed = []
        for i, raw in enumerate(observations):
            try:
                parsed.append(observation_from_dict(raw, default_at=now))
            except ValidationError as exc:
                raise ValidationError(
                    f"observations[{i}]: {exc.message}", field=f"observations[{i}].{exc.field}"
                ) from None
        rollups: dict[RollupKey, Rollup] = {}
        for o in parsed:
            key = RollupKey(minute_of(o.at), o.migration, o.operation, o.side.value)
            rollups.setdefault(key, Rollup()).add(
                o.latency_ms,
                o.ok,
                o.error_type,
                o.fallback,
                o.outcome,
                o.total_failure,
                o.tenant,
                o.first_chunk_ms,
            )
        with self.store.transaction() as tx:
            if idem is not None:
                first = ingest_keys.claim(tx, "observations", idem, len(parsed), utc_at(now))
                if first is not None:
                    return Ingested(first, replay=True)
            known = set(tx.migration_names())
            unknown = sorted({o.migration for o in parsed} - known)
            if unknown:
                raise ValidationError(
                    f"unknown migration(s): {', '.join(unknown)}", field="migration"
                )
            tx.insert_rollups(sorted(rollups.items()))
        self._sink.prune_if_due()
        return Ingested(len(parsed))

    def ingest_rollups(
        self,
        items: Iterable[Any],
        samples: Sequence[Any] = (),
        *,
        idempotency_key: str | None = None,
    ) -> int:
        """Pre-aggregated rollups and shadow samples from an SDK talking HTTP."""
        batch = self.ingest_rollup_batch(items, samples, idempotency_key=idempotency_key)
        return batch.accepted

    def ingest_rollup_batch(
        self,
        items: Iterable[Any],
        samples: Sequence[Any] = (),
        *,
        idempotency_key: str | None = None,
    ) -> Ingested:
        """:meth:`ingest_rollups`, all or nothing: every rollup is checked
        (:func:`~switchover.core.rollup.rollup_from_payload`) and every sample before
        anything is stored; the error names the field (``rollups[3].rollup.count``). An
        ``idempotency_key`` works as for :meth:`ingest_batch`."""
        idem = None if idempotency_key is None else check_key(idempotency_key)
        if isinstance(items, str | bytes | Mapping) or not isinstance(items, Iterable):
            raise ValidationError("rollups must be a list", field="rollups")
        items = list(items)
        if len(items) > MAX_ROLLUPS:
            raise ValidationError(
                f"rollups has {len(items)} entries; send at most {MAX_ROLLUPS} per request",
                field="rollups",
            )
        if not isinstance(samples, list | tuple) or len(samples) > MAX_SAMPLES:
            raise ValidationError(
                f"samples must be a list of at most {MAX_SAMPLES} samples", field="samples"
            )
        now = self.clock.now().timestamp()
        now_minute = minute_of(now)
        pairs = [
            rollup_from_payload(item, f"rollups[{i}]", now_minute=now_minute)
            for i, item in enumerate(items)
        ]
        rows = [_sample(sample, f"samples[{i}]", now) for i, sample in enumerate(samples)]
        with self.store.transaction() as tx:
            if idem is not None:
                first = ingest_keys.claim(tx, "rollups", idem, len(pairs), utc_at(now))
                if first is not None:
                    return Ingested(first, replay=True)
            tx.insert_rollups(pairs)
            tx.add_shadow_samples(rows, keep_per_migration=self._sink.keep_samples)
        self._sink.prune_if_due()
        return Ingested(len(pairs))

    def shadow_samples(self, name: str, *, limit: int = 50) -> list[dict[str, Any]]:
        with self.store.read() as tx:
            tx.get_migration(name)
            return tx.shadow_samples(name, limit=limit)


_SAMPLE_KIND_LENGTH = 20


def _sample(sample: Any, path: str, now: float) -> dict[str, Any]:
    """One shadow sample sent by an SDK, checked, redacted, as the store keeps it."""
    if not isinstance(sample, Mapping):
        raise ValidationError(f"{path} must be a JSON object", field=path)
    for name in ("migration", "operation"):
        if not is_name(sample.get(name)):
            raise ValidationError(
                f"{path}.{name} {sample.get(name)!r:.80} is not valid: {NAME_RULE}",
                field=f"{path}.{name}",
            )
    kind = sample.get("kind", "mismatch")
    if not is_name(kind) or len(kind) > _SAMPLE_KIND_LENGTH:
        raise ValidationError(
            f"{path}.kind must be a name of at most {_SAMPLE_KIND_LENGTH} characters",
            field=f"{path}.kind",
        )
    at = sample.get("at", now)
    if (
        isinstance(at, bool)
        or not isinstance(at, int | float)
        or not now - MAX_AT_SKEW <= at <= now + MAX_AT_SKEW
    ):
        raise ValidationError(
            f"{path}.at must be seconds since the epoch within five years of now",
            field=f"{path}.at",
        )
    if not _finite_json(sample):
        raise ValidationError(
            f"{path} holds a number that is not finite (NaN or Infinity); JSON has none",
            field=path,
        )
    return sample_row(dict(redact(dict(sample))), now)


def _finite_json(value: Any, depth: int = 0) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if depth > 50:
        return False
    if isinstance(value, Mapping):
        return all(_finite_json(v, depth + 1) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite_json(v, depth + 1) for v in value)
    return True

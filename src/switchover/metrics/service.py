"""Legacy and candidate side by side over a window (seed 004's dashboard data)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from switchover.core.clock import Clock, SystemClock
from switchover.core.observation import observation_from_dict
from switchover.core.redact import redact
from switchover.core.rollup import Rollup, RollupKey, minute_of
from switchover.core.window import SideStats, merge_by_minute, side_stats, window_stats
from switchover.errors import ValidationError
from switchover.store.repository import Store
from switchover.store.rollup_sink import StoreSink

MAX_OBSERVATIONS = 10_000


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

    def ingest(self, observations: Sequence[Any]) -> int:
        """Validate a batch (all or nothing), roll it up, append it. Returns the count."""
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
                o.latency_ms, o.ok, o.error_type, o.fallback, o.outcome, o.total_failure, o.tenant
            )
        with self.store.transaction() as tx:
            known = set(tx.migration_names())
            unknown = sorted({o.migration for o in parsed} - known)
            if unknown:
                raise ValidationError(
                    f"unknown migration(s): {', '.join(unknown)}", field="migration"
                )
            tx.insert_rollups(sorted(rollups.items()))
        self._sink.prune_if_due()
        return len(parsed)

    def ingest_rollups(
        self, items: Iterable[Mapping[str, Any]], samples: Sequence[Mapping[str, Any]] = ()
    ) -> int:
        """Pre-aggregated rollups and shadow samples from an SDK talking HTTP."""
        pairs: list[tuple[RollupKey, Rollup]] = []
        for i, item in enumerate(items):
            try:
                key = RollupKey(**item["key"])
                pairs.append((key, Rollup.from_dict(item["rollup"])))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValidationError(
                    f"rollups[{i}] is not a rollup ({type(exc).__name__})", field=f"rollups[{i}]"
                ) from None
        clean = []
        for i, sample in enumerate(samples):
            if not isinstance(sample, Mapping) or not {"migration", "operation"} <= set(sample):
                raise ValidationError(
                    f"samples[{i}] needs 'migration' and 'operation'", field=f"samples[{i}]"
                )
            clean.append(dict(redact(dict(sample))))
        self._sink.write(pairs, clean)
        return len(pairs)

    def shadow_samples(self, name: str, *, limit: int = 50) -> list[dict[str, Any]]:
        with self.store.read() as tx:
            tx.get_migration(name)
            return tx.shadow_samples(name, limit=limit)

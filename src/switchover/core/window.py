"""What a window of rollups says about each side: rates, latency quantiles, outcomes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from switchover.core.rollup import Rollup, StoredRollup

SIDES = ("legacy", "candidate")
TOP_TENANTS = 20


@dataclass(frozen=True, slots=True)
class SideStats:
    side: str
    calls: int
    errors: int
    fallbacks: int
    total_failures: int
    error_rate: float | None
    fallback_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    outcomes: dict[str, float] = field(default_factory=dict)
    outcome_rates: dict[str, float] = field(default_factory=dict)
    error_types: dict[str, int] = field(default_factory=dict)
    tenants: dict[str, dict[str, float]] = field(default_factory=dict)
    """The busiest tenants (at most TOP_TENANTS): calls, errors, error rate."""
    streams: int = 0
    """Calls that were streams: those with a time to first chunk."""
    ttfb_p50_ms: float | None = None
    ttfb_p95_ms: float | None = None
    ttfb_p99_ms: float | None = None
    """Time to first chunk, over the streams; None without any."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "calls": self.calls,
            "errors": self.errors,
            "fallbacks": self.fallbacks,
            "total_failures": self.total_failures,
            "error_rate": self.error_rate,
            "fallback_rate": self.fallback_rate,
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean_ms,
            "streams": self.streams,
            "ttfb_p50_ms": self.ttfb_p50_ms,
            "ttfb_p95_ms": self.ttfb_p95_ms,
            "ttfb_p99_ms": self.ttfb_p99_ms,
            "outcomes": self.outcomes,
            "outcome_rates": self.outcome_rates,
            "error_types": self.error_types,
            "tenants": self.tenants,
        }


def side_stats(side: str, rollup: Rollup) -> SideStats:
    n = rollup.count
    p50, p95, p99 = rollup.sketch.quantiles((0.5, 0.95, 0.99))
    f50, f95, f99 = rollup.first_chunk.quantiles((0.5, 0.95, 0.99))
    return SideStats(
        side=side,
        calls=n,
        errors=rollup.errors,
        fallbacks=rollup.fallbacks,
        total_failures=rollup.total_failures,
        error_rate=rollup.errors / n if n else None,
        fallback_rate=rollup.fallbacks / n if n else None,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        mean_ms=rollup.sketch.mean,
        streams=rollup.first_chunk.count,
        ttfb_p50_ms=f50,
        ttfb_p95_ms=f95,
        ttfb_p99_ms=f99,
        outcomes=dict(sorted(rollup.outcomes.items())),
        outcome_rates={k: v / n for k, v in sorted(rollup.outcomes.items())} if n else {},
        error_types=dict(sorted(rollup.error_types.items())),
        tenants={
            tenant: {"calls": calls, "errors": errors, "error_rate": errors / calls if calls else 0}
            for tenant, (calls, errors) in sorted(
                rollup.tenants.items(), key=lambda kv: (-kv[1][0], kv[0])
            )[:TOP_TENANTS]
        },
    )


def merge_by_side(rows: Iterable[StoredRollup]) -> dict[str, Rollup]:
    merged = {side: Rollup() for side in SIDES}
    for row in rows:
        merged.setdefault(row.key.side, Rollup()).merge(row.rollup)
    return merged


def merge_by_minute(rows: Iterable[StoredRollup]) -> dict[str, dict[int, Rollup]]:
    """Per side, per minute: the series a chart or a statistical test reads."""
    series: dict[str, dict[int, Rollup]] = {side: {} for side in SIDES}
    for row in rows:
        per_minute = series.setdefault(row.key.side, {})
        per_minute.setdefault(row.key.minute, Rollup()).merge(row.rollup)
    return {side: dict(sorted(m.items())) for side, m in series.items()}


def window_stats(rows: Iterable[StoredRollup]) -> dict[str, SideStats]:
    return {side: side_stats(side, r) for side, r in merge_by_side(rows).items()}

"""The load test's report and its acceptance criteria (seed 000 step 3.3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SUCCESS_RATE_MIN = 0.99
AVG_LATENCY_MAX_MS = 2000.0
CACHE_HIT_RATE_MIN = 0.90
MEMORY_GROWTH_MAX = 0.20
"""Memory is "stable" when the last third of the run grew less than this over the first."""


@dataclass
class LoadtestReport:
    duration_s: float
    concurrent: int
    agents: list[str]
    total_calls: int
    succeeded: int
    refused: int
    errors: int
    avg_config_fetch_ms: float | None
    cache_hits: int
    cache_misses: int
    avg_session_start_ms: float | None
    avg_latency_ms: float | None
    p95_latency_ms: float | None
    max_latency_ms: float | None
    cpu_percent: tuple[float, float]
    memory_mb: tuple[float, float]
    memory_growth: float | None
    peak_active_jobs: int
    max_queue_depth: int
    sides: dict[str, int] = field(default_factory=dict)
    error_types: dict[str, int] = field(default_factory=dict)
    target_concurrency: int | None = None
    stopped_early: dict[str, Any] | None = None
    """Why the run stopped before its time (every call failed for one reason), or None."""

    @property
    def success_rate(self) -> float | None:
        return None if self.total_calls == 0 else self.succeeded / self.total_calls

    @property
    def cache_hit_rate(self) -> float | None:
        looked = self.cache_hits + self.cache_misses
        return None if looked == 0 else self.cache_hits / looked

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration_s": round(self.duration_s, 2),
            "concurrent": self.concurrent,
            "agents": self.agents,
            "total_calls": self.total_calls,
            "succeeded": self.succeeded,
            "refused": self.refused,
            "errors": self.errors,
            "error_types": self.error_types,
            "success_rate": self.success_rate,
            "avg_config_fetch_ms": _r(self.avg_config_fetch_ms),
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "cache_hit_rate": self.cache_hit_rate,
            "avg_session_start_ms": _r(self.avg_session_start_ms),
            "avg_latency_ms": _r(self.avg_latency_ms),
            "p95_latency_ms": _r(self.p95_latency_ms),
            "max_latency_ms": _r(self.max_latency_ms),
            "cpu_percent": [round(x, 1) for x in self.cpu_percent],
            "memory_mb": [round(x, 1) for x in self.memory_mb],
            "memory_growth": _r(self.memory_growth, 4),
            "peak_active_jobs": self.peak_active_jobs,
            "max_queue_depth": self.max_queue_depth,
            "sides": self.sides,
            "target_concurrency": self.target_concurrency,
            "stopped_early": self.stopped_early,
        }


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True, slots=True)
class Criterion:
    name: str
    value: str
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"criterion": self.name, "value": self.value, "passed": self.passed}


def acceptance(r: LoadtestReport) -> list[Criterion]:
    """Seed 000's criteria. No calls, or nothing to judge a criterion on, fails it."""
    sr, hr = r.success_rate, r.cache_hit_rate
    return [
        Criterion(
            f"success rate > {SUCCESS_RATE_MIN:.0%}",
            "-" if sr is None else f"{sr:.2%} ({r.succeeded}/{r.total_calls})",
            sr is not None and sr > SUCCESS_RATE_MIN,
        ),
        Criterion(
            f"average latency < {AVG_LATENCY_MAX_MS / 1000:g} s",
            "-" if r.avg_latency_ms is None else f"{r.avg_latency_ms:,.0f} ms",
            r.avg_latency_ms is not None and r.avg_latency_ms < AVG_LATENCY_MAX_MS,
        ),
        Criterion(
            f"cache hit rate > {CACHE_HIT_RATE_MIN:.0%}",
            "-" if hr is None else f"{hr:.1%} ({r.cache_hits}/{r.cache_hits + r.cache_misses})",
            hr is not None and hr > CACHE_HIT_RATE_MIN,
        ),
        Criterion(
            f"memory stable (grew < {MEMORY_GROWTH_MAX:.0%})",
            "-" if r.memory_growth is None else f"{r.memory_growth:+.1%}",
            r.memory_growth is not None and r.memory_growth < MEMORY_GROWTH_MAX,
        ),
        *_target(r),
    ]


def _target(r: LoadtestReport) -> list[Criterion]:
    """Seed 000's "worker handles target concurrency": that many calls ran in the worker
    at once; when the target is all the load offered, none waited in its queue and none
    was refused for capacity (beyond the target, those are the success rate's business)."""
    if r.target_concurrency is None:
        return []
    full = r.error_types.get("at_capacity", 0)
    offered_more = r.target_concurrency < r.concurrent
    return [
        Criterion(
            f"handles target concurrency ({r.target_concurrency} calls at once)",
            f"peak {r.peak_active_jobs} active, queue max {r.max_queue_depth}, "
            f"{full} refused at capacity",
            r.succeeded > 0
            and r.peak_active_jobs >= r.target_concurrency
            and (offered_more or (r.max_queue_depth == 0 and not full)),
        )
    ]

"""Observations merged per minute, migration, operation and side.

A rollup holds counts, errors (by type), fallbacks, total failures, a latency sketch
and outcome sums. Rollups merge exactly: adding two is the same as having recorded
both sets of calls in one place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from switchover.core.sketch import LatencySketch


class RollupKey(NamedTuple):
    minute: int
    """Minutes since the epoch (UTC)."""
    migration: str
    operation: str
    side: str


MAX_TENANTS = 100
"""Tenants tracked per rollup; the rest are summed under OTHER_TENANTS."""
OTHER_TENANTS = "(other)"


def minute_of(at: float) -> int:
    return int(at // 60)


class Rollup:
    """A mutable accumulator; the recorder's unit of memory."""

    __slots__ = (
        "count",
        "error_types",
        "errors",
        "fallbacks",
        "outcomes",
        "sketch",
        "tenants",
        "total_failures",
    )

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.fallbacks = 0
        self.total_failures = 0
        self.error_types: dict[str, int] = {}
        self.outcomes: dict[str, float] = {}
        self.tenants: dict[str, list[int]] = {}
        """tenant -> [calls, errors], at most MAX_TENANTS + 1 entries"""
        self.sketch = LatencySketch()

    def add(
        self,
        latency_ms: float,
        ok: bool,
        error_type: str | None,
        fallback: bool,
        outcome: Mapping[str, float] | None,
        total_failure: bool = False,
        tenant: str | None = None,
    ) -> None:
        self.count += 1
        self.sketch.add(latency_ms)
        if tenant is not None:
            self.add_tenant(tenant, 1, 0 if ok else 1)
        if ok and not fallback and not total_failure and not outcome:
            return
        if not ok:
            self.errors += 1
            if error_type:
                types = self.error_types
                types[error_type] = types.get(error_type, 0) + 1
        if fallback:
            self.fallbacks += 1
        if total_failure:
            self.total_failures += 1
        if outcome:
            self.add_outcome(outcome)

    def add_tenant(self, tenant: str, calls: int, errors: int) -> None:
        tenants = self.tenants
        counts = tenants.get(tenant)
        if counts is None:
            if len(tenants) >= MAX_TENANTS and tenant != OTHER_TENANTS:
                tenant = OTHER_TENANTS
            counts = tenants.get(tenant)
            if counts is None:
                counts = tenants[tenant] = [0, 0]
        counts[0] += calls
        counts[1] += errors

    def add_outcome(self, outcome: Mapping[str, float]) -> None:
        outcomes = self.outcomes
        for name, value in outcome.items():
            outcomes[name] = outcomes.get(name, 0.0) + value

    def merge(self, other: Rollup) -> None:
        self.count += other.count
        self.errors += other.errors
        self.fallbacks += other.fallbacks
        self.total_failures += other.total_failures
        for k, n in other.error_types.items():
            self.error_types[k] = self.error_types.get(k, 0) + n
        self.add_outcome(other.outcomes)
        for tenant, (calls, errors) in other.tenants.items():
            self.add_tenant(tenant, calls, errors)
        self.sketch.merge(other.sketch)

    @property
    def empty(self) -> bool:
        return self.count == 0 and not self.outcomes

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "errors": self.errors,
            "fallbacks": self.fallbacks,
            "total_failures": self.total_failures,
            "error_types": dict(sorted(self.error_types.items())),
            "outcomes": dict(sorted(self.outcomes.items())),
            "tenants": {k: list(v) for k, v in sorted(self.tenants.items())},
            "sketch": self.sketch.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rollup:
        r = cls()
        r.count = int(data.get("count", 0))
        r.errors = int(data.get("errors", 0))
        r.fallbacks = int(data.get("fallbacks", 0))
        r.total_failures = int(data.get("total_failures", 0))
        r.error_types = {str(k): int(v) for k, v in (data.get("error_types") or {}).items()}
        r.outcomes = {str(k): float(v) for k, v in (data.get("outcomes") or {}).items()}
        r.tenants = {str(k): [int(v[0]), int(v[1])] for k, v in (data.get("tenants") or {}).items()}
        r.sketch = LatencySketch.from_dict(data.get("sketch") or {})
        return r

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rollup) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class StoredRollup:
    """A rollup as read back from the store."""

    key: RollupKey
    rollup: Rollup

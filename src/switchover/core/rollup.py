"""Observations merged per minute, migration, operation and side.

A rollup holds counts, errors (by type), fallbacks, total failures, a latency sketch,
a second sketch of streams' time to first chunk (``first_chunk``: empty when no call of
the rollup was a stream) and outcome sums. Rollups merge exactly: adding two is the
same as having recorded both sets of calls in one place.

A rollup is bounded: at most :data:`MAX_TENANTS` tenants (the rest under
:data:`OTHER_TENANTS`), :data:`MAX_ERROR_TYPES` error types (the rest under
:data:`OTHER_ERRORS`) and :data:`MAX_OUTCOME_NAMES` outcome counters (further names are
left out). :func:`rollup_from_payload` checks one sent over HTTP against the same bounds
and the invariants every recorded rollup keeps (see its docstring).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ddsketch.mapping import LogarithmicMapping

from switchover.core.observation import (
    MAX_AT_SKEW,
    MAX_LATENCY_MS,
    NAME_RULE,
    SIDES,
    TENANT_RULE,
    is_name,
    is_tenant,
)
from switchover.core.sketch import RELATIVE_ACCURACY, LatencySketch
from switchover.errors import ValidationError


class RollupKey(NamedTuple):
    minute: int
    """Minutes since the epoch (UTC)."""
    migration: str
    operation: str
    side: str


MAX_TENANTS = 100
"""Tenants tracked per rollup; the rest are summed under OTHER_TENANTS."""
OTHER_TENANTS = "(other)"
MAX_ERROR_TYPES = 256
"""Error types counted per rollup; the rest are summed under OTHER_ERRORS."""
OTHER_ERRORS = "other"
MAX_OUTCOME_NAMES = 256
"""Outcome counters kept per rollup; further names are left out."""


def minute_of(at: float) -> int:
    return int(at // 60)


class Rollup:
    """A mutable accumulator; the recorder's unit of memory."""

    __slots__ = (
        "count",
        "error_types",
        "errors",
        "fallbacks",
        "first_chunk",
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
        self.first_chunk = LatencySketch()
        """Streams' time to first chunk (ms); at most ``count`` values."""

    def add(
        self,
        latency_ms: float,
        ok: bool,
        error_type: str | None,
        fallback: bool,
        outcome: Mapping[str, float] | None,
        total_failure: bool = False,
        tenant: str | None = None,
        first_chunk_ms: float | None = None,
    ) -> None:
        self.count += 1
        self.sketch.add(latency_ms)
        if first_chunk_ms is not None:
            self.first_chunk.add(first_chunk_ms)
        if tenant is not None:
            self.add_tenant(tenant, 1, 0 if ok else 1)
        if ok and not fallback and not total_failure and not outcome:
            return
        if not ok:
            self.errors += 1
            if error_type:
                types = self.error_types
                n = types.get(error_type)
                if n is None and len(types) >= MAX_ERROR_TYPES:
                    error_type = OTHER_ERRORS
                    n = types.get(error_type)
                types[error_type] = 1 if n is None else n + 1
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

    def add_error_type(self, error_type: str, n: int) -> None:
        types = self.error_types
        if error_type not in types and len(types) >= MAX_ERROR_TYPES:
            error_type = OTHER_ERRORS
        types[error_type] = types.get(error_type, 0) + n

    def add_outcome(self, outcome: Mapping[str, float]) -> None:
        outcomes = self.outcomes
        for name, value in outcome.items():
            total = outcomes.get(name)
            if total is None:
                if len(outcomes) >= MAX_OUTCOME_NAMES:
                    continue
                total = 0.0
            outcomes[name] = total + value

    def merge(self, other: Rollup) -> None:
        self.count += other.count
        self.errors += other.errors
        self.fallbacks += other.fallbacks
        self.total_failures += other.total_failures
        for k, n in other.error_types.items():
            self.add_error_type(k, n)
        self.add_outcome(other.outcomes)
        for tenant, (calls, errors) in other.tenants.items():
            self.add_tenant(tenant, calls, errors)
        self.sketch.merge(other.sketch)
        self.first_chunk.merge(other.first_chunk)

    @property
    def empty(self) -> bool:
        return self.count == 0 and not self.outcomes

    def to_dict(self) -> dict[str, Any]:
        """Plain values; ``first_chunk`` only when some call was a stream."""
        out = {
            "count": self.count,
            "errors": self.errors,
            "fallbacks": self.fallbacks,
            "total_failures": self.total_failures,
            "error_types": dict(sorted(self.error_types.items())),
            "outcomes": dict(sorted(self.outcomes.items())),
            "tenants": {k: list(v) for k, v in sorted(self.tenants.items())},
            "sketch": self.sketch.to_dict(),
        }
        if self.first_chunk.count:
            out["first_chunk"] = self.first_chunk.to_dict()
        return out

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
        r.first_chunk = LatencySketch.from_dict(data.get("first_chunk") or {})
        return r

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rollup) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class StoredRollup:
    """A rollup as read back from the store."""

    key: RollupKey
    rollup: Rollup


# --- batches: what a recorder flushes, and what a sink says back ----------------------------


class Batch(tuple[tuple[RollupKey, Rollup], ...]):
    """Rollups flushed together, with the key that makes a retry of them idempotent.

    A recorder gives every batch a key when it first tries to write it and retries the
    batch as it was, with the same key, until it is written; a sink that can (the store,
    the HTTP backend) stores the key with the batch in one transaction, so a retry of a
    batch whose write in fact succeeded is not counted twice. It is a tuple, so a sink
    that knows nothing of keys takes it as the sequence of rollups it always took.
    """

    key: str

    def __new__(cls, items: Iterable[tuple[RollupKey, Rollup]], key: str) -> Batch:
        batch = super().__new__(cls, items)
        batch.key = key
        return batch


def batch_key(rollups: Sequence[tuple[RollupKey, Rollup]]) -> str | None:
    """The idempotency key of ``rollups`` when it is a :class:`Batch`."""
    return getattr(rollups, "key", None)


@dataclass(frozen=True, slots=True)
class WriteReport:
    """What a sink did with a batch besides storing it, when that is not everything.

    ``refused``: rollups the sink could not store (the store refused the row); they are
    skipped, and the rest of the batch is stored. ``refused_samples``: the same for shadow
    samples. ``replay``: the batch's key was stored before, so nothing was written again.
    """

    refused: tuple[tuple[RollupKey, Rollup], ...] = ()
    refused_samples: int = 0
    reason: str | None = None
    replay: bool = False


# --- rollups sent over HTTP: validated, all or nothing -------------------------------------

MAX_COUNT = 1_000_000_000
"""Calls (and errors, fallbacks, per-tenant counts) in one rollup, at most."""
MAX_OUTCOME_SUM = 1e18
MAX_BINS = 4096
_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
_MIN_BIN = int(_MAPPING.key(_MAPPING.min_possible)) - 1
_MAX_BIN = int(_MAPPING.key(MAX_LATENCY_MS)) + 1


def _fail(path: str, problem: str) -> ValidationError:
    return ValidationError(f"{path} {problem}", field=path)


def _count(value: object, path: str, *, limit: int = MAX_COUNT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise _fail(path, f"must be a whole number from 0 to {limit}, got {value!r:.60}")
    return value


def _finite(value: object, path: str, low: float, high: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not low <= value <= high  # false for NaN and infinities
    ):
        raise _fail(path, f"must be a finite number from {low:g} to {high:g}, got {value!r:.60}")
    return float(value)


def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, "must be a JSON object")
    return value


def _key_from_payload(data: object, path: str, now_minute: int) -> RollupKey:
    data = _mapping(data, path)
    minute = data.get("minute")
    skew = int(MAX_AT_SKEW // 60)
    if isinstance(minute, bool) or not isinstance(minute, int):
        raise _fail(f"{path}.minute", f"must be minutes since the epoch, got {minute!r:.60}")
    if abs(minute - now_minute) > skew:
        raise _fail(
            f"{path}.minute",
            f"{minute} is more than five years from now (minute {now_minute}); "
            "send minutes since the epoch",
        )
    for name in ("migration", "operation"):
        if not is_name(data.get(name)):
            raise _fail(f"{path}.{name}", f"{data.get(name)!r:.80} is not valid: {NAME_RULE}")
    side = data.get("side")
    if side not in SIDES:
        raise _fail(f"{path}.side", f"{side!r:.40} is not valid: use 'legacy' or 'candidate'")
    return RollupKey(minute, data["migration"], data["operation"], side)


def _sketch_from_payload(
    data: object, path: str, count: int, *, exact: bool = True
) -> LatencySketch:
    data = _mapping(data if data is not None else {}, path)
    bins = data.get("bins", [])
    if not isinstance(bins, list) or len(bins) > MAX_BINS:
        raise _fail(f"{path}.bins", f"must be a list of at most {MAX_BINS} [index, count] pairs")
    sketch = LatencySketch()
    for i, pair in enumerate(bins):
        where = f"{path}.bins[{i}]"
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise _fail(where, "must be an [index, count] pair")
        k, n = pair
        if isinstance(k, bool) or not isinstance(k, int) or not _MIN_BIN <= k <= _MAX_BIN:
            raise _fail(where, f"has an index outside {_MIN_BIN}..{_MAX_BIN}: {k!r:.40}")
        if k in sketch.bins:
            raise _fail(where, f"repeats the index {k}")
        if _count(n, where) == 0:
            raise _fail(where, "has a count of 0")
        sketch.bins[k] = n
    sketch.zeros = _count(data.get("zeros", 0), f"{path}.zeros")
    sketch.count = _count(data.get("count", 0), f"{path}.count")
    if sketch.count != sketch.zeros + sum(sketch.bins.values()):
        raise _fail(f"{path}.count", "must be zeros plus the counts of the bins")
    if exact and sketch.count != count:
        raise _fail(f"{path}.count", f"must equal the rollup's count ({count})")
    if sketch.count > count:
        raise _fail(f"{path}.count", f"must be at most the rollup's count ({count})")
    count = sketch.count
    most = count * MAX_LATENCY_MS * (1 + 1e-9)  # what float rounding may add to a sum
    sketch.sum = _finite(data.get("sum", 0.0), f"{path}.sum", 0.0, most)
    if count:
        sketch.min = _finite(data.get("min"), f"{path}.min", 0.0, MAX_LATENCY_MS)
        sketch.max = _finite(data.get("max"), f"{path}.max", sketch.min, MAX_LATENCY_MS)
    return sketch


def _rollup_from_payload(data: object, path: str) -> Rollup:
    data = _mapping(data, path)
    r = Rollup()
    r.count = _count(data.get("count", 0), f"{path}.count")
    for name in ("errors", "fallbacks", "total_failures"):
        setattr(r, name, _count(data.get(name, 0), f"{path}.{name}", limit=r.count))
    types = _mapping(data.get("error_types") or {}, f"{path}.error_types")
    if len(types) > MAX_ERROR_TYPES + 1:
        raise _fail(f"{path}.error_types", f"has {len(types)} types; at most {MAX_ERROR_TYPES}")
    for name, n in types.items():
        if not is_name(name):
            raise _fail(f"{path}.error_types", f"has a name that is not valid ({NAME_RULE})")
        r.error_types[name] = _count(n, f"{path}.error_types.{name}")
    if sum(r.error_types.values()) > r.errors:
        raise _fail(f"{path}.error_types", f"count more errors than errors ({r.errors})")
    outcomes = _mapping(data.get("outcomes") or {}, f"{path}.outcomes")
    if len(outcomes) > MAX_OUTCOME_NAMES:
        raise _fail(f"{path}.outcomes", f"has {len(outcomes)}; at most {MAX_OUTCOME_NAMES}")
    for name, value in outcomes.items():
        if not is_name(name):
            raise _fail(f"{path}.outcomes", f"has a name that is not valid ({NAME_RULE})")
        where = f"{path}.outcomes.{name}"
        r.outcomes[name] = _finite(value, where, -MAX_OUTCOME_SUM, MAX_OUTCOME_SUM)
    tenants = _mapping(data.get("tenants") or {}, f"{path}.tenants")
    if len(tenants) > MAX_TENANTS + 1:
        raise _fail(
            f"{path}.tenants",
            f"has {len(tenants)} tenants; at most {MAX_TENANTS} and {OTHER_TENANTS!r}",
        )
    for tenant, counts in tenants.items():
        where = f"{path}.tenants"
        if not is_tenant(tenant):
            raise _fail(where, f"has a tenant that is not valid ({TENANT_RULE})")
        if not isinstance(counts, list | tuple) or len(counts) != 2:
            raise _fail(where, f"{tenant!r:.60} must be [calls, errors]")
        calls = _count(counts[0], f"{where}.{tenant}")
        r.tenants[tenant] = [calls, _count(counts[1], f"{where}.{tenant}", limit=calls)]
    if sum(c for c, _ in r.tenants.values()) > r.count:
        raise _fail(f"{path}.tenants", f"count more calls than the rollup ({r.count})")
    r.sketch = _sketch_from_payload(data.get("sketch"), f"{path}.sketch", r.count)
    r.first_chunk = _sketch_from_payload(
        data.get("first_chunk"), f"{path}.first_chunk", r.count, exact=False
    )
    return r


def rollup_from_payload(item: object, path: str, *, now_minute: int) -> tuple[RollupKey, Rollup]:
    """One ``{"key": {...}, "rollup": {...}}`` sent by an SDK, checked; ValidationError
    names the field (``rollups[3].rollup.count``).

    The key: ``minute`` a whole number at most five years from ``now_minute``, names and
    side as for observations. The rollup: every count a whole number from 0 to
    :data:`MAX_COUNT`, errors, fallbacks and total failures at most the count, error types
    at most the errors, tenants (at most :data:`MAX_TENANTS` and ``(other)``) at most the
    count and their errors at most their calls, outcome sums finite and at most
    :data:`MAX_OUTCOME_SUM` either way, and a sketch whose bins and zeros add up to the
    count, with a sum, min and max within 0 to one day a call; ``first_chunk`` (optional)
    a sketch of the same shape whose count is at most the rollup's.
    """
    item = _mapping(item, path)
    key = _key_from_payload(item.get("key"), f"{path}.key", now_minute)
    return key, _rollup_from_payload(item.get("rollup"), f"{path}.rollup")

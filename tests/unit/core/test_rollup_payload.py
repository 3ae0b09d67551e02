"""Rollups sent over HTTP checked at the boundary (issue 21: negative counts, unknown
sides, unbounded tenant maps, a minute of 1e30), and the bounds a rollup keeps itself."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from switchover.core.rollup import (
    MAX_COUNT,
    MAX_ERROR_TYPES,
    MAX_OUTCOME_NAMES,
    MAX_TENANTS,
    OTHER_ERRORS,
    OTHER_TENANTS,
    Batch,
    Rollup,
    RollupKey,
    batch_key,
    rollup_from_payload,
)
from switchover.errors import ValidationError

NOW_MINUTE = 29_453_760  # 2026-01-01
KEY = RollupKey(NOW_MINUTE, "voice_v2", "tts", "candidate")


def _recorded(seed: int = 3, n: int = 200) -> Rollup:
    """A rollup as a recorder makes it: errors, fallbacks, tenants, outcomes."""
    rng = random.Random(seed)
    r = Rollup()
    for i in range(n):
        ok = rng.random() > 0.3
        r.add(
            rng.lognormvariate(5, 1) if i % 17 else 0.0,
            ok,
            None if ok else rng.choice(["timeout", "ValueError", None]),
            not ok and rng.random() < 0.5,
            {"booked": float(rng.random() < 0.4)} if i % 3 else None,
            total_failure=not ok and rng.random() < 0.1,
            tenant=f"tenant-{rng.randrange(150)}" if i % 5 else None,
        )
    r.add_outcome({"late_booking": 2.0})
    return r


def _payload(rollup: Rollup | None = None, key: RollupKey = KEY) -> dict[str, Any]:
    return {"key": key._asdict(), "rollup": (rollup or _recorded()).to_dict()}


def test_what_a_recorder_makes_passes_and_comes_back_equal() -> None:
    for seed in range(20):
        r = _recorded(seed)
        key, back = rollup_from_payload(_payload(r), "rollups[0]", now_minute=NOW_MINUTE)
        assert key == KEY and back == r
    only_outcomes = Rollup()
    only_outcomes.add_outcome({"booked": 1.0})
    assert rollup_from_payload(_payload(only_outcomes), "r", now_minute=NOW_MINUTE)[1].count == 0


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    *parents, last = path.split(".")
    node = out
    for p in parents:
        node = node[p]
    node[last] = value
    return out


BAD = [
    ("rollup.count", -1, "rollups[3].rollup.count"),
    ("rollup.count", MAX_COUNT + 1, "rollups[3].rollup.count"),
    ("rollup.count", 2.5, "rollups[3].rollup.count"),
    ("rollup.count", True, "rollups[3].rollup.count"),
    ("rollup.errors", -5, "rollups[3].rollup.errors"),
    ("rollup.errors", 10**6, "rollups[3].rollup.errors"),  # more errors than calls
    ("rollup.fallbacks", "3", "rollups[3].rollup.fallbacks"),
    ("rollup.total_failures", -1, "rollups[3].rollup.total_failures"),
    ("key.side", "both", "rollups[3].key.side"),
    ("key.side", None, "rollups[3].key.side"),
    ("key.minute", 10**30, "rollups[3].key.minute"),
    ("key.minute", 1e30, "rollups[3].key.minute"),
    ("key.minute", NOW_MINUTE + 6 * 366 * 1440, "rollups[3].key.minute"),
    ("key.minute", "soon", "rollups[3].key.minute"),
    ("key.operation", "o" * 64, "rollups[3].key.operation"),
    ("key.migration", "has space", "rollups[3].key.migration"),
    ("key", None, "rollups[3].key"),
    ("rollup", [], "rollups[3].rollup"),
    ("rollup.error_types", {"timeout": -1}, "rollups[3].rollup.error_types.timeout"),
    ("rollup.error_types", {"bad name": 1}, "rollups[3].rollup.error_types"),
    ("rollup.outcomes", {"booked": float("inf")}, "rollups[3].rollup.outcomes.booked"),
    ("rollup.outcomes", {"booked": float("nan")}, "rollups[3].rollup.outcomes.booked"),
    ("rollup.outcomes", {"booked": 1e300}, "rollups[3].rollup.outcomes.booked"),
    (
        "rollup.outcomes",
        {f"o{i}": 1 for i in range(MAX_OUTCOME_NAMES + 1)},
        "rollups[3].rollup.outcomes",
    ),
    (
        "rollup.tenants",
        {f"t{i}": [1, 0] for i in range(MAX_TENANTS + 2)},
        "rollups[3].rollup.tenants",
    ),
    ("rollup.tenants", {"acme": [1, 2]}, "rollups[3].rollup.tenants.acme"),
    ("rollup.tenants", {"acme": [-1, 0]}, "rollups[3].rollup.tenants.acme"),
    ("rollup.tenants", {"acme": 3}, "rollups[3].rollup.tenants"),
    ("rollup.tenants", {"a\x00": [1, 0]}, "rollups[3].rollup.tenants"),
    ("rollup.sketch.count", 7, "rollups[3].rollup.sketch.count"),
    ("rollup.sketch.zeros", -1, "rollups[3].rollup.sketch.zeros"),
    ("rollup.sketch.sum", float("nan"), "rollups[3].rollup.sketch.sum"),
    ("rollup.sketch.sum", -1.0, "rollups[3].rollup.sketch.sum"),
    ("rollup.sketch.min", -3.0, "rollups[3].rollup.sketch.min"),
    ("rollup.sketch.max", 1e300, "rollups[3].rollup.sketch.max"),
    ("rollup.sketch.bins", [[1, 1]] * 2, "rollups[3].rollup.sketch.bins[1]"),
    ("rollup.sketch.bins", [[10**9, 1]], "rollups[3].rollup.sketch.bins[0]"),
    ("rollup.sketch.bins", [[5, 0]], "rollups[3].rollup.sketch.bins[0]"),
    ("rollup.sketch.bins", [[5]], "rollups[3].rollup.sketch.bins[0]"),
    ("rollup.sketch.bins", "many", "rollups[3].rollup.sketch.bins"),
    ("rollup.sketch", None, "rollups[3].rollup.sketch.count"),  # calls with no sketch
]


@pytest.mark.parametrize(("path", "value", "field"), BAD)
def test_a_bad_rollup_is_refused_naming_the_field(path: str, value: Any, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        rollup_from_payload(_set(_payload(), path, value), "rollups[3]", now_minute=NOW_MINUTE)
    assert info.value.field == field, info.value.message
    assert info.value.http_status == 422
    assert field.split(".")[0] in info.value.message


def test_the_negative_rollup_of_the_issue_is_refused() -> None:
    """A 50 % candidate error rate must not be turned into 0 % by a negative rollup."""
    r = Rollup()
    r.count, r.errors = -100, -50
    with pytest.raises(ValidationError) as info:
        rollup_from_payload(_payload(r), "rollups[1]", now_minute=NOW_MINUTE)
    assert info.value.field == "rollups[1].rollup.count"


def test_a_non_object_item_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        rollup_from_payload("x", "rollups[0]", now_minute=NOW_MINUTE)
    assert info.value.field == "rollups[0]"


def test_a_rollup_keeps_its_maps_bounded() -> None:
    r = Rollup()
    for i in range(MAX_ERROR_TYPES + 50):
        r.add(1.0, False, f"E{i}", False, None)
    assert len(r.error_types) == MAX_ERROR_TYPES + 1
    assert r.error_types[OTHER_ERRORS] == 50
    assert sum(r.error_types.values()) == r.errors
    for i in range(MAX_OUTCOME_NAMES + 10):
        r.add_outcome({f"o{i}": 1.0})
    assert len(r.outcomes) == MAX_OUTCOME_NAMES
    for i in range(MAX_TENANTS + 10):
        r.add(1.0, True, None, False, None, tenant=f"t{i}")
    assert len(r.tenants) == MAX_TENANTS + 1 and r.tenants[OTHER_TENANTS] == [10, 0]
    merged = Rollup()
    merged.merge(r)
    merged.merge(r)
    assert len(merged.error_types) == MAX_ERROR_TYPES + 1
    # and what it holds still passes the boundary
    rollup_from_payload(_payload(merged), "rollups[0]", now_minute=NOW_MINUTE)


def test_a_batch_is_the_sequence_it_holds_with_a_key() -> None:
    items = [(KEY, _recorded())]
    batch = Batch(items, "k1")
    assert list(batch) == items and len(batch) == 1 and batch.key == "k1"
    assert batch_key(batch) == "k1" and batch_key(items) is None

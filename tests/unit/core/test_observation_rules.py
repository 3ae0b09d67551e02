"""The rules an observation's fields follow, the repairs the recorder makes, and the
bounds the ingest endpoint enforces (issue 21: ``at: 1e300`` was a 500, outcome values
of 1e308 summed to infinity, latency was unbounded)."""

from __future__ import annotations

import math

import pytest

from switchover.core.observation import (
    MAX_AT_SKEW,
    MAX_LATENCY_MS,
    MAX_NAME,
    MAX_OUTCOME_VALUE,
    MAX_TENANT,
    is_name,
    is_tenant,
    observation_from_dict,
    repaired_name,
    repaired_tenant,
    validate_outcome,
)
from switchover.errors import ValidationError

NOW = 1_767_225_600.0  # 2026-01-01


def _obs(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "migration": "voice_v2",
        "operation": "tts",
        "side": "candidate",
        "latency_ms": 12.5,
    }
    base.update(kw)
    return base


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"at": 1e300}, "at"),
        ({"at": -1e300}, "at"),
        ({"at": float("inf")}, "at"),
        ({"at": NOW * 1000}, "at"),  # milliseconds, not seconds
        ({"at": NOW + MAX_AT_SKEW + 1}, "at"),
        ({"at": True}, "at"),
        ({"latency_ms": MAX_LATENCY_MS + 1}, "latency_ms"),
        ({"latency_ms": 1e300}, "latency_ms"),
        ({"outcome": {"booked": 1e308}}, "outcome"),
        ({"outcome": {"booked": -1e13}}, "outcome"),
        ({"outcome": {"booked": 10**400}}, "outcome"),
        ({"operation": "o" * (MAX_NAME + 1)}, "operation"),
        ({"error_type": "E" * (MAX_NAME + 1), "ok": False}, "error_type"),
        ({"tenant": "t" * (MAX_TENANT + 1)}, "tenant"),
        ({"tenant": ""}, "tenant"),
        ({"tenant": "acme\x00"}, "tenant"),
        ({"tenant": 42}, "tenant"),
    ],
)
def test_out_of_range_values_are_refused_naming_the_field(
    changes: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        observation_from_dict(_obs(**changes), default_at=NOW)
    assert info.value.field == field
    assert info.value.http_status == 422


def test_values_at_the_bounds_are_accepted() -> None:
    o = observation_from_dict(
        _obs(
            at=NOW - MAX_AT_SKEW,
            latency_ms=MAX_LATENCY_MS,
            outcome={"revenue": MAX_OUTCOME_VALUE, "refund": -MAX_OUTCOME_VALUE},
            tenant="t" * MAX_TENANT,
            operation="o" * MAX_NAME,
        ),
        default_at=NOW,
    )
    assert o.at == NOW - MAX_AT_SKEW and o.latency_ms == MAX_LATENCY_MS
    assert sum(o.outcome.values()) == 0.0


def test_outcomes_at_the_bound_cannot_sum_to_infinity() -> None:
    clean = validate_outcome({f"c{i}": MAX_OUTCOME_VALUE for i in range(32)})
    assert math.isfinite(sum(clean.values()) * 1_000_000_000)


@pytest.mark.parametrize(
    "name",
    [
        "o" * 64,
        "o" * 500,
        "book appointment",
        "",
        "naïve",
        "a/b",
        "x\x00y",
    ],
)
def test_a_repaired_name_is_valid_stable_and_keeps_names_apart(name: str) -> None:
    repaired = repaired_name(name)
    assert is_name(repaired) and len(repaired) <= MAX_NAME
    assert repaired_name(name) == repaired  # the same every time
    assert repaired_name(name + "2") != repaired


def test_a_valid_name_is_not_repaired() -> None:
    assert repaired_name("tts.stream:v2-1") == "tts.stream:v2-1"
    long_a, long_b = "x" * 80 + "a", "x" * 80 + "b"  # the same first 63 characters
    assert repaired_name(long_a) != repaired_name(long_b)
    assert is_name(repaired_name(123)) and repaired_name(123).startswith("123-")


@pytest.mark.parametrize("tenant", ["t" * 201, "", "acme\ncorp", "a\x00b", "x" * 5000])
def test_a_repaired_tenant_is_valid_and_stable(tenant: str) -> None:
    repaired = repaired_tenant(tenant)
    assert is_tenant(repaired)
    assert repaired_tenant(tenant) == repaired
    assert repaired_tenant("acme corp ünïcode") == "acme corp ünïcode"

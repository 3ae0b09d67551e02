"""Latency sketches, rollups, windows, redaction, comparators and observation parsing."""

from __future__ import annotations

import json
import math
import random

import pytest

from switchover.core.compare import comparator, equal, normalised_text
from switchover.core.observation import observation_from_dict
from switchover.core.redact import MAX_SAMPLE_CHARS, redact, redact_text
from switchover.core.rollup import Rollup, RollupKey, StoredRollup
from switchover.core.sketch import LatencySketch
from switchover.core.window import merge_by_minute, window_stats
from switchover.errors import ValidationError


def _lognormal(n: int, seed: int = 7) -> list[float]:
    """Latencies around 150 ms with a long tail, on a 1/64 ms grid so sums are exact."""
    rng = random.Random(seed)
    return [round(rng.lognormvariate(5.0, 0.8) * 64) / 64 for _ in range(n)]


def _sketch(values: list[float]) -> LatencySketch:
    s = LatencySketch()
    for v in values:
        s.add(v)
    return s


def _exact(sorted_values: list[float], q: float) -> float:
    return sorted_values[math.floor(q * (len(sorted_values) - 1))]


# --- the sketch ----------------------------------------------------------------------


def test_quantiles_are_within_one_percent_of_the_exact_ones_on_100k_latencies() -> None:
    values = _lognormal(100_000)
    s = _sketch(values)
    ordered = sorted(values)
    for q in (0.5, 0.95, 0.99):
        exact = _exact(ordered, q)
        got = s.quantile(q)
        assert got is not None
        assert abs(got - exact) <= 0.01 * exact, (q, got, exact)
    assert s.count == 100_000
    assert s.min == ordered[0] and s.max == ordered[-1]
    assert s.mean == pytest.approx(sum(values) / len(values))


def test_merging_shards_equals_one_sketch_of_everything_in_any_order() -> None:
    values = _lognormal(30_000, seed=11)
    whole = _sketch(values)
    shards = [_sketch(values[i::4]) for i in range(4)]

    forward = LatencySketch()
    for shard in shards:
        forward.merge(shard)
    backward = LatencySketch()
    for shard in reversed(shards):
        backward.merge(shard)

    assert forward.to_dict() == whole.to_dict()
    assert backward.to_dict() == whole.to_dict()
    assert forward == whole
    for q in (0.5, 0.95, 0.99):
        assert forward.quantile(q) == whole.quantile(q)


def test_merging_an_empty_sketch_changes_nothing_and_empty_merges_into_anything() -> None:
    s = _sketch([1.0, 2.0, 3.0])
    before = s.to_dict()
    s.merge(LatencySketch())
    assert s.to_dict() == before
    empty = LatencySketch()
    empty.merge(s)
    assert empty == s


def test_to_dict_from_dict_round_trip_through_json() -> None:
    s = _sketch([*_lognormal(5_000, seed=3), 0.0, 0.0])
    back = LatencySketch.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s
    assert back.quantiles((0.5, 0.95, 0.99)) == s.quantiles((0.5, 0.95, 0.99))
    assert (back.count, back.zeros, back.min, back.max) == (s.count, s.zeros, s.min, s.max)


def test_empty_sketch_has_no_quantiles_and_round_trips() -> None:
    s = LatencySketch()
    assert s.quantile(0.5) is None
    assert s.mean is None
    d = s.to_dict()
    assert d["count"] == 0 and d["min"] is None and d["max"] is None
    assert LatencySketch.from_dict(json.loads(json.dumps(d))) == s


def test_zero_latencies_are_counted_and_read_as_zero() -> None:
    s = _sketch([0.0] * 10)
    assert (s.count, s.zeros) == (10, 10)
    assert s.quantile(0.5) == 0.0
    assert s.quantile(0.99) == 0.0
    mixed = _sketch([0.0] * 90 + [100.0] * 10)
    assert mixed.quantile(0.5) == 0.0
    assert mixed.quantile(0.99) == pytest.approx(100.0, rel=0.01)


# --- rollups ----------------------------------------------------------------------------


def _calls(rollup: Rollup, n: int, start: int = 0) -> None:
    """``n`` calls: every 4th an error, every 5th a fallback, every other booked."""
    for i in range(start, start + n):
        rollup.add(
            float(10 + i % 50),
            ok=i % 4 != 0,
            error_type=None if i % 4 else ("timeout" if i % 8 == 0 else "ValueError"),
            fallback=i % 5 == 0,
            outcome={"booked": 1.0} if i % 2 else None,
            total_failure=i % 20 == 0,
        )


def test_rollup_add_counts_errors_fallbacks_total_failures_and_outcomes() -> None:
    r = Rollup()
    _calls(r, 40)
    assert r.count == 40
    assert r.errors == 10
    assert r.error_types == {"timeout": 5, "ValueError": 5}
    assert r.fallbacks == 8
    assert r.total_failures == 2
    assert r.outcomes == {"booked": 20.0}
    assert r.sketch.count == 40
    r.add_outcome({"booked": 2, "delivered": 1})
    assert r.outcomes == {"booked": 22.0, "delivered": 1.0}
    assert r.count == 40  # a late outcome is not a call


def test_rollup_merge_is_exact_and_round_trips() -> None:
    whole, a, b = Rollup(), Rollup(), Rollup()
    _calls(whole, 100)
    _calls(a, 37)
    _calls(b, 63, start=37)
    a.merge(b)
    assert a == whole
    assert a.to_dict() == whole.to_dict()
    back = Rollup.from_dict(json.loads(json.dumps(whole.to_dict())))
    assert back == whole
    assert Rollup.from_dict({}) == Rollup()
    assert Rollup().empty and not whole.empty


# --- windows --------------------------------------------------------------------------


def _row(minute: int, side: str, rollup: Rollup, operation: str = "tts") -> StoredRollup:
    return StoredRollup(RollupKey(minute, "voice_v2", operation, side), rollup)


def test_window_stats_rates_and_outcome_rates_per_side() -> None:
    legacy1, legacy2, cand = Rollup(), Rollup(), Rollup()
    for _ in range(30):
        legacy1.add(100.0, True, None, False, {"booked": 1})
    for i in range(10):
        legacy2.add(200.0, i != 0, None if i else "ValueError", False, None)
    for i in range(20):
        cand.add(50.0, i >= 5, None if i >= 5 else "timeout", i < 4, {"booked": 1} if i else None)
    stats = window_stats(
        [_row(1, "legacy", legacy1), _row(2, "legacy", legacy2), _row(1, "candidate", cand)]
    )

    legacy = stats["legacy"]
    assert legacy.calls == 40
    assert legacy.error_rate == pytest.approx(1 / 40)
    assert legacy.fallback_rate == 0.0
    assert legacy.outcomes == {"booked": 30.0}
    assert legacy.outcome_rates == {"booked": pytest.approx(0.75)}
    assert legacy.error_types == {"ValueError": 1}
    assert legacy.p50_ms == pytest.approx(100.0, rel=0.01)
    assert legacy.p99_ms == pytest.approx(200.0, rel=0.01)

    candidate = stats["candidate"]
    assert candidate.calls == 20
    assert candidate.error_rate == pytest.approx(0.25)
    assert candidate.fallback_rate == pytest.approx(0.2)
    assert candidate.outcome_rates == {"booked": pytest.approx(19 / 20)}
    assert candidate.error_types == {"timeout": 5}


def test_window_stats_with_no_calls_has_no_rates() -> None:
    stats = window_stats([])
    for side in ("legacy", "candidate"):
        s = stats[side]
        assert s.calls == 0
        assert s.error_rate is None and s.fallback_rate is None and s.p95_ms is None
        assert s.outcome_rates == {}


def test_merge_by_minute_merges_partial_rollups_of_the_same_minute() -> None:
    def r(n: int, latency: float) -> Rollup:
        out = Rollup()
        for _ in range(n):
            out.add(latency, True, None, False, None)
        return out

    rows = [
        _row(5, "legacy", r(2, 10.0)),
        _row(3, "legacy", r(1, 10.0)),
        _row(5, "legacy", r(3, 10.0), operation="stt"),
        _row(5, "candidate", r(4, 20.0)),
    ]
    series = merge_by_minute(rows)
    assert list(series["legacy"]) == [3, 5]
    assert series["legacy"][5].count == 5
    assert series["legacy"][3].count == 1
    assert list(series["candidate"]) == [5]
    assert series["candidate"][5].count == 4
    assert merge_by_minute([]) == {"legacy": {}, "candidate": {}}


# --- redaction ---------------------------------------------------------------------------

SECRETS = [
    "+1 415 555 0100",
    "0044 20 7946 0958",
    "jane.doe@example.com",
    "sk-abc123def456ghi789",
    "Bearer xyz0123456789abcdefXYZ",
]


@pytest.mark.parametrize("secret", SECRETS)
def test_redact_text_removes_phone_numbers_emails_and_keys(secret: str) -> None:
    out = redact_text(f"call failed for {secret} today")
    assert secret not in out
    assert "[REDACTED:" in out
    assert out.startswith("call failed for ") and out.endswith(" today")


def test_redaction_names_what_was_there() -> None:
    out = redact_text(
        "ring +1 415 555 0100 or mail jane.doe@example.com with sk-abc123def456ghi789"
    )
    assert "[REDACTED:phone]" in out
    assert "[REDACTED:email]" in out
    assert "[REDACTED:key]" in out


@pytest.mark.parametrize(
    "text",
    ["order 42", "user u_1234 asked", "id a1b2c3", "retry 3 of 5", "2 items at 9.99", "v3.12.1"],
)
def test_ordinary_numbers_and_short_ids_are_untouched(text: str) -> None:
    assert redact_text(text) == text
    assert redact({"note": text}) == {"note": text}


def test_redact_replaces_values_of_secret_keys_and_walks_containers() -> None:
    value = {
        "api_key": "whatever-it-is",
        "token": 12345,
        "password": {"nested": "x"},
        "user": {"email": "jane.doe@example.com", "phones": ["+1 415 555 0100", "order 42"]},
        "count": 3,
        "ok": True,
        "none": None,
    }
    out = redact(value)
    assert out["api_key"] == out["token"] == out["password"] == "[REDACTED:secret]"
    assert out["user"]["email"] == "[REDACTED:email]"
    assert out["user"]["phones"] == ["[REDACTED:phone]", "order 42"]
    assert (out["count"], out["ok"], out["none"]) == (3, True, None)
    json.dumps(out)  # JSON-ready
    assert value["api_key"] == "whatever-it-is"  # the input is not modified


def test_redact_cuts_long_strings() -> None:
    out = redact("a" * (MAX_SAMPLE_CHARS + 500))
    assert out.startswith("a" * MAX_SAMPLE_CHARS)
    assert len(out) < MAX_SAMPLE_CHARS + 50
    assert "500 more" in out
    assert redact("short") == "short"


# --- comparators ---------------------------------------------------------------------


def test_equal_is_strict_about_types() -> None:
    assert equal(1, 1)
    assert equal("a", "a")
    assert equal({"a": [1, 2]}, {"a": [1, 2]})
    assert not equal(1, True)
    assert not equal(1, 1.0)
    assert not equal(True, 1.0)
    assert not equal(1, "1")
    assert comparator(None) is equal
    assert comparator("equal") is equal


def test_text_comparator_ignores_case_punctuation_and_spacing() -> None:
    text = comparator("text")
    assert text is normalised_text
    assert text("Hello, World!", "hello world")
    assert text("  Hello   world. ", "HELLO WORLD")
    assert not text("Hello world", "Hello word")
    assert not text("1", 1)


def test_a_callable_comparator_is_used_as_is() -> None:
    def close(a: float, b: float) -> bool:
        return abs(a - b) < 0.5

    assert comparator(close) is close


def test_unknown_comparator_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValidationError) as info:
        comparator("fuzzy")
    assert info.value.field == "compare"
    assert "fuzzy" in info.value.message
    assert "equal" in info.value.message and "text" in info.value.message


# --- observations from the wire ------------------------------------------------------------


def _obs(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {
        "migration": "voice_v2",
        "operation": "tts",
        "side": "candidate",
        "latency_ms": 12.5,
        "ok": True,
    }
    base.update(kw)
    return base


def test_a_valid_observation_parses() -> None:
    o = observation_from_dict(
        _obs(ok=False, error_type="timeout", fallback=True, outcome={"booked": 1}),
        default_at=1000.0,
    )
    assert o.side.value == "candidate"
    assert (o.latency_ms, o.ok, o.error_type, o.fallback, o.at) == (
        12.5,
        False,
        "timeout",
        True,
        1000.0,
    )
    assert o.outcome == {"booked": 1.0}
    assert observation_from_dict(_obs(at=5.0), default_at=1.0).at == 5.0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"side": "both"}, "side"),
        ({"side": None}, "side"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"latency_ms": float("nan")}, "latency_ms"),
        ({"latency_ms": float("inf")}, "latency_ms"),
        ({"latency_ms": True}, "latency_ms"),
        ({"latency_ms": "12"}, "latency_ms"),
        ({"latency_ms": None}, "latency_ms"),
        ({"ok": "yes"}, "ok"),
        ({"ok": 1}, "ok"),
        ({"outcome": {"booked": "one"}}, "outcome"),
        ({"outcome": {"booked": True}}, "outcome"),
        ({"outcome": {"booked": float("nan")}}, "outcome"),
        ({"outcome": [1]}, "outcome"),
        ({"migration": "has space"}, "migration"),
        ({"operation": ""}, "operation"),
        ({"at": "yesterday"}, "at"),
    ],
)
def test_invalid_observations_name_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        observation_from_dict(_obs(**changes), default_at=0.0)
    assert info.value.field == field


def test_a_non_object_observation_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        observation_from_dict(["not", "an", "object"], default_at=0.0)  # type: ignore[arg-type]
    assert info.value.field == "observations"


def test_a_single_high_quantile_walks_down_to_the_same_bin_as_the_full_walk() -> None:
    """Charts ask for one p95 per bucket, answered from the top bin down; over seeded
    sketches of every size, with zeros and repeated values, it equals the walk up from
    the bottom that several quantiles take."""
    rng = random.Random(5)
    for _ in range(3000):
        s = LatencySketch()
        for _ in range(rng.choice([1, 2, 3, 7, 50, 400])):
            r = rng.random()
            s.add(0.0 if r < 0.05 else rng.lognormvariate(5, 1) if r < 0.9 else 250.0)
        for q in (0.5, 0.75, 0.95, 0.99, 1.0):
            assert s.quantiles((q,)) == s.quantiles((q, 0.0))[:1], (q, s.to_dict())

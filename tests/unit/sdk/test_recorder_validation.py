"""The recorder never lets one bad call poison it (issue 21): what it is given is checked
where the call is recorded (repaired or left out, counted, logged, never raised), each
flush is a batch with an idempotency key retried as it was, and rows a sink refuses are
counted and skipped."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest

from switchover.core.observation import is_name, is_tenant
from switchover.core.rollup import Batch, Rollup, RollupKey, WriteReport, rollup_from_payload
from switchover.sdk.recorder import MemorySink, Recorder

NAME = "voice_v2"
NOW = 1_767_225_600.0  # 2026-01-01


def _recorder(sink: Any) -> Recorder:
    return Recorder(sink, background=False, time_fn=lambda: NOW)


class FlakySink:
    """Fails while ``down``; remembers every batch it was given (and its key)."""

    def __init__(self) -> None:
        self.down = False
        self.attempts: list[tuple[str | None, list[tuple[RollupKey, Rollup]]]] = []
        self.stored: dict[str, list[tuple[RollupKey, Rollup]]] = {}
        self.report: WriteReport | None = None

    def write(
        self, rollups: Sequence[tuple[RollupKey, Rollup]], samples: Sequence[dict[str, Any]]
    ) -> WriteReport | None:
        key = getattr(rollups, "key", None)
        self.attempts.append((key, list(rollups)))
        if self.down:
            raise ConnectionError("store down")
        assert key is not None
        self.stored.setdefault(key, list(rollups))  # what a store that keeps keys does
        return self.report


def _calls(sink: MemorySink) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for key, r in sink.rollups:
        out[(key.operation, key.side)] = out.get((key.operation, key.side), 0) + r.count
    return out


def test_one_long_operation_name_among_a_thousand_good_calls_poisons_nothing() -> None:
    sink = MemorySink()
    rec = _recorder(sink)
    long_op = "o" * 70
    for i in range(1000):
        rec.record(NAME, "tts", "candidate", 10.0 + i)
        if i == 500:
            rec.record(NAME, long_op, "candidate", 5.0)
    assert rec.flush() is True
    calls = _calls(sink)
    assert calls[("tts", "candidate")] == 1000
    [(repaired, _)] = [k for k in calls if k[0] != "tts"]
    assert is_name(repaired) and repaired.startswith("o" * 40) and len(repaired) <= 63
    stats = rec.stats()
    assert stats.flushed_observations == 1001 and stats.invalid_fields == 1
    for key, r in sink.rollups:  # every row is one the server and the store take
        rollup_from_payload(
            {"key": key._asdict(), "rollup": r.to_dict()}, "r", now_minute=int(NOW // 60)
        )


@pytest.mark.parametrize(
    "call",
    [
        {"latency_ms": float("nan")},
        {"latency_ms": float("inf")},
        {"latency_ms": -1.0},
        {"latency_ms": 86_400_001.0},
        {"latency_ms": None},
        {"latency_ms": "12"},
        {"at": 1e300},
        {"at": float("nan")},
        {"at": NOW * 1000},
        {"at": "now"},
        {"side": "both"},
        {"migration": "has space"},
        {"migration": "m" * 64},
        {"migration": None},
    ],
)
def test_a_call_that_cannot_be_placed_is_left_out_counted_and_never_raises(
    call: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    sink = MemorySink()
    rec = _recorder(sink)
    args: dict[str, Any] = {"migration": NAME, "operation": "tts", "side": "candidate"}
    args["latency_ms"] = 10.0
    args.update(call)
    with caplog.at_level(logging.WARNING, logger="switchover.recorder"):
        for _ in range(3):
            rec.record(**args)
        rec.record(NAME, "tts", "legacy", 10.0)
    assert rec.flush() is True
    assert _calls(sink) == {("tts", "legacy"): 1}
    assert rec.stats().invalid_observations == 3
    warnings = [r for r in caplog.records if r.name == "switchover.recorder"]
    assert len(warnings) == 1 and "not recorded" in warnings[0].getMessage()  # once


def test_names_tenants_and_outcomes_are_repaired_and_the_call_kept() -> None:
    sink = MemorySink()
    rec = _recorder(sink)
    rec.record(NAME, "book appointment", "candidate", 10.0, ok=False, error_type="E" * 90)
    rec.record(NAME, "tts", "candidate", 10.0, ok=False, error_type=123)  # type: ignore[arg-type]
    rec.record(NAME, "tts", "candidate", 10.0, tenant="t" * 300)
    rec.record(NAME, "tts", "candidate", 10.0, tenant=42)  # type: ignore[arg-type]
    rec.record(NAME, "tts", "candidate", 10.0, tenant="acme\x00")
    rec.record(
        NAME,
        "tts",
        "candidate",
        10.0,
        outcome={"booked": 1.0, "bad name": 2.0, "nan": float("nan"), "big": 1e308, "s": "x"},  # type: ignore[dict-item]
    )
    rec.record(NAME, "tts", "candidate", 10.0, outcome=5)  # type: ignore[arg-type]
    rec.add_outcome(NAME, "tts", "candidate", {"late": float("inf"), "ok": 1.0})
    rec.add_outcome(NAME, "tts", "both", {"ok": 1.0})  # no such side: left out
    assert rec.flush() is True
    stats = rec.stats()
    assert stats.flushed_observations == 7 and stats.invalid_observations == 1
    # 2 error types, 3 tenants, 1 outcome name, 3 outcome values, 1 outcome, 1 late value
    assert stats.invalid_fields == 2 + 3 + 1 + 3 + 1 + 1 + 1
    merged = Rollup()
    for key, r in sink.rollups:
        assert is_name(key.operation)
        merged.merge(r)
    assert all(is_name(t) for t in merged.error_types) and merged.errors == 2
    assert len(merged.tenants) == 3 and all(is_tenant(t) for t in merged.tenants)
    assert merged.outcomes["booked"] == 1.0 and merged.outcomes["ok"] == 1.0
    assert "nan" not in merged.outcomes and "big" not in merged.outcomes
    assert [n for n in merged.outcomes if n.startswith("bad_name-")]


def test_a_failed_batch_is_retried_as_it_was_with_the_same_key() -> None:
    sink = FlakySink()
    rec = _recorder(sink)
    for _ in range(3):
        rec.record(NAME, "tts", "candidate", 10.0)
    sink.down = True
    assert rec.flush() is False
    first_key, _ = sink.attempts[-1]
    for _ in range(2):  # recorded while the sink is down: a batch of their own
        rec.record(NAME, "tts", "candidate", 10.0)
    assert rec.flush() is False
    assert sink.attempts[-1][0] == first_key  # the same batch first, as it was
    assert rec.stats().pending_observations == 5

    sink.down = False
    assert rec.flush() is True
    keys = [k for k, _ in sink.attempts]
    assert keys[:3] == [first_key] * 3 and keys[3] != first_key
    assert [sum(r.count for _, r in sink.stored[k]) for k in keys[2:]] == [3, 2]
    stats = rec.stats()
    assert (stats.flushed_observations, stats.pending_observations) == (5, 0)


def test_a_batch_stored_before_its_answer_was_lost_is_not_counted_twice() -> None:
    class LostAnswer(FlakySink):
        def write(self, rollups: Any, samples: Any) -> WriteReport | None:
            first = rollups.key not in self.stored
            super().write(rollups, samples)  # stored...
            if first:
                raise TimeoutError("...but the answer never came")
            return WriteReport(replay=True)

    sink = LostAnswer()
    rec = _recorder(sink)
    rec.record(NAME, "tts", "candidate", 10.0)
    assert rec.flush() is False
    assert rec.flush() is True
    assert len(sink.stored) == 1
    stats = rec.stats()
    assert stats.replayed_batches == 1 and stats.flushed_observations == 1


def test_rows_a_sink_refuses_are_counted_and_the_rest_is_flushed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = FlakySink()
    rec = _recorder(sink)
    for op in ("stt", "tts", "llm"):
        rec.record(NAME, op, "candidate", 10.0)
        rec.record(NAME, op, "candidate", 10.0)
    refused = Rollup()
    refused.add(1.0, True, None, False, None)
    refused.add(1.0, True, None, False, None)
    sink.report = WriteReport(
        refused=((RollupKey(0, NAME, "tts", "candidate"), refused),),
        refused_samples=1,
        reason="StringDataRightTruncation: value too long",
    )
    with caplog.at_level(logging.WARNING, logger="switchover.recorder"):
        assert rec.flush() is True
    stats = rec.stats()
    assert (stats.refused_rollups, stats.refused_observations, stats.refused_samples) == (1, 2, 1)
    assert (stats.flushed_rollups, stats.flushed_observations) == (2, 4)
    assert stats.pending_observations == 0
    assert any("StringDataRightTruncation" in r.getMessage() for r in caplog.records)
    sink.report = None
    rec.record(NAME, "tts", "candidate", 10.0)
    assert rec.flush() is True  # the next flush is not blocked
    assert rec.stats().flushed_observations == 5


def test_samples_are_made_storable_or_left_out() -> None:
    sink = MemorySink()
    rec = _recorder(sink)
    nan = float("nan")
    rec.add_sample({"migration": NAME, "operation": "tts", "legacy": nan, "candidate": [1e999]})
    rec.add_sample({"migration": "bad name", "operation": "tts"})
    rec.add_sample({"migration": NAME, "operation": "o" * 80, "kind": "k" * 30, "at": 1e300})
    rec.add_sample("not a dict")  # type: ignore[arg-type]
    assert rec.flush() is True
    first, second = sink.samples
    assert first["legacy"] == "nan" and first["candidate"] == ["inf"]
    assert is_name(second["operation"]) and second["kind"] == "mismatch" and second["at"] == NOW
    assert rec.stats().dropped_samples == 2


def test_the_memory_bound_counts_unsent_and_pending_together() -> None:
    sink = FlakySink()
    sink.down = True
    rec = Recorder(sink, background=False, time_fn=lambda: NOW, max_keys=3)
    base = NOW // 60 * 60
    for minute in range(5):
        for _ in range(minute + 1):
            rec.record(NAME, "tts", "candidate", 1.0, at=base - 600 + 60 * minute)
    assert rec.flush() is False
    assert (rec.stats().pending_keys, rec.stats().dropped_observations) == (3, 1 + 2)
    rec.record(NAME, "tts", "candidate", 1.0, at=base)
    assert rec.flush() is False
    stats = rec.stats()
    assert (stats.pending_keys, stats.dropped_observations) == (3, 3 + 3)
    sink.down = False
    assert rec.flush() is True
    batches = list(sink.stored.values())
    assert [sum(r.count for _, r in b) for b in batches] == [4 + 5, 1]


def test_a_batch_is_what_every_sink_takes() -> None:
    sink = MemorySink()
    rec = _recorder(sink)
    rec.record(NAME, "tts", "candidate", 1.0)
    rec.flush()
    assert len(sink.rollups) == 1

    seen: list[Any] = []

    class Plain:
        def write(self, rollups: Any, samples: Any) -> None:
            seen.append(rollups)

    rec = _recorder(Plain())
    rec.record(NAME, "tts", "candidate", 1.0)
    rec.flush()
    assert isinstance(seen[0], Batch) and isinstance(seen[0], tuple) and seen[0].key

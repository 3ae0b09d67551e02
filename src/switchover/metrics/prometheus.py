"""``/metrics``: Prometheus counters and latency histograms from the store's rollups.

Every process that routes calls flushes rollups to the store, so the server exports
all of them, not only its own: the collector reads the rollup rows appended since its
last scrape (the table is append-only) and keeps running totals, labelled by
migration, operation and side. Latency histograms are built from the sketches' bins:
the calls' latency and, for streams, their time to first chunk. The circuit breaker's
state changes (the router counts them as the candidate's outcomes ``circuit.open``,
``circuit.half_open`` and ``circuit.closed``) are a counter by migration, operation and
the state entered.
A restart of the server resets the counters, which Prometheus handles as usual.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from switchover.core.sketch import LatencySketch, bin_value
from switchover.store.follower import RollupFollower
from switchover.store.repository import Store

BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_LABELS = ("migration", "operation", "side")
CIRCUIT_STATES = ("open", "half_open", "closed")
_CIRCUIT_OUTCOMES = {f"circuit.{state}": state for state in CIRCUIT_STATES}


class _Histogram:
    __slots__ = ("buckets", "sum_seconds")

    def __init__(self) -> None:
        self.sum_seconds = 0.0
        self.buckets = [0] * (len(BUCKETS_SECONDS) + 1)

    def add(self, sketch: LatencySketch) -> None:
        if not sketch.count:
            return
        self.sum_seconds += sketch.sum / 1000.0
        self.buckets[0] += sketch.zeros
        for bin_key, n in sketch.bins.items():
            seconds = bin_value(bin_key) / 1000.0
            self.buckets[bisect.bisect_left(BUCKETS_SECONDS, seconds)] += n

    def cumulative(self) -> list[tuple[str, int]]:
        out, running = [], 0
        for bound, n in zip((*BUCKETS_SECONDS, float("inf")), self.buckets, strict=True):
            running += n
            out.append((_bound(bound), running))
        return out


class _Totals:
    __slots__ = (
        "calls",
        "circuit",
        "errors",
        "fallbacks",
        "first_chunk",
        "latency",
        "total_failures",
    )

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.fallbacks = 0
        self.total_failures = 0
        self.latency = _Histogram()
        self.first_chunk = _Histogram()
        self.circuit = dict.fromkeys(CIRCUIT_STATES, 0.0)


class StoreCollector(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store
        self._follower = RollupFollower(store)
        self._follower.start_at(0)  # every row of the table, then what is appended
        self._totals: dict[tuple[str, str, str], _Totals] = {}
        self._lock = threading.Lock()

    def _catch_up(self) -> None:
        for _, row in self._follower.poll():
            self._add(row)

    def _add(self, row: Any) -> None:
        key = (row.key.migration, row.key.operation, row.key.side)
        totals = self._totals.get(key)
        if totals is None:
            totals = self._totals[key] = _Totals()
        r = row.rollup
        totals.calls += r.count
        totals.errors += r.errors
        totals.fallbacks += r.fallbacks
        totals.total_failures += r.total_failures
        totals.latency.add(r.sketch)
        totals.first_chunk.add(r.first_chunk)
        if r.outcomes:
            for name, state in _CIRCUIT_OUTCOMES.items():
                n = r.outcomes.get(name)
                if n:
                    totals.circuit[state] += n

    def collect(self) -> Iterator[Any]:
        with self._lock:
            self._catch_up()
            calls = CounterMetricFamily(
                "switchover_calls", "Routed or shadowed calls, by side.", labels=_LABELS
            )
            errors = CounterMetricFamily(
                "switchover_errors", "Calls that failed on their side.", labels=_LABELS
            )
            fallbacks = CounterMetricFamily(
                "switchover_fallbacks", "Candidate calls that fell back to legacy.", labels=_LABELS
            )
            total = CounterMetricFamily(
                "switchover_total_failures",
                "Candidate failures whose legacy fallback failed too.",
                labels=_LABELS,
            )
            latency = HistogramMetricFamily(
                "switchover_latency_seconds", "Call latency, by side.", labels=_LABELS
            )
            first_chunk = HistogramMetricFamily(
                "switchover_first_chunk_seconds",
                "Streams' time to first chunk, by side.",
                labels=_LABELS,
            )
            circuit = CounterMetricFamily(
                "switchover_circuit_changes",
                "Circuit breaker state changes, by the state entered (open, half_open, closed).",
                labels=("migration", "operation", "state"),
            )
            circuits: dict[tuple[str, str], dict[str, float]] = {}
            for labels, t in sorted(self._totals.items()):
                values = list(labels)
                calls.add_metric(values, t.calls)
                errors.add_metric(values, t.errors)
                fallbacks.add_metric(values, t.fallbacks)
                total.add_metric(values, t.total_failures)
                latency.add_metric(values, t.latency.cumulative(), sum_value=t.latency.sum_seconds)
                first_chunk.add_metric(
                    values, t.first_chunk.cumulative(), sum_value=t.first_chunk.sum_seconds
                )
                if any(t.circuit.values()):
                    per_state = circuits.setdefault(labels[:2], dict.fromkeys(CIRCUIT_STATES, 0.0))
                    for state, n in t.circuit.items():
                        per_state[state] += n
            for (migration, operation), per_state in sorted(circuits.items()):
                for state, n in per_state.items():
                    circuit.add_metric([migration, operation, state], n)
            yield from (calls, errors, fallbacks, total, latency, first_chunk, circuit)
        percentage = GaugeMetricFamily(
            "switchover_rollout_percentage",
            "Share of callers on the candidate.",
            labels=["migration"],
        )
        enabled = GaugeMetricFamily(
            "switchover_enabled", "Master switch (0: killed).", labels=["migration"]
        )
        with self.store.read() as tx:
            for m in tx.list_migrations():
                percentage.add_metric([m.name], m.percentage)
                enabled.add_metric([m.name], 1 if m.enabled else 0)
        yield percentage
        yield enabled


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)

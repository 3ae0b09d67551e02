"""``/metrics``: Prometheus counters and latency histograms from the store's rollups.

Every process that routes calls flushes rollups to the store, so the server exports
all of them, not only its own: the collector reads the rollup rows appended since its
last scrape (the table is append-only) and keeps running totals, labelled by
migration, operation and side. Latency histograms are built from the sketches' bins.
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

from switchover.core.sketch import bin_value
from switchover.store.repository import Store

BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_LABELS = ("migration", "operation", "side")


class _Totals:
    __slots__ = ("buckets", "calls", "errors", "fallbacks", "sum_seconds", "total_failures")

    def __init__(self) -> None:
        self.calls = 0
        self.errors = 0
        self.fallbacks = 0
        self.total_failures = 0
        self.sum_seconds = 0.0
        self.buckets = [0] * (len(BUCKETS_SECONDS) + 1)


class StoreCollector(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store
        self._last_id = 0
        self._totals: dict[tuple[str, str, str], _Totals] = {}
        self._lock = threading.Lock()

    def _catch_up(self) -> None:
        with self.store.read() as tx:
            while True:
                batch = tx.rollups_after(self._last_id)
                if not batch:
                    break
                for row_id, row in batch:
                    self._add(row)
                    self._last_id = row_id

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
        totals.sum_seconds += r.sketch.sum / 1000.0
        totals.buckets[0] += r.sketch.zeros
        for bin_key, n in r.sketch.bins.items():
            seconds = bin_value(bin_key) / 1000.0
            totals.buckets[bisect.bisect_left(BUCKETS_SECONDS, seconds)] += n

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
            for labels, t in sorted(self._totals.items()):
                values = list(labels)
                calls.add_metric(values, t.calls)
                errors.add_metric(values, t.errors)
                fallbacks.add_metric(values, t.fallbacks)
                total.add_metric(values, t.total_failures)
                cumulative, running = [], 0
                for bound, n in zip((*BUCKETS_SECONDS, float("inf")), t.buckets, strict=True):
                    running += n
                    cumulative.append((_bound(bound), running))
                latency.add_metric(values, cumulative, sum_value=t.sum_seconds)
            yield from (calls, errors, fallbacks, total, latency)
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

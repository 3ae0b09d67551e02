"""``/_switchover/metrics``: the proxy's counters in the Prometheus text format."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class _Collector:
    def __init__(self, migration: str, counts: Counter[str], inflight: int) -> None:
        self.migration = migration
        self.counts = counts
        self.inflight = inflight

    def collect(self) -> Iterator[Metric]:
        counts = self.counts
        requests = CounterMetricFamily(
            "switchover_proxy_requests", "Requests the proxy received.", labels=["migration"]
        )
        requests.add_metric([self.migration], counts["requests"])
        yield requests
        forwarded = CounterMetricFamily(
            "switchover_proxy_forwarded", "Requests forwarded, by side.", labels=["side"]
        )
        refused = CounterMetricFamily(
            "switchover_proxy_refused",
            "Requests refused before any upstream saw them, by reason.",
            labels=["reason"],
        )
        events = CounterMetricFamily(
            "switchover_proxy_events",
            "Fallbacks, upstream errors, shadow results.",
            labels=["event"],
        )
        for name, value in sorted(counts.items()):
            head, _, rest = name.partition(".")
            if head == "side":
                forwarded.add_metric([rest], value)
            elif head == "refused":
                refused.add_metric([rest], value)
            elif name != "requests":
                events.add_metric([name], value)
        yield forwarded
        yield refused
        yield events
        inflight = GaugeMetricFamily(
            "switchover_proxy_inflight", "Requests being forwarded upstream now."
        )
        inflight.add_metric([], self.inflight)
        yield inflight


def render(migration: str, counts: Counter[str], inflight: int) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(migration, counts, inflight))  # type: ignore[arg-type]
    return generate_latest(registry), CONTENT_TYPE_LATEST

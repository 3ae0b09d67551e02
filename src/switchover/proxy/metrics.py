"""``/_switchover/metrics``: the proxy's counters in the Prometheus text format."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from switchover.proxy.app import ProxyApp


class _Collector:
    def __init__(self, app: ProxyApp) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        counts = self.app.counts
        requests = CounterMetricFamily(
            "switchover_proxy_requests", "Requests the proxy received.", labels=["migration"]
        )
        requests.add_metric([self.app.config.migration], counts["requests"])
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
        inflight.add_metric([], self.app.inflight)
        yield inflight


def render(app: ProxyApp) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(app))  # type: ignore[arg-type]
    return generate_latest(registry), CONTENT_TYPE_LATEST

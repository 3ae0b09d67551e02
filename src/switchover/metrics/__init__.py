"""Reading what the router recorded: windows per side, per-minute series, ingest."""

from switchover.metrics.service import MetricsService, WindowReport

__all__ = ["MetricsService", "WindowReport"]

"""The dashboard's chart cache on real stores (both engines): a ttfb p95 series and total
when the window has streams, none when it has not; the cache loaded from the store and
the one fed row by row agree."""

from __future__ import annotations

from switchover.bootstrap import App
from switchover.core.clock import ManualClock
from switchover.metrics.charts import ChartCache

NAME = "voice_v2"


def _ingest(app: App, clock: ManualClock, operation: str, streams: bool, first: float) -> None:
    now = clock.now().timestamp()
    app.metrics.ingest(
        [
            {
                "migration": NAME,
                "operation": operation,
                "side": side,
                "latency_ms": 1000.0,
                "at": now - 120 + i,
                **(
                    {"first_chunk_ms": first * (2 if side == "candidate" else 1)} if streams else {}
                ),
            }
            for i in range(60)
            for side in ("legacy", "candidate")
        ]
    )


def test_a_ttfb_series_appears_with_streams(app: App, clock: ManualClock) -> None:
    app.rollout.create(NAME, features=["llm"], actor="setup")
    _ingest(app, clock, "stt", streams=False, first=0.0)
    cache = ChartCache(app.store, app.clock)
    plain = cache.charts(NAME, "15m")
    assert "ttfb_p95_ms" not in plain["series"]
    assert plain["totals"]["candidate"]["ttfb_p95_ms"] is None

    _ingest(app, clock, "llm", streams=True, first=150.0)
    for c in (cache, ChartCache(app.store, app.clock)):  # fed row by row, and loaded at once
        both = c.charts(NAME, "15m")
        drawn = [v for v in both["series"]["ttfb_p95_ms"]["candidate"] if v is not None]
        assert drawn and all(295 <= v <= 305 for v in drawn)
        assert 148 <= both["totals"]["legacy"]["ttfb_p95_ms"] <= 152
        # p95 latency is the whole call's, not the first chunk's
        assert 990 <= both["totals"]["candidate"]["p95_ms"] <= 1010
        assert "ttfb_p95_ms" not in c.charts(NAME, "15m", operation="stt")["series"]
        assert "ttfb_p95_ms" in c.charts(NAME, "1h", operation="llm")["series"]

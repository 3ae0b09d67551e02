"""Chart arithmetic for a migration's dashboard: windows, buckets and points.

A chart window (``15m``, ``1h``, ``6h``, ``24h``, ``7d``) is drawn with a fixed step
(one bucket per step), chosen so that no series has more than ``MAX_POINTS`` points
and every step is the resolution of one cache tier (a minute, five minutes, an hour):
a point is then one tier bucket, never a merge of many. Buckets are aligned to the
epoch (UTC), so a bucket's point stays the same from one refresh to the next until a
row for one of its minutes arrives; the last bucket is the one holding "now".

Everything here is pure: minutes since the epoch in, numbers out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from switchover.core.rollup import Rollup
from switchover.core.sketch import LatencySketch
from switchover.core.window import SIDES
from switchover.errors import ValidationError

MAX_POINTS = 400


@dataclass(frozen=True, slots=True)
class ChartWindow:
    name: str
    span_minutes: int
    step_minutes: int

    @property
    def points(self) -> int:
        return self.span_minutes // self.step_minutes

    def starts(self, now_minute: int) -> range:
        """Bucket starts (minutes), ascending: the last bucket holds ``now_minute``."""
        step = self.step_minutes
        last = now_minute - now_minute % step
        return range(last - (self.points - 1) * step, last + 1, step)


TIER_STEPS = (1, 5, 60)
"""Bucket sizes (minutes) the cache keeps; every window's step is one of them."""

WINDOWS: dict[str, ChartWindow] = {
    w.name: w
    for w in (
        ChartWindow("15m", 15, 1),
        ChartWindow("1h", 60, 1),
        ChartWindow("6h", 360, 1),
        ChartWindow("24h", 1440, 5),
        ChartWindow("7d", 7 * 1440, 60),
    )
}


MINUTE_WINDOWS = range(2, 361)
"""Windows of whole minutes (``3m``, ``10m``): a plan's judging window, drawn minute by
minute on the one-minute tier."""


def chart_window(name: str) -> ChartWindow:
    """The window called ``name``; a ValidationError naming ``window`` otherwise."""
    w = WINDOWS.get(name) if isinstance(name, str) else None
    if w is None and isinstance(name, str) and name.endswith("m") and name[:-1].isdigit():
        minutes = int(name[:-1])
        if minutes in MINUTE_WINDOWS and name == f"{minutes}m":
            w = ChartWindow(name, minutes, 1)
    if w is None:
        raise ValidationError(
            f"window {name!r} is not one of {', '.join(WINDOWS)}, nor a number of minutes "
            f"from {MINUTE_WINDOWS[0]}m to {MINUTE_WINDOWS[-1]}m",
            field="window",
        )
    return w


def window_for(seconds: float) -> str:
    """The chart window that shows ``seconds`` (a plan's judging window): the preset of
    that span, else that many whole minutes, else the shortest preset that holds it."""
    minutes = max(MINUTE_WINDOWS[0], -(-int(seconds) // 60))
    same = [w for w in WINDOWS.values() if w.span_minutes == minutes]
    if same:
        return same[0].name
    if minutes in MINUTE_WINDOWS:
        return f"{minutes}m"
    fits = [w for w in WINDOWS.values() if w.span_minutes >= minutes]
    return fits[0].name if fits else "7d"


def bucket_start(minute: int, step_minutes: int) -> int:
    return minute - minute % step_minutes


def cover(start: int, end: int, steps: Sequence[int] = TIER_STEPS) -> list[tuple[int, int]]:
    """``[start, end)`` as few aligned buckets as possible: ``(step, bucket start)`` pairs.

    Greedy from the left: at each position, the largest step that is aligned there and
    still fits. Window totals merge these instead of every minute (a 6 h window is five
    hours and a few five-minute and minute buckets at its edges).
    """
    ordered = sorted(steps, reverse=True)
    if 1 not in ordered:
        raise ValueError("cover needs the one-minute step")
    out: list[tuple[int, int]] = []
    at = start
    while at < end:
        for step in ordered:
            if at % step == 0 and at + step <= end:
                out.append((step, at))
                at += step
                break
    return out


def absorb(into: Rollup, other: Rollup) -> None:
    """Merge what a chart reads (calls, errors, fallbacks, outcomes, latency) and skip
    tenants, error types and total failures: half the work of :meth:`Rollup.merge`,
    and half the memory kept per bucket."""
    into.count += other.count
    into.errors += other.errors
    into.fallbacks += other.fallbacks
    if other.outcomes:
        into.add_outcome(other.outcomes)
    into.sketch.merge(other.sketch)
    into.first_chunk.merge(other.first_chunk)


def absorb_parts(
    into: Rollup,
    count: int,
    errors: int,
    fallbacks: int,
    outcomes: Mapping[str, float],
    sketch: Mapping[str, Any],
    first_chunk: Mapping[str, Any] | None = None,
) -> None:
    """:func:`absorb` of a stored row's decoded members (``sketch`` and ``first_chunk``
    as written by ``LatencySketch.to_dict``, or by :func:`compact_sketch`), without
    building a Rollup and a sketch for it first."""
    into.count += count
    into.errors += errors
    into.fallbacks += fallbacks
    if outcomes:
        into.add_outcome(outcomes)
    _absorb_sketch(into.sketch, sketch)
    if first_chunk:
        _absorb_sketch(into.first_chunk, first_chunk)


def compact_sketch(s: LatencySketch) -> dict[str, Any]:
    """``LatencySketch.to_dict`` with the bins as two flat arrays (``keys``, ``counts``):
    five times faster to parse than pairs, for rows read by the hundred."""
    data = s.to_dict()
    pairs = data.pop("bins")
    data["keys"] = [k for k, _ in pairs]
    data["counts"] = [n for _, n in pairs]
    return data


def _absorb_sketch(s: LatencySketch, sketch: Mapping[str, Any]) -> None:
    n = sketch.get("count") or 0
    if not n:
        return
    bins = s.bins
    keys = sketch.get("keys")
    if keys is not None:  # the compact form of hourly rows: two flat arrays
        if not bins:  # a bucket's first row: no sums to make
            bins.update(zip(keys, sketch["counts"], strict=True))
        else:
            for k, c in zip(keys, sketch["counts"], strict=True):
                bins[k] = bins.get(k, 0) + c
    elif not bins:
        bins.update(sketch.get("bins") or ())
    else:
        for k, c in sketch.get("bins") or ():
            bins[k] = bins.get(k, 0) + c
    s.zeros += int(sketch.get("zeros") or 0)
    s.count += int(n)
    s.sum += float(sketch.get("sum") or 0.0)
    s.min = min(s.min, float(sketch["min"]))
    s.max = max(s.max, float(sketch["max"]))


@dataclass(frozen=True, slots=True)
class ChartPoint:
    """One side's bucket. Rates and the p95 are None when the bucket has no calls."""

    calls: int = 0
    errors: int = 0
    fallbacks: int = 0
    error_rate: float | None = None
    fallback_rate: float | None = None
    p95_ms: float | None = None
    outcome_rates: dict[str, float] = field(default_factory=dict)
    """Outcome sum per call, by outcome name."""
    ttfb_p95_ms: float | None = None
    """Streams' time to first chunk, p95; None when no call of the bucket was a stream."""


EMPTY = ChartPoint()


def chart_point(rollup: Rollup | None) -> ChartPoint:
    if rollup is None or rollup.count == 0:
        return EMPTY
    n = rollup.count
    return ChartPoint(
        calls=n,
        errors=rollup.errors,
        fallbacks=rollup.fallbacks,
        error_rate=rollup.errors / n,
        fallback_rate=rollup.fallbacks / n,
        p95_ms=rollup.sketch.quantiles((0.95,))[0],
        outcome_rates={k: v / n for k, v in rollup.outcomes.items()},
        ttfb_p95_ms=rollup.first_chunk.quantiles((0.95,))[0],
    )


def totals(rollup: Rollup) -> dict[str, Any]:
    """One side over a whole window."""
    p = chart_point(rollup)
    return {
        "calls": p.calls,
        "errors": p.errors,
        "fallbacks": p.fallbacks,
        "error_rate": p.error_rate,
        "fallback_rate": p.fallback_rate,
        "p95_ms": p.p95_ms,
        "ttfb_p95_ms": p.ttfb_p95_ms,
    }


def series(points: Mapping[str, Sequence[ChartPoint]]) -> dict[str, Any]:
    """Per-side point lists (same length, one per bucket) as the chart's series.

    ``calls`` is 0 in an empty bucket; every rate is None there, so a chart draws a gap
    rather than a fall to zero. An outcome seen anywhere in the window gets a series;
    a bucket with calls but none of that outcome has rate 0. ``ttfb_p95_ms`` (streams'
    time to first chunk) is there only when some bucket of the window has a stream.
    """
    sides = [s for s in SIDES if s in points] + sorted(set(points) - set(SIDES))
    names = sorted({name for s in sides for p in points[s] for name in p.outcome_rates})

    def per_side(pick: Any) -> dict[str, list[Any]]:
        return {s: [pick(p) for p in points[s]] for s in sides}

    out: dict[str, Any] = {
        "error_rate": per_side(lambda p: p.error_rate),
        "fallback_rate": per_side(lambda p: p.fallback_rate),
        "p95_ms": per_side(lambda p: p.p95_ms),
        "calls": per_side(lambda p: p.calls),
        "outcomes": {
            name: per_side(lambda p, n=name: p.outcome_rates.get(n, 0.0) if p.calls else None)
            for name in names
        },
    }
    if any(p.ttfb_p95_ms is not None for side in sides for p in points[side]):
        out["ttfb_p95_ms"] = per_side(lambda p: p.ttfb_p95_ms)
    return out


def merged(rollups: Iterable[Rollup | None]) -> Rollup:
    out = Rollup()
    for r in rollups:
        if r is not None:
            absorb(out, r)
    return out

"""The evidence a judgement reads: each side's calls over a span of minutes, pooled.

A :class:`Pool` is what every test reads: call, error, fallback and outcome counts and one
latency sketch for a side over a span of minutes. Its :attr:`Pool.ttfb` is the same for
streams' time to first chunk: a pool whose calls are the streams and whose sketch is the
first-chunk sketch, so a ``ttfb_p95`` gate is judged exactly as a ``p95`` gate is.
Tests decide on pooled counts (the calls slower than 800 ms, the errors among all calls
since the phase began), and a verdict shows those same pooled figures.

Where the pools come from is the :class:`Evidence` seam: the controller's cache keeps a
running pool for each phase (so judging the 20,000th minute of a phase does not re-read
the 19,999 before it) and the recent minutes one by one; :class:`MinuteEvidence` sums
per-minute values, for tests and small tools.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from switchover.core.rollup import Rollup
from switchover.core.scores import ScoreStats, score_stats
from switchover.core.sketch import LatencySketch

CANDIDATE = "candidate"
LEGACY = "legacy"
SIDES = (LEGACY, CANDIDATE)
COUNTED = ("error_rate", "fallback_rate", "total_failure_rate")
"""Rate metrics counted on every call (the rest are ``outcome.NAME``)."""


class MinuteStats:
    """One minute of one side, with what the tests ask of it computed once."""

    __slots__ = (
        "_above",
        "_quantiles",
        "_ttfb",
        "calls",
        "errors",
        "fallbacks",
        "first_chunk",
        "minute",
        "outcomes",
        "sketch",
        "total_failures",
    )

    def __init__(
        self,
        minute: int,
        calls: int,
        errors: int,
        fallbacks: int,
        total_failures: int,
        outcomes: dict[str, float],
        sketch: LatencySketch,
        first_chunk: LatencySketch | None = None,
    ) -> None:
        self.minute, self.calls, self.errors = minute, calls, errors
        self.fallbacks, self.total_failures = fallbacks, total_failures
        self.outcomes, self.sketch = outcomes, sketch
        self.first_chunk = first_chunk if first_chunk is not None else _EMPTY
        self._above: dict[float, int] = {}
        self._quantiles: list[float | None] | None = None
        self._ttfb: MinuteStats | None = None

    @property
    def ttfb(self) -> MinuteStats:
        """This minute's streams, their first-chunk sketch as the latency."""
        if self._ttfb is None:
            fc = self.first_chunk
            self._ttfb = MinuteStats(self.minute, fc.count, 0, 0, 0, {}, fc)
        return self._ttfb

    def above(self, threshold: float) -> int:
        cached = self._above.get(threshold)
        if cached is None:
            cached = self._above[threshold] = self.sketch.count_above(threshold)
        return cached

    def quantile(self, metric: str) -> float | None:
        """``p50``, ``p95`` or ``p99`` of this minute alone."""
        if self._quantiles is None:
            self._quantiles = self.sketch.quantiles((0.5, 0.95, 0.99))
        return self._quantiles[("p50", "p95", "p99").index(metric)]


def minute_stats(minute: int, rollup: Rollup) -> MinuteStats:
    return MinuteStats(
        minute=minute,
        calls=rollup.count,
        errors=rollup.errors,
        fallbacks=rollup.fallbacks,
        total_failures=rollup.total_failures,
        outcomes=dict(rollup.outcomes),
        sketch=rollup.sketch,
        first_chunk=rollup.first_chunk,
    )


_EMPTY = LatencySketch()
"""Shared by every minute without streams: never added to."""


class Pool:
    """One side's calls over a span of minutes ``[first, end)``.

    Counts are ready; outcome sums, the merged latency sketch and the calls above a
    threshold are computed when first asked (from the minutes, or the pooled rollup).
    A pool reads the evidence as it was when it was made: use it within one judgement.
    """

    __slots__ = (
        "_above",
        "_first_chunk",
        "_minutes",
        "_outcomes",
        "_quantiles",
        "_sketch",
        "_suffix",
        "_ttfb",
        "calls",
        "end",
        "errors",
        "fallbacks",
        "first",
        "total_failures",
    )

    def __init__(
        self,
        first: int,
        end: int,
        *,
        calls: int = 0,
        errors: int = 0,
        fallbacks: int = 0,
        total_failures: int = 0,
        outcomes: Mapping[str, float] | None = None,
        sketch: LatencySketch | None = None,
        minutes: Sequence[MinuteStats] = (),
        suffix: tuple[_Suffixes, int] | None = None,
        first_chunk: LatencySketch | None = None,
    ) -> None:
        self.first, self.end = first, end
        self._first_chunk = first_chunk
        self._ttfb: Pool | None = None
        self._suffix = suffix
        self.calls, self.errors = calls, errors
        self.fallbacks, self.total_failures = fallbacks, total_failures
        self._outcomes = dict(outcomes) if outcomes is not None else None
        self._sketch = sketch
        self._minutes = minutes
        self._above: dict[float, int] = {}
        self._quantiles: dict[float, float | None] = {}

    @classmethod
    def of_minutes(cls, minutes: Sequence[MinuteStats], first: int, end: int) -> Pool:
        return cls(
            first,
            end,
            calls=sum(m.calls for m in minutes),
            errors=sum(m.errors for m in minutes),
            fallbacks=sum(m.fallbacks for m in minutes),
            total_failures=sum(m.total_failures for m in minutes),
            minutes=minutes,
        )

    @classmethod
    def of_rollup(cls, rollup: Rollup, first: int, end: int) -> Pool:
        return cls(
            first,
            end,
            calls=rollup.count,
            errors=rollup.errors,
            fallbacks=rollup.fallbacks,
            total_failures=rollup.total_failures,
            outcomes=rollup.outcomes,
            sketch=rollup.sketch,
            first_chunk=rollup.first_chunk,
        )

    @classmethod
    def empty(cls, first: int = 0, end: int = 0) -> Pool:
        return cls(first, end)

    @property
    def outcomes(self) -> dict[str, float]:
        if self._outcomes is None:
            total: dict[str, float] = {}
            for m in self._minutes:
                for name, value in m.outcomes.items():
                    total[name] = total.get(name, 0.0) + value
            self._outcomes = total
        return self._outcomes

    @property
    def sketch(self) -> LatencySketch:
        if self._sketch is None:
            merged = LatencySketch()
            for m in self._minutes:
                merged.merge(m.sketch)
            self._sketch = merged
        return self._sketch

    def count(self, metric: str) -> int:
        """Calls counted by a rate metric: ``error_rate``, ``fallback_rate``,
        ``total_failure_rate`` or ``outcome.NAME`` (at most every call)."""
        if metric == "error_rate":
            return self.errors
        if metric == "fallback_rate":
            return self.fallbacks
        if metric == "total_failure_rate":
            return self.total_failures
        name = metric.split(".", 1)[1]
        return min(self.calls, max(0, round(self.outcomes.get(name, 0.0))))

    def score(self, name: str) -> ScoreStats:
        """Scored calls, mean and standard deviation of score ``name``."""
        return score_stats(self.outcomes, name)

    def rate(self, metric: str) -> float | None:
        return self.count(metric) / self.calls if self.calls else None

    def above(self, threshold: float) -> int:
        """Calls slower than ``threshold`` ms (as the sketch sees them: never more)."""
        cached = self._above.get(threshold)
        if cached is None:
            if self._suffix is not None:
                suffixes, index = self._suffix
                cached = suffixes.above(threshold, index)
            elif self._sketch is None and self._minutes:
                cached = sum(m.above(threshold) for m in self._minutes)
            else:
                cached = self.sketch.count_above(threshold)
            self._above[threshold] = cached
        return cached

    def quantile(self, q: float) -> float | None:
        """The pooled quantile (every call of the span in one sketch)."""
        if q not in self._quantiles:
            self._quantiles[q] = self.sketch.quantiles((q,))[0]
        return self._quantiles[q]

    @property
    def minutes(self) -> int:
        return max(0, self.end - self.first)

    @property
    def ttfb(self) -> Pool:
        """The streams of the span as a pool: their count as the calls, their time to
        first chunk as the latency sketch (no errors, fallbacks or outcomes)."""
        if self._ttfb is None:
            if self._first_chunk is not None:
                fc = self._first_chunk
                self._ttfb = Pool(self.first, self.end, calls=fc.count, sketch=fc)
            else:
                minutes = [m.ttfb for m in self._minutes]
                self._ttfb = Pool.of_minutes(minutes, self.first, self.end)
        return self._ttfb


class _Suffixes:
    """Calls above a threshold summed from each position of a minute list to its end."""

    __slots__ = ("_sums", "minutes")

    def __init__(self, minutes: Sequence[MinuteStats]) -> None:
        self.minutes = minutes
        self._sums: dict[float, list[int]] = {}

    def above(self, threshold: float, index: int) -> int:
        sums = self._sums.get(threshold)
        if sums is None:
            sums = [0] * (len(self.minutes) + 1)
            for i in range(len(self.minutes) - 1, -1, -1):
                sums[i] = sums[i + 1] + self.minutes[i].above(threshold)
            self._sums[threshold] = sums
        return sums[index]


def nested(minutes: Sequence[MinuteStats], starts: Iterable[int], end: int) -> list[Pool]:
    """Pools of the minutes from each start to ``end``, in one pass from the newest.

    ``minutes`` ascending; ``starts`` in any order. Used for the windows that end now,
    which share their newest minutes: counts and calls above a threshold are summed once.
    """
    starts = list(starts)
    suffixes = _Suffixes(minutes)
    wanted = sorted(set(starts), reverse=True)
    out: dict[int, Pool] = {}
    calls = errors = fallbacks = failures = 0
    i = len(minutes)
    for start in wanted:
        while i > 0 and minutes[i - 1].minute >= start:
            i -= 1
            m = minutes[i]
            calls += m.calls
            errors += m.errors
            fallbacks += m.fallbacks
            failures += m.total_failures
        out[start] = Pool(
            start,
            end,
            calls=calls,
            errors=errors,
            fallbacks=fallbacks,
            total_failures=failures,
            minutes=minutes[i:],
            suffix=(suffixes, i),
        )
    return [out[s] for s in starts]


@runtime_checkable
class Evidence(Protocol):
    """What a judgement reads; spans are ``[start, end)`` in minutes since the epoch."""

    def pools(self, start: int, end: int, operation: str | None) -> Mapping[str, Pool]:
        """Each side's pool over the span (``operation`` None: every operation)."""
        ...

    def minutes(
        self, start: int, end: int, operation: str | None
    ) -> Mapping[str, Sequence[MinuteStats]]:
        """Each side's minutes over the span, ascending (for windows that end now)."""
        ...


MinuteReader = Callable[[int, int, str | None], Mapping[str, Sequence[MinuteStats]]]
"""(first minute, end minute exclusive, operation or None) -> minutes per side."""


class MinuteEvidence:
    """:class:`Evidence` from per-minute values: every pool is a sum of its minutes."""

    def __init__(self, read: MinuteReader) -> None:
        self.read = read

    def minutes(
        self, start: int, end: int, operation: str | None
    ) -> Mapping[str, Sequence[MinuteStats]]:
        return self.read(start, end, operation)

    def pools(self, start: int, end: int, operation: str | None) -> Mapping[str, Pool]:
        sides = self.read(start, end, operation)
        return {side: Pool.of_minutes(sides.get(side, ()), start, end) for side in SIDES}


def as_evidence(source: Evidence | MinuteReader) -> Evidence:
    """An :class:`Evidence`, or a function of (start, end, operation) giving minutes."""
    if isinstance(source, Evidence):
        return source
    return MinuteEvidence(source)

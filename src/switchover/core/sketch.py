"""A mergeable latency sketch with 1 % relative accuracy (DDSketch's log mapping).

Adding a value only bumps a counter in a dict keyed by the DDSketch bucket index, so a
recorder can take hundreds of thousands of observations a second; quantiles are read
through a real :class:`ddsketch.DDSketch` built from the counts. Two sketches merge by
adding their counts, exactly, in any order: several processes recording the same minute
add up to the same sketch as one process recording everything.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping

RELATIVE_ACCURACY = 0.01
_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
_MIN_INDEXABLE = _MAPPING.min_possible
# LogarithmicMapping.key(v) == int(ceil(log(v, 2) * multiplier) + offset), inlined below
_MULTIPLIER = _MAPPING._multiplier
_OFFSET = _MAPPING._offset


def bin_value(key: int) -> float:
    """The value a bin stands for (within the relative accuracy)."""
    return float(_MAPPING.value(key))


class LatencySketch:
    __slots__ = ("bins", "count", "max", "min", "sum", "zeros")

    def __init__(self) -> None:
        self.bins: dict[int, int] = {}
        self.zeros = 0
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")

    def add(self, value: float, _log: Any = math.log, _ceil: Any = math.ceil) -> None:
        self.count += 1
        self.sum += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        if value > _MIN_INDEXABLE:
            k = int(_ceil(_log(value, 2) * _MULTIPLIER) + _OFFSET)
            bins = self.bins
            bins[k] = bins.get(k, 0) + 1
        else:
            self.zeros += 1

    def merge(self, other: LatencySketch) -> None:
        if other.count == 0:
            return
        bins = self.bins
        if not bins:
            bins.update(other.bins)
        else:
            for k, n in other.bins.items():
                bins[k] = bins.get(k, 0) + n
        self.zeros += other.zeros
        self.count += other.count
        self.sum += other.sum
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float | None:
        """The value at quantile ``q`` (0..1), within 1 %; None when empty."""
        if self.count == 0:
            return None
        if not self.bins:
            return 0.0
        sketch = DDSketch(RELATIVE_ACCURACY)
        store = sketch._store
        for k, n in self.bins.items():
            store.add(k, n)
        sketch._zero_count = float(self.zeros)
        sketch._count = float(self.count)
        sketch._sum = self.sum
        sketch._min = self.min
        sketch._max = self.max
        value = sketch.get_quantile_value(q)
        return None if value is None else max(self.min, min(self.max, value))

    def quantiles(self, qs: Iterable[float]) -> list[float | None]:
        """Several quantiles in one pass over the sorted bins (DDSketch's rank rule)."""
        wanted = list(qs)
        if self.count == 0:
            return [None] * len(wanted)
        if len(wanted) == 1 and wanted[0] >= 0.5:
            return [self._upper_quantile(wanted[0])]
        ranks = sorted((q * (self.count - 1), i) for i, q in enumerate(wanted))
        out: list[float | None] = [None] * len(wanted)
        keys = sorted(self.bins)
        bins = self.bins
        j = 0
        running = float(self.zeros)
        for rank, i in ranks:
            if rank < self.zeros or not keys:
                out[i] = 0.0
                continue
            while j < len(keys) - 1 and running + bins[keys[j]] <= rank:
                running += bins[keys[j]]
                j += 1
            out[i] = max(self.min, min(self.max, bin_value(keys[j])))
        return out

    def _upper_quantile(self, q: float) -> float:
        """:meth:`quantiles` of one high quantile (a p95), walking down from the top bin:
        the same rank rule, over the few bins above the rank instead of all below it."""
        rank = q * (self.count - 1)
        bins = self.bins
        if rank < self.zeros or not bins:
            return 0.0
        keys = sorted(bins, reverse=True)
        room = self.count - rank  # the bins above the answer hold fewer values than this
        j = 0
        above = 0
        last = len(keys) - 1
        while j < last and above + bins[keys[j]] < room:
            above += bins[keys[j]]
            j += 1
        return max(self.min, min(self.max, bin_value(keys[j])))

    def count_above(self, threshold: float) -> int:
        """Values above ``threshold`` (as the sketch sees them, within its accuracy)."""
        if self.count == 0 or threshold >= self.max:
            return 0
        if threshold < self.min:
            return self.count
        if threshold <= _MIN_INDEXABLE:
            return self.count - self.zeros
        limit = int(math.ceil(math.log(threshold, 2) * _MULTIPLIER) + _OFFSET)
        return sum(n for k, n in self.bins.items() if k > limit)

    @property
    def mean(self) -> float | None:
        return self.sum / self.count if self.count else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "bins": [[k, n] for k, n in sorted(self.bins.items())],
            "zeros": self.zeros,
            "count": self.count,
            "sum": self.sum,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencySketch:
        s = cls()
        s.bins = {int(k): int(n) for k, n in data.get("bins", [])}
        s.zeros = int(data.get("zeros", 0))
        s.count = int(data.get("count", 0))
        s.sum = float(data.get("sum", 0.0))
        if s.count:
            s.min = float(data["min"])
            s.max = float(data["max"])
        return s

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LatencySketch) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

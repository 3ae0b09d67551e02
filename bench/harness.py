"""Batch timing: time N calls at a time, divide, and summarise the per-batch means.

A single call is far below the resolution worth trusting from one clock read, so the
harness times a batch of calls (1,000 by default) with ``time.perf_counter_ns`` and
divides by the batch size. The per-call figure is the median of those batch means;
the p99 of batch means shows how noisy the run was (a GC pass, a background thread,
the scheduler). The cyclic garbage collector is off while timing.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Timing:
    calls: int
    batches: int
    batch_size: int
    median_ns: float
    p99_ns: float
    min_ns: float
    mean_ns: float

    @property
    def per_second(self) -> float:
        return 1e9 / self.median_ns if self.median_ns > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("median_ns", "p99_ns", "min_ns", "mean_ns"):
            d[k] = round(d[k], 1)
        d["calls_per_second_at_median"] = round(self.per_second)
        return d


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def chunked(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def summarize(per_call: list[float], calls: int, batch_size: int) -> Timing:
    values = sorted(per_call)
    return Timing(
        calls=calls,
        batches=len(values),
        batch_size=batch_size,
        median_ns=percentile(values, 50),
        p99_ns=percentile(values, 99),
        min_ns=values[0],
        mean_ns=sum(values) / len(values),
    )


class _GcOff:
    def __enter__(self) -> None:
        self._was = gc.isenabled()
        gc.collect()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self._was:
            gc.enable()


def time_batches(
    run: Callable[[Sequence[Any]], object], chunks: Sequence[Sequence[Any]], passes: int = 1
) -> Timing:
    """Time ``run(chunk)`` for every chunk, ``passes`` times; ``run`` loops over the chunk."""
    per_call: list[float] = []
    calls = 0
    clock = time.perf_counter_ns
    with _GcOff():
        for _ in range(passes):
            for chunk in chunks:
                t0 = clock()
                run(chunk)
                t1 = clock()
                per_call.append((t1 - t0) / len(chunk))
                calls += len(chunk)
    return summarize(per_call, calls, len(chunks[0]))


async def time_batches_async(
    run: Callable[[Sequence[Any]], Awaitable[object]],
    chunks: Sequence[Sequence[Any]],
    passes: int = 1,
) -> Timing:
    """:func:`time_batches` for a coroutine that loops over the chunk."""
    per_call: list[float] = []
    calls = 0
    clock = time.perf_counter_ns
    with _GcOff():
        for _ in range(passes):
            for chunk in chunks:
                t0 = clock()
                await run(chunk)
                t1 = clock()
                per_call.append((t1 - t0) / len(chunk))
                calls += len(chunk)
    return summarize(per_call, calls, len(chunks[0]))


def noop_runner() -> Callable[[Sequence[Any]], None]:
    """The harness floor: the same loop calling a do-nothing two-argument function."""

    def noop(feature: str, context: Any) -> None:
        return None

    def run(contexts: Sequence[Any]) -> None:
        for c in contexts:
            noop("stt", c)

    return run

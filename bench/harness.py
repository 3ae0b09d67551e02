"""Batch timing: time N calls at a time, divide, and summarise the per-batch means.

A single call is far below the resolution worth trusting from one clock read, so the
harness times a batch of calls (1,000 by default) with ``time.perf_counter_ns`` and
divides by the batch size. The per-call figure is the median of those batch means;
the p99 of batch means shows how noisy the run was (a GC pass, a background thread,
the scheduler). The cyclic garbage collector is off while timing. Engines compared
with each other are timed interleaved (:func:`time_interleaved`).
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import math
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
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
    clock = time.perf_counter_ns
    with _GcOff():
        for _ in range(passes):
            for chunk in chunks:
                t0 = clock()
                run(chunk)
                t1 = clock()
                per_call.append((t1 - t0) / len(chunk))
    return summarize(per_call, sum(map(len, chunks)) * passes, len(chunks[0]))


Runner = Callable[[Sequence[Any]], object] | Callable[[Sequence[Any]], Awaitable[object]]


async def time_interleaved(
    schedule: Sequence[tuple[str, Runner, Sequence[Sequence[Any]]]], rounds: int
) -> dict[str, Timing]:
    """Time several engines batch by batch, round-robin, so all see the same machine.

    Each round times one batch of every ``(name, run, chunks)`` entry in ``schedule``
    order; a name may appear more than once per round and then takes its next chunk
    (wrapping around). ``run`` may be a plain function or a coroutine function.
    Interleaving keeps the ratios honest on a shared machine whose load drifts.
    """
    per_call: dict[str, list[float]] = {}
    calls: dict[str, int] = {}
    cursor: dict[str, int] = {}
    entries = [(n, r, c, inspect.iscoroutinefunction(r)) for n, r, c in schedule]
    clock = time.perf_counter_ns
    with _GcOff():
        for _ in range(rounds):
            for name, run, chunks, is_async in entries:
                i = cursor.get(name, 0)
                cursor[name] = i + 1
                chunk = chunks[i % len(chunks)]
                if is_async:
                    t0 = clock()
                    await run(chunk)  # type: ignore[misc]
                    t1 = clock()
                else:
                    t0 = clock()
                    run(chunk)
                    t1 = clock()
                per_call.setdefault(name, []).append((t1 - t0) / len(chunk))
                calls[name] = calls.get(name, 0) + len(chunk)
    sizes = {name: len(chunks[0]) for name, _, chunks in schedule}
    return {name: summarize(v, calls[name], sizes[name]) for name, v in per_call.items()}


def noop_runner() -> Callable[[Sequence[Any]], None]:
    """The harness floor: the same loop calling a do-nothing two-argument function."""

    def noop(feature: str, context: Any) -> None:
        return None

    def run(contexts: Sequence[Any]) -> None:
        for c in contexts:
            noop("stt", c)

    return run


def say(msg: str = "") -> None:
    print(msg, flush=True)


def version_of(dist: str) -> str:
    """The installed version of a distribution, or "not installed"."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def make_keys(n: int, seed: int) -> list[str]:
    """``n`` distinct UUID-shaped user ids, the same for the same seed, in creation order."""
    import random
    import uuid

    rng = random.Random(seed)
    keys = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]
    if len(set(keys)) != n:
        raise RuntimeError("generated keys are not distinct")
    return keys


def bench_main(
    name: str,
    parse_args: Callable[[list[str] | None], argparse.Namespace],
    run: Callable[[argparse.Namespace], dict[str, Any]],
    argv: list[str] | None = None,
) -> int:
    """A sub-benchmark's entry point: run, report a failure as exit 2, write --json."""
    args = parse_args(argv)
    try:
        fig = run(args)
    except Exception:
        traceback.print_exc()
        print(f"{name}: error, no figures", file=sys.stderr)
        return 2
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fig, indent=2) + "\n")
        say(f"figures written to {path}")
    return 0

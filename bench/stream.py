"""switchover stream-route benchmark: route_stream per call and per chunk, the circuit.

Run from the repository root::

    .venv/bin/python bench/stream.py              # about 15 s
    .venv/bin/python bench/stream.py --quick      # a few seconds
    .venv/bin/python bench/stream.py --json out.json

``bench/run.py`` runs this too (``--no-stream`` skips it), under "stream" in the JSON.

All on an in-memory backend (migration ``voice_v2``, features ``llm``, ``tts`` on, 100 %:
every call takes the candidate side, the costlier one: its first chunk is awaited under
the first-chunk deadline), every call a distinct user id, variants timed interleaved
(``harness``), GC off, per call the median over batches of (batch time / calls):

1. ``route_stream`` over an async generator of 1 and of 101 chunks against iterating
   the same generator directly. Per call: the difference at 1 chunk; per chunk: the
   growth of that difference from 1 to 101 chunks, divided by 100.
   Goals (issue 15): at most 5 us per call and 1 us per chunk.
2. The circuit-open path: ``route()`` of an operation whose circuit is open (legacy at
   once, reason ``circuit_open``) against ``await legacy(x)`` and against ``route()``
   with the circuit closed.
3. ``route()`` against ``await legacy(x)``: the figure ``bench/router.py`` reports too,
   here for a before/after check beside the stream figures.

Exit status: 0 when the run completed (a missed goal is informational), 2 on an error.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import harness

MIGRATION = "voice_v2"
LONG = 101
GOAL_CALL_NS = 5_000
GOAL_CHUNK_NS = 1_000

say = harness.say


async def one_chunk() -> AsyncIterator[bytes]:
    yield b"frame"


async def many_chunks() -> AsyncIterator[bytes]:
    for _ in range(LONG):
        yield b"frame"


async def legacy_async(x: Any) -> Any:
    return x


async def candidate_async(x: Any) -> Any:
    return x


async def failing(x: Any) -> Any:
    raise RuntimeError("candidate down")


LABELS = {
    "direct_1": "direct  async for over 1 chunk",
    "stream_1": "route_stream()  1 chunk",
    "direct_n": f"direct  async for over {LONG} chunks",
    "stream_n": f"route_stream()  {LONG} chunks",
    "direct_async": "direct  await legacy(x)",
    "route_async": "route()  circuit closed",
    "route_circuit_open": "route()  circuit open",
}


def build_runners(m: Any) -> dict[str, Callable[[Sequence[Any]], Any]]:
    route_stream = m.route_stream
    route = m.route

    async def direct_1(chunk: Sequence[Any]) -> None:
        for _ctx in chunk:
            async for _ in one_chunk():
                pass

    async def stream_1(chunk: Sequence[Any]) -> None:
        for ctx in chunk:
            async for _ in route_stream("llm", ctx, legacy=one_chunk, candidate=one_chunk):
                pass

    async def direct_n(chunk: Sequence[Any]) -> None:
        for _ctx in chunk:
            async for _ in many_chunks():
                pass

    async def stream_n(chunk: Sequence[Any]) -> None:
        for ctx in chunk:
            async for _ in route_stream("llm", ctx, legacy=many_chunks, candidate=many_chunks):
                pass

    async def direct_async(chunk: Sequence[Any]) -> None:
        for _ctx in chunk:
            await legacy_async(b"x")

    async def route_async(chunk: Sequence[Any]) -> None:
        for ctx in chunk:
            await route("tts", ctx, b"x", legacy=legacy_async, candidate=candidate_async)

    async def route_circuit_open(chunk: Sequence[Any]) -> None:
        for ctx in chunk:
            await route("tts_open", ctx, b"x", legacy=legacy_async, candidate=failing)

    return {
        "direct_1": direct_1,
        "stream_1": stream_1,
        "direct_n": direct_n,
        "stream_n": stream_n,
        "direct_async": direct_async,
        "route_async": route_async,
        "route_circuit_open": route_circuit_open,
    }


async def time_all(batch: int, rounds: int, seed: int) -> dict[str, Any]:
    from switchover.core.migration import Migration
    from switchover.sdk.backends import MemoryBackend
    from switchover.sdk.circuit import CircuitPolicy
    from switchover.sdk.client import Client

    migration = Migration(
        name=MIGRATION, percentage=100, features={"llm": True, "tts": True}, enabled=True
    )
    client = Client(MemoryBackend([migration]), background=True, flush_interval=5)
    try:
        m = client.migration(MIGRATION)
        m.configure("tts_open", feature="tts", circuit=CircuitPolicy(failures=1, cooldown=1e9))
        calls = [{"user_id": k} for k in harness.make_keys(batch * 8, seed)]
        # semantics, outside timing: the stream serves every chunk; the circuit opens
        got = [c async for c in m.route_stream("llm", calls[0], legacy=[], candidate=many_chunks)]
        if len(got) != LONG:
            raise RuntimeError(f"route_stream gave {len(got)} chunks, not {LONG}")
        if await m.route("tts_open", calls[0], 1, legacy=legacy_async, candidate=failing) != 1:
            raise RuntimeError("route() did not fall back")
        if m.circuit("tts_open") != "open":
            raise RuntimeError("the circuit did not open after its one allowed failure")
        runners = build_runners(m)
        chunks = harness.chunked(calls, batch)
        for run in runners.values():  # warm-up
            await run(chunks[-1])
        schedule = [(name, run, chunks) for name, run in runners.items()]
        started = time.perf_counter()
        timings = await harness.time_interleaved(schedule, rounds=rounds)
        seconds = time.perf_counter() - started
    finally:
        client.close()
    return {"timings": timings, "seconds": seconds}


def run(args: argparse.Namespace) -> dict[str, Any]:
    rounds = args.rounds or (8 if args.quick else 30)
    batch = args.batch or (200 if args.quick else 500)
    say(f"switchover stream benchmark: batches of {batch:,}, {rounds} per variant")
    out = asyncio.run(time_all(batch, rounds, args.seed))
    t = out["timings"]
    med = {k: v.median_ns for k, v in t.items()}
    per_call = med["stream_1"] - med["direct_1"]
    per_chunk = ((med["stream_n"] - med["direct_n"]) - per_call) / (LONG - 1)
    route_added = med["route_async"] - med["direct_async"]
    open_added = med["route_circuit_open"] - med["direct_async"]
    say()
    say(f"stream summary ({out['seconds']:.1f} s)")
    say(f"  {'per call (median of batch means)':<40} {'median ns':>10} {'p99 ns':>10}")
    for key, label in LABELS.items():
        say(f"  {label:<40} {t[key].median_ns:>10,.0f} {t[key].p99_ns:>10,.0f}")
    say()
    say(
        f"  route_stream() adds {per_call:,.0f} ns per call (goal <= {GOAL_CALL_NS:,}), "
        f"{per_chunk:,.0f} ns per chunk (goal <= {GOAL_CHUNK_NS:,})"
    )
    say(
        f"    ratio to direct iteration: {med['stream_1'] / med['direct_1']:.2f}x at 1 chunk, "
        f"{med['stream_n'] / med['direct_n']:.2f}x at {LONG} chunks"
    )
    say(
        f"  circuit open: route() adds {open_added:,.0f} ns to await legacy(x); "
        f"closed route() adds {route_added:,.0f} ns "
        f"(open/closed {med['route_circuit_open'] / med['route_async']:.2f}x)"
    )
    return {
        "timings": {k: v.to_dict() for k, v in t.items()},
        "stream_added_per_call_ns": round(per_call, 1),
        "stream_added_per_chunk_ns": round(per_chunk, 1),
        "stream_ratio_1_chunk": round(med["stream_1"] / med["direct_1"], 3),
        "stream_ratio_n_chunks": round(med["stream_n"] / med["direct_n"], 3),
        "route_added_ns": round(route_added, 1),
        "circuit_open_added_ns": round(open_added, 1),
        "goals_met": per_call <= GOAL_CALL_NS and per_chunk <= GOAL_CHUNK_NS,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/stream.py",
        description="Benchmark route_stream per call and per chunk, and the circuit-open path.",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: a few seconds")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    p.add_argument("--batch", type=int, help="calls per timed batch (500; quick 200)")
    p.add_argument("--rounds", type=int, help="timed batches per variant (30; quick 8)")
    p.add_argument("--seed", type=int, default=20240601, help="user id generator seed")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return harness.bench_main("bench/stream.py", parse_args, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())

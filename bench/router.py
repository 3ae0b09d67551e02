"""switchover router benchmark: route/shadow overhead, recorder throughput and memory.

Run from the repository root::

    .venv/bin/python bench/router.py              # under a minute (35 s idle)
    .venv/bin/python bench/router.py --quick      # about ten seconds
    .venv/bin/python bench/router.py --json out.json

``bench/run.py`` runs this too, after the decision benchmark (``--no-router`` skips it).

Four measurements, on a real SQLite store (migration ``voice_v2``, features ``stt``
and ``llm`` on, 50 %, sticky on the user id), through ``switchover.connect(url,
flush_interval=5)``:

1. ``route`` overhead: ``await m.route("stt", ctx, x, legacy=..., candidate=...)`` with
   no-op async handlers against ``await legacy(x)``, and ``route_sync`` against
   ``legacy(x)``, every call a distinct user id; the difference is the decision plus
   the recording (plus, on the candidate half, the default 10 s timeout guard; the
   figures with ``timeout=None`` are shown beside). Per call: the median over batches
   of 1,000 of (batch time / 1,000), all variants timed interleaved (``harness``), GC
   off, after a warm-up batch.
2. ``shadow`` against the ``laboratory`` package's ``Experiment.conduct()`` on the same
   no-op functions, interleaved in the same run. Both run the candidate and compare on
   every call (``sample=1.0``; laboratory builds one ``Experiment`` per call, as its
   decorator does, and publishes nowhere, while shadow records both sides). Shadow runs
   the candidate as an asyncio task, so each shadow batch ends with ``await m.drain()``
   and its time includes finishing every candidate and its comparison.
3. Recorder throughput: ``recorder.record(...)`` in a tight loop over a realistic mix
   (2 operations x 2 sides, log-normal latencies, about 1 % errors, about 2 % with an
   outcome), with the recorder's background thread flushing to the SQLite store every
   second; the whole process pinned to one CPU.
4. Memory: 10 million observations (1 million with ``--quick``) through ``record()``
   with ``at=`` advancing one simulated minute every 10,000 calls, so rollups turn over,
   and a real ``StoreSink`` into SQLite flushed every simulated minute on the recording
   thread; RSS (``/proc/self/statm``) sampled every tenth of the run.

Exit status: 0 when the run completed (a missed goal is informational), 2 on an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import os
import platform
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import harness

MIGRATION = "voice_v2"
FEATURES = ("stt", "llm")
PERCENTAGE = 50

GOAL_ROUTE_ADDED_NS = 5_000
GOAL_RECORD_PER_S = 200_000
GOAL_MEMORY_GROWTH_MIB = 8.0

OBS_PER_MINUTE = 10_000
"""Memory run: calls per simulated minute (one flush and four new rollups each)."""


say = harness.say


version_of = harness.version_of


# setup --------------------------------------------------------------------------------


def create_store(path: Path) -> str:
    """A fresh SQLite store with ``voice_v2`` (stt and llm on, 50 %); returns its URL."""
    from switchover.rollout import RolloutService
    from switchover.store import Store, upgrade

    url = f"sqlite:///{path}"
    store = Store.from_url(url)
    upgrade(store.engine)
    svc = RolloutService(store)
    svc.create(MIGRATION, features=list(FEATURES), stickiness="user_id", actor="bench")
    for feature in FEATURES:
        svc.set_feature(MIGRATION, feature, True, actor="bench")
    svc.set_percentage(MIGRATION, PERCENTAGE, actor="bench")
    store.engine.dispose()
    return url


def make_calls(n: int, seed: int) -> list[tuple[dict[str, str], bytes]]:
    """``n`` (context, argument) pairs with distinct UUID-shaped user ids."""
    keys = harness.make_keys(n, seed)
    # in creation order: a caller's context is fresh in the CPU cache when it routes the
    # call; visiting the keys in another order (sorted, say) measures cache misses
    return [({"user_id": k}, b"audio-frame") for k in keys]


# the functions under test: no-ops, sync and async
def legacy_sync(x: Any) -> Any:
    return x


def candidate_sync(x: Any) -> Any:
    return x


async def legacy_async(x: Any) -> Any:
    return x


async def candidate_async(x: Any) -> Any:
    return x


# 1 + 2: route and shadow, interleaved ---------------------------------------------------

LABELS = {
    "direct_async": "direct  await legacy(x)",
    "route_async": "route()  timeout 10 s (default)",
    "route_async_untimed": "route()  timeout=None",
    "direct_sync": "direct  legacy(x)",
    "route_sync": "route_sync()  timeout 10 s (default)",
    "route_sync_untimed": "route_sync()  timeout=None",
    "decide": "decide() alone",
    "record": "recorder.record() alone",
    "shadow_sync_fns": "shadow()  sync fns, + drain()",
    "shadow_async_fns": "shadow()  async fns, + drain()",
    "laboratory": "laboratory Experiment.conduct()",
}


def build_runners(m: Any, recorder: Any) -> dict[str, Callable[[Sequence[Any]], Any]]:
    """One runner per measured call; each loops over a chunk of (context, x) pairs."""
    from laboratory import Experiment

    route = m.route
    route_sync = m.route_sync
    shadow = m.shadow
    drain = m.drain
    decide = m.decide
    record = recorder.record
    m.configure("stt_untimed", feature="stt", timeout=None)

    async def direct_async(chunk: Sequence[Any]) -> None:
        for _ctx, x in chunk:
            await legacy_async(x)

    async def route_async(chunk: Sequence[Any]) -> None:
        for ctx, x in chunk:
            await route("stt", ctx, x, legacy=legacy_async, candidate=candidate_async)

    async def route_async_untimed(chunk: Sequence[Any]) -> None:
        for ctx, x in chunk:
            await route("stt_untimed", ctx, x, legacy=legacy_async, candidate=candidate_async)

    def direct_sync(chunk: Sequence[Any]) -> None:
        for _ctx, x in chunk:
            legacy_sync(x)

    def route_sync_default(chunk: Sequence[Any]) -> None:
        for ctx, x in chunk:
            route_sync("stt", ctx, x, legacy=legacy_sync, candidate=candidate_sync)

    def route_sync_untimed(chunk: Sequence[Any]) -> None:
        for ctx, x in chunk:
            route_sync("stt_untimed", ctx, x, legacy=legacy_sync, candidate=candidate_sync)

    def decide_only(chunk: Sequence[Any]) -> None:
        for ctx, _x in chunk:
            decide("stt", ctx)

    def record_only(chunk: Sequence[Any]) -> None:
        for _ctx, _x in chunk:
            record(MIGRATION, "stt", "legacy", 0.02, True, None, False, None)

    async def shadow_sync_fns(chunk: Sequence[Any]) -> None:
        for ctx, x in chunk:
            await shadow(
                "llm",
                ctx,
                x,
                legacy=legacy_sync,
                candidate=candidate_sync,
                compare=None,
                sample=1.0,
            )
        await drain()

    async def shadow_async_fns(chunk: Sequence[Any]) -> None:
        for ctx, x in chunk:
            await shadow(
                "llm",
                ctx,
                x,
                legacy=legacy_async,
                candidate=candidate_async,
                compare=None,
                sample=1.0,
            )
        await drain()

    def laboratory(chunk: Sequence[Any]) -> None:
        for _ctx, x in chunk:
            experiment = Experiment()
            experiment.control(legacy_sync, args=[x])
            experiment.candidate(candidate_sync, args=[x])
            experiment.conduct()

    return {
        "direct_async": direct_async,
        "route_async": route_async,
        "route_async_untimed": route_async_untimed,
        "direct_sync": direct_sync,
        "route_sync": route_sync_default,
        "route_sync_untimed": route_sync_untimed,
        "decide": decide_only,
        "record": record_only,
        "shadow_sync_fns": shadow_sync_fns,
        "shadow_async_fns": shadow_async_fns,
        "laboratory": laboratory,
    }


async def check_semantics(m: Any, calls: Sequence[Any]) -> dict[str, Any]:
    """Outside timing: route picks each side about half the time; shadow and laboratory
    run the candidate on every call; everything returns legacy's value."""
    from laboratory import Experiment

    count = {"legacy": 0, "candidate": 0}

    def counting(side: str) -> Callable[[Any], Any]:
        def fn(x: Any) -> Any:
            count[side] += 1
            return x

        return fn

    leg, cand = counting("legacy"), counting("candidate")
    for ctx, x in calls:
        if await m.route("stt", ctx, x, legacy=leg, candidate=cand) is not x:
            raise RuntimeError("route() did not return the handler's value")
    share = count["candidate"] / len(calls)
    if count["legacy"] + count["candidate"] != len(calls) or not 0.4 < share < 0.6:
        raise RuntimeError(f"route() ran {count} for {len(calls)} calls at {PERCENTAGE} %")
    for name, runs in (("shadow", "shadow"), ("laboratory", "laboratory")):
        count["legacy"] = count["candidate"] = 0
        for ctx, x in calls:
            if runs == "shadow":
                got = await m.shadow("llm", ctx, x, legacy=leg, candidate=cand)
            else:
                e = Experiment()
                e.control(leg, args=[x])
                e.candidate(cand, args=[x])
                got = e.conduct()
            if got is not x:
                raise RuntimeError(f"{name} did not return legacy's value")
        await m.drain()
        if count != {"legacy": len(calls), "candidate": len(calls)}:
            raise RuntimeError(f"{name} ran {count} for {len(calls)} calls, not every candidate")
    return {"calls": len(calls), "route_candidate_share": round(share, 3)}


async def time_calls(url: str, calls: list[Any], batch: int, rounds: int) -> dict[str, Any]:
    import switchover

    client = switchover.connect(url, flush_interval=5)
    try:
        m = client.migration(MIGRATION)
        checked = await check_semantics(m, calls[: min(len(calls), 2000)])
        runners = build_runners(m, client.recorder)
        chunks = harness.chunked(calls, batch)
        for run in runners.values():  # warm-up: one batch each
            res = run(chunks[-1])
            if asyncio.iscoroutine(res):
                await res
        schedule = [(name, run, chunks) for name, run in runners.items()]
        started = time.perf_counter()
        timings = await harness.time_interleaved(schedule, rounds=rounds)
        seconds = time.perf_counter() - started
        client.recorder.flush()
        stats = client.recorder.stats().to_dict()
    finally:
        client.close()
    if stats["failed_flushes"] or stats["dropped_observations"]:
        raise RuntimeError(f"the recorder failed during the route benchmark: {stats}")
    return {"timings": timings, "seconds": seconds, "checked": checked, "recorder": stats}


# 3: recorder throughput ---------------------------------------------------------------

Mix = list[tuple[str, str, float, bool, str | None, bool, dict[str, float] | None]]


def observation_mix(n: int, seed: int) -> Mix:
    """2 operations x 2 sides, log-normal latencies, ~1 % errors, ~2 % with outcomes."""
    rng = random.Random(seed)
    medians = {"stt": 180.0, "llm": 650.0}
    errors = ("timeout", "ConnectionError", "RuntimeError")
    out: Mix = []
    for i in range(n):
        op = FEATURES[i % 2]
        side = ("legacy", "candidate")[(i >> 1) % 2]
        latency = rng.lognormvariate(math.log(medians[op]), 0.6)
        failed = rng.random() < 0.01
        error_type = rng.choice(errors) if failed else None
        fallback = failed and side == "candidate"
        outcome = (
            {"booked": 1.0, "turns": float(rng.randint(1, 9))} if rng.random() < 0.02 else None
        )
        out.append((op, side, latency, not failed, error_type, fallback, outcome))
    return out


def _tids() -> list[int]:
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


@contextlib.contextmanager
def one_cpu() -> Any:
    """Pin every thread of this process (and those it starts) to one CPU; restore after."""
    if not hasattr(os, "sched_setaffinity"):
        yield None
        return
    allowed = os.sched_getaffinity(0)
    cpu = max(allowed)
    saved: dict[int, set[int]] = {}
    for tid in _tids():
        with contextlib.suppress(OSError):
            saved[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, {cpu})
    try:
        yield cpu
    finally:
        for tid in _tids():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, saved.get(tid, allowed))


def bench_throughput(url: str, seconds: float, seed: int) -> dict[str, Any]:
    import switchover

    mix = observation_mix(OBS_PER_MINUTE, seed)
    per_pass = len(mix)

    def floor(*_: Any) -> None:
        return None

    with one_cpu() as cpu:
        client = switchover.connect(url, flush_interval=1.0)
        try:
            record = client.recorder.record
            for op, side, lat, ok, et, fb, oc in mix:  # warm-up
                record(MIGRATION, op, side, lat, ok, et, fb, oc)
            client.recorder.flush()
            before = client.recorder.stats().flushed_observations
            clock = time.perf_counter_ns
            per_obs: list[float] = []
            total = 0
            t_start = clock()
            deadline = t_start + int(seconds * 1e9)
            while True:
                t0 = clock()
                for op, side, lat, ok, et, fb, oc in mix:
                    record(MIGRATION, op, side, lat, ok, et, fb, oc)
                t1 = clock()
                per_obs.append((t1 - t0) / per_pass)
                total += per_pass
                if t1 >= deadline:
                    break
            elapsed_ns = clock() - t_start
            flushed_during = client.recorder.stats().flushed_observations - before
            client.recorder.flush()
            stats = client.recorder.stats()
            # the loop alone, same shape, calling a no-op
            f0 = clock()
            for _ in range(3):
                for op, side, lat, ok, et, fb, oc in mix:
                    floor(MIGRATION, op, side, lat, ok, et, fb, oc)
            floor_ns = (clock() - f0) / (3 * per_pass)
        finally:
            client.close()
    if stats.failed_flushes or stats.dropped_observations:
        raise RuntimeError(f"the recorder failed during the throughput run: {stats}")
    if stats.flushed_observations - before != total:
        raise RuntimeError(
            f"recorded {total:,} observations but {stats.flushed_observations - before:,} "
            "reached the store"
        )
    per_obs.sort()
    median = harness.percentile(per_obs, 50)
    return {
        "observations": total,
        "seconds": round(elapsed_ns / 1e9, 2),
        "per_second": round(total / (elapsed_ns / 1e9)),
        "per_second_at_median_pass": round(1e9 / median),
        "median_ns": round(median, 1),
        "p99_ns": round(harness.percentile(per_obs, 99), 1),
        "loop_floor_ns": round(floor_ns, 1),
        "flushed_in_background_during_run": flushed_during,
        "flush_interval_s": 1.0,
        "pinned_cpu": cpu,
        "error_share": round(sum(1 for t in mix if not t[3]) / per_pass, 4),
        "outcome_share": round(sum(1 for t in mix if t[6]) / per_pass, 4),
    }


# 4: memory over many observations -----------------------------------------------------


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the peak is the best there is
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def bench_memory(url: str, total: int, samples: int, seed: int) -> dict[str, Any]:
    from switchover.sdk.recorder import Recorder
    from switchover.store import Store
    from switchover.store.rollup_sink import StoreSink

    mix = observation_mix(OBS_PER_MINUTE, seed + 1)
    minutes = math.ceil(total / OBS_PER_MINUTE)
    every = max(1, minutes // samples)  # sample RSS every ``every`` simulated minutes
    store = Store.from_url(url)
    recorder = Recorder(StoreSink(store), background=False)
    record = recorder.record
    start_minute = int(time.time() // 60) - minutes - 1  # the run ends about now
    gc.collect()
    rss: list[tuple[int, int]] = [(0, rss_bytes())]
    done = 0
    t0 = time.perf_counter()
    flush_s = 0.0
    try:
        for minute in range(minutes):
            at = (start_minute + minute) * 60 + 30.0
            for op, side, lat, ok, et, fb, oc in mix:
                record(MIGRATION, op, side, lat, ok, et, fb, oc, at)
            done += OBS_PER_MINUTE
            f0 = time.perf_counter()
            if not recorder.flush():
                raise RuntimeError(f"flush to SQLite failed: {recorder.stats().last_error}")
            flush_s += time.perf_counter() - f0
            if (minute + 1) % every == 0 or minute + 1 == minutes:
                rss.append((done, rss_bytes()))
        seconds = time.perf_counter() - t0
        stats = recorder.stats()
    finally:
        recorder.close()
        store.engine.dispose()
    if stats.flushed_observations != done or stats.dropped_observations:
        raise RuntimeError(f"observations lost in the memory run: {stats}")
    first_n, first = rss[1]
    last_n, last = rss[-1]
    mib = 1024 * 1024
    return {
        "observations": done,
        "simulated_minutes": minutes,
        "rollups_flushed": stats.flushed_rollups,
        "sink": "StoreSink (SQLite), flushed every simulated minute on the recording thread",
        "seconds": round(seconds, 1),
        "flush_seconds": round(flush_s, 1),
        "per_second": round(done / seconds),
        "rss_mib": [[n, round(b / mib, 1)] for n, b in rss],
        "rss_first_mib": round(first / mib, 1),
        "rss_first_at": first_n,
        "rss_last_mib": round(last / mib, 1),
        "rss_last_at": last_n,
        "growth_mib": round((last - first) / mib, 2),
        "peak_rss_mib": round(max(b for _, b in rss) / mib, 1),
    }


# report -------------------------------------------------------------------------------


def ns(x: float) -> str:
    return f"{x:,.0f}"


def build_figures(timed: dict[str, Any]) -> dict[str, Any]:
    t = {name: timing.to_dict() for name, timing in timed["timings"].items()}
    med = {name: d["median_ns"] for name, d in t.items()}
    best = {name: d["min_ns"] for name, d in t.items()}

    def added(route: str, direct: str, by: dict[str, float] = med) -> float:
        return round(by[route] - by[direct], 1)

    return {
        "route": {
            "async": {
                "direct_ns": med["direct_async"],
                "route_ns": med["route_async"],
                "added_ns": added("route_async", "direct_async"),
                "added_best_batch_ns": added("route_async", "direct_async", best),
                "route_untimed_ns": med["route_async_untimed"],
                "added_untimed_ns": added("route_async_untimed", "direct_async"),
            },
            "sync": {
                "direct_ns": med["direct_sync"],
                "route_ns": med["route_sync"],
                "added_ns": added("route_sync", "direct_sync"),
                "added_best_batch_ns": added("route_sync", "direct_sync", best),
                "route_untimed_ns": med["route_sync_untimed"],
                "added_untimed_ns": added("route_sync_untimed", "direct_sync"),
            },
            "parts": {"decide_ns": med["decide"], "record_ns": med["record"]},
            "candidate_share": timed["checked"]["route_candidate_share"],
        },
        "shadow": {
            "shadow_sync_fns_ns": med["shadow_sync_fns"],
            "shadow_async_fns_ns": med["shadow_async_fns"],
            "laboratory_ns": med["laboratory"],
            "laboratory_over_shadow_sync": round(med["laboratory"] / med["shadow_sync_fns"], 2),
            "laboratory_over_shadow_async": round(med["laboratory"] / med["shadow_async_fns"], 2),
            "shadow_sync_added_ns": added("shadow_sync_fns", "direct_sync"),
            "laboratory_added_ns": added("laboratory", "direct_sync"),
        },
        "timings": t,
        "timed_seconds": round(timed["seconds"], 1),
    }


def build_goals(fig: dict[str, Any]) -> list[dict[str, Any]]:
    ra, rs = fig["route"]["async"], fig["route"]["sync"]
    rec, mem = fig["recorder"], fig["memory"]
    return [
        {
            "goal": f"route() adds <= {GOAL_ROUTE_ADDED_NS / 1000:g} us median",
            "value": f"{ra['added_ns']:,.0f} ns",
            "pass": ra["added_ns"] <= GOAL_ROUTE_ADDED_NS,
        },
        {
            "goal": f"route_sync() adds <= {GOAL_ROUTE_ADDED_NS / 1000:g} us median",
            "value": f"{rs['added_ns']:,.0f} ns",
            "pass": rs["added_ns"] <= GOAL_ROUTE_ADDED_NS,
        },
        {
            "goal": f"recorder >= {GOAL_RECORD_PER_S:,} obs/s on one core",
            "value": f"{rec['per_second']:,} /s",
            "pass": rec["per_second"] >= GOAL_RECORD_PER_S,
        },
        {
            "goal": (
                f"memory flat over {mem['observations'] / 1e6:g}M obs"
                f" (< {GOAL_MEMORY_GROWTH_MIB:g} MiB)"
            ),
            "value": f"{mem['growth_mib']:+.1f} MiB",
            "pass": mem["growth_mib"] < GOAL_MEMORY_GROWTH_MIB,
        },
    ]


def report(fig: dict[str, Any]) -> list[str]:
    ra, rs, parts = fig["route"]["async"], fig["route"]["sync"], fig["route"]["parts"]
    sh, rec, mem = fig["shadow"], fig["recorder"], fig["memory"]
    t = fig["timings"]
    lines = [f"  {'per call (median of batch means)':<40} {'median ns':>10} {'p99 ns':>10}"]
    for name, label in LABELS.items():
        lines.append(f"  {label:<40} {ns(t[name]['median_ns']):>10} {ns(t[name]['p99_ns']):>10}")
    slower = sh["shadow_sync_fns_ns"] / sh["laboratory_ns"]
    lines += [
        "",
        f"  route() adds {ns(ra['added_ns'])} ns to the direct call, median"
        f" ({ns(ra['added_best_batch_ns'])} best batch;"
        f" timeout=None: {ns(ra['added_untimed_ns'])})",
        f"  route_sync() adds {ns(rs['added_ns'])} ns ({ns(rs['added_best_batch_ns'])} best batch;"
        f" timeout=None, no worker thread: {ns(rs['added_untimed_ns'])})",
        f"  parts: decide() {ns(parts['decide_ns'])} ns, record() {ns(parts['record_ns'])} ns;"
        f" {fig['route']['candidate_share'] * 100:.0f} % of calls on the candidate side",
        f"  shadow() {ns(sh['shadow_sync_fns_ns'])} ns (sync fns), {ns(sh['shadow_async_fns_ns'])}"
        f" ns (async fns); laboratory conduct() {ns(sh['laboratory_ns'])} ns",
        f"    laboratory/shadow {sh['laboratory_over_shadow_sync']:.2f}x (sync),"
        f" {sh['laboratory_over_shadow_async']:.2f}x (async): shadow() (sync fns) costs"
        f" {slower:.1f}x conduct()",
        "",
        f"  recorder: {rec['per_second']:,} obs/s ({rec['observations']:,} obs in"
        f" {rec['seconds']} s on CPU {rec['pinned_cpu']}; median pass"
        f" {rec['per_second_at_median_pass']:,}/s)",
        f"    includes a {rec['loop_floor_ns']:.0f} ns/obs loop floor;"
        f" {rec['flushed_in_background_during_run']:,} obs flushed by the background thread"
        " meanwhile",
        f"  memory: {mem['observations']:,} obs, {mem['simulated_minutes']:,} simulated minutes,"
        f" {mem['seconds']} s ({mem['per_second']:,}/s; {mem['flush_seconds']} s of it flushing)",
        f"    RSS {mem['rss_first_mib']} MiB at {mem['rss_first_at'] / 1e6:g}M,"
        f" {mem['rss_last_mib']} MiB at {mem['rss_last_at'] / 1e6:g}M:"
        f" {mem['growth_mib']:+.2f} MiB",
        f"    RSS MiB every {mem['rss_mib'][1][0] / 1e6:g}M obs: "
        + ", ".join(f"{b}" for _, b in mem["rss_mib"][1:]),
    ]
    meta = fig["meta"]
    load = max(meta["load_average_1min_before"], meta["load_average_1min_after"])
    if load > 0.5 * (meta["cpus"] or 1) + 1:
        lines.append("")
        lines.append(
            f"  load average (1 min) reached {load:.2f}: the machine was busy, absolute figures"
            " are noisy\n  (ratios hold better: the variants were timed interleaved)"
        )
    lines += ["", "  goals (informational)"]
    for g in fig["goals"]:
        lines.append(f"    {g['goal']:<44} {g['value']:>12}   {'PASS' if g['pass'] else 'MISS'}")
    return lines


# main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/router.py",
        description="Benchmark switchover's route/shadow overhead, recorder and memory.",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: about ten seconds")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    p.add_argument("--batch", type=int, default=1000, help="calls per timed batch (1000)")
    p.add_argument("--rounds", type=int, help="timed batches per variant (40; quick 12)")
    p.add_argument("--seed", type=int, default=20240601, help="user id generator seed")
    p.add_argument(
        "--throughput-seconds", type=float, help="recorder throughput run (4; quick 1.5)"
    )
    p.add_argument(
        "--memory-observations", type=int, help="memory run (10,000,000; quick 1,000,000)"
    )
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 12 if args.quick else 40
    if args.throughput_seconds is None:
        args.throughput_seconds = 1.5 if args.quick else 4.0
    if args.memory_observations is None:
        args.memory_observations = 1_000_000 if args.quick else 10_000_000
    if args.batch < 1 or args.rounds < 1 or args.memory_observations < 10 * OBS_PER_MINUTE:
        p.error("--batch and --rounds must be positive, --memory-observations >= 100,000")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run every section, print the report, return the figures (raises on an error)."""
    t_start = time.perf_counter()
    meta = {
        "batch": args.batch,
        "rounds": args.rounds,
        "quick": args.quick,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "versions": {d: version_of(d) for d in ("switchover", "laboratory")},
        "load_average_1min_before": os.getloadavg()[0],
    }
    say(
        f"switchover router benchmark: batches of {args.batch:,}, {args.rounds} per variant,"
        f" Python {meta['python']}, {meta['cpus']} CPUs, laboratory"
        f" {meta['versions']['laboratory']}"
    )
    say(f"  {MIGRATION}: features {', '.join(FEATURES)} on, {PERCENTAGE} %, SQLite store")
    with tempfile.TemporaryDirectory(prefix="switchover-router-bench-") as tmp:
        url = create_store(Path(tmp) / "router.db")
        calls = make_calls(args.batch * args.rounds, args.seed)

        say()
        say("route / shadow overhead (interleaved, GC off, distinct user ids)")
        timed = asyncio.run(time_calls(url, calls, args.batch, args.rounds))
        fig = build_figures(timed)
        say(f"  timed {args.rounds} rounds of {len(LABELS)} variants in {fig['timed_seconds']} s")

        say()
        say(f"recorder throughput ({args.throughput_seconds:g} s, one CPU, background flush)")
        fig["recorder"] = bench_throughput(url, args.throughput_seconds, args.seed)
        say(f"  {fig['recorder']['per_second']:,} obs/s")

        say()
        say(
            f"memory over {args.memory_observations:,} observations (record() with at=;"
            " SQLite StoreSink flushed every simulated minute)"
        )
        fig["memory"] = bench_memory(url, args.memory_observations, 10, args.seed)
        say(f"  done in {fig['memory']['seconds']} s")

    meta["load_average_1min_after"] = os.getloadavg()[0]
    meta["seconds"] = round(time.perf_counter() - t_start, 1)
    fig = {"meta": meta, **fig}
    fig["goals"] = build_goals(fig)
    say()
    say(f"router summary ({meta['seconds']} s)")
    for line in report(fig):
        say(line)
    return fig


def main(argv: list[str] | None = None) -> int:
    return harness.bench_main("bench/router.py", parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())

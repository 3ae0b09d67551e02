"""Seed 000 step 3.3's load test: simulated calls through the real worker path.

Each of ``concurrent`` callers places calls back to back for ``duration`` seconds. A call
goes through the worker exactly as a LiveKit job would: a MAX_CONCURRENCY slot, dispatch
of its metadata, the runtime config from the control plane (over HTTP, through the
shared cache), a session set-up, then ``turns`` simulated replies of about ``turn_ms``.
With a migration named, each call is routed with the router (stickiness ``campaign_id``):
candidate = the core worker path, legacy = a simulated per-agent deployment, so the
rollout's metrics fill as in production. Loopback only, bounded in time and count.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import psutil

from switchover.core.dispatch import DispatchRefused
from switchover.core.loadtest import LoadtestReport
from switchover.errors import ValidationError
from switchover.worker.backend import Backend
from switchover.worker.calls import Dispatcher
from switchover.worker.config_client import ConfigClient
from switchover.worker.runtime import WorkerRuntime
from switchover.worker.settings import WorkerSettings

MAX_DURATION = 3600.0
MAX_CONCURRENT = 1000


@dataclass(frozen=True)
class LoadtestOptions:
    agents: list[str]
    concurrent: int = 10
    duration: float = 300.0
    campaign: str | None = None
    turns: int = 3
    turn_ms: float = 300.0
    session_ms: float = 20.0
    max_calls: int = 100_000
    migration: str | None = None
    seed: int = 7


def check_loopback(url: str) -> None:
    host = urlparse(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValidationError(
            f"the load test only targets a control plane on this machine (127.0.0.1 or "
            f"localhost); BACKEND_URL is {url}",
            field="BACKEND_URL",
        )


def validate(opts: LoadtestOptions) -> None:
    if not opts.agents:
        raise ValidationError("--agents names no agent: give a,b,c", field="agents")
    if not 1 <= opts.concurrent <= MAX_CONCURRENT:
        raise ValidationError(f"--concurrent must be 1 to {MAX_CONCURRENT}", field="concurrent")
    if not 0 < opts.duration <= MAX_DURATION:
        raise ValidationError(
            f"--duration must be more than 0 and at most {MAX_DURATION:g} s", field="duration"
        )


class _Sampler:
    """CPU and memory of this process, sampled every ``every`` seconds."""

    def __init__(self, every: float = 0.25) -> None:
        self.proc = psutil.Process()
        self.every = every
        self.cpu: list[float] = []
        self.rss_mb: list[float] = []
        self.proc.cpu_percent(None)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every)
            self.cpu.append(self.proc.cpu_percent(None))
            self.rss_mb.append(self.proc.memory_info().rss / 2**20)

    def growth(self) -> float | None:
        if len(self.rss_mb) < 3:
            return None
        third = max(1, len(self.rss_mb) // 3)
        first = statistics.fmean(self.rss_mb[:third])
        last = statistics.fmean(self.rss_mb[-third:])
        return last / first - 1


async def run_loadtest(
    settings: WorkerSettings,
    opts: LoadtestOptions,
    progress: Callable[[float, int], None] | None = None,
) -> LoadtestReport:
    validate(opts)
    check_loopback(settings.backend_url)
    backend = Backend(settings.backend_url, settings.token)
    ok, why = await asyncio.to_thread(backend.healthy)
    if not ok:
        backend.close()
        raise ValidationError(
            f"the control plane at {settings.backend_url} is {why}", field="BACKEND_URL"
        )
    configs = ConfigClient(
        backend.runtime_config,
        ttl=settings.config_cache_ttl,
        max_staleness=settings.config_max_staleness,
        env=settings.env,
    )
    dispatcher = Dispatcher(configs, backend.inbound_route)
    runtime = WorkerRuntime(
        settings.max_concurrency,
        overflow=settings.overflow,
        max_queue_depth=settings.max_queue_depth,
        queue_timeout=settings.queue_timeout,
    )
    handle = _migration(settings, opts.migration)
    rng = random.Random(opts.seed)
    config_ms: list[float] = []
    session_ms: list[float] = []
    turn_ms: list[float] = []
    sides: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    calls = {"total": 0, "ok": 0, "refused": 0}
    sampler = _Sampler()
    stop = asyncio.Event()
    started = time.perf_counter()
    deadline = started + opts.duration

    async def talk(jitter: float) -> None:
        for _ in range(opts.turns):
            t0 = time.perf_counter()
            await asyncio.sleep(opts.turn_ms / 1000 * jitter)
            turn_ms.append((time.perf_counter() - t0) * 1000)

    async def core_worker_call(metadata: str) -> str:
        async def job() -> str:
            t0 = time.perf_counter()
            dispatched = await dispatcher.dispatch(metadata)
            config_ms.append(dispatched.resolved.elapsed_ms)
            await asyncio.sleep(opts.session_ms / 1000)  # session set-up (models, room)
            session_ms.append((time.perf_counter() - t0) * 1000)
            await talk(rng.uniform(0.7, 1.3))
            return "core_worker"

        return await runtime.run(job)

    async def per_agent_call(metadata: str) -> str:
        await asyncio.sleep(opts.session_ms / 1000)
        await talk(rng.uniform(0.7, 1.3))
        return "per_agent"

    async def caller(i: int) -> None:
        n = i
        while time.perf_counter() < deadline and calls["total"] < opts.max_calls:
            agent = opts.agents[n % len(opts.agents)]
            n += opts.concurrent
            calls["total"] += 1
            lead = f"lt-{i}-{n}"
            meta = {"agent_id": agent, "lead_id": lead, "call_type": "outbound"}
            if opts.campaign:
                meta["campaign_id"] = opts.campaign
            metadata = json.dumps(meta)
            try:
                if handle is not None:
                    ctx = {"campaign_id": opts.campaign or agent}
                    side = await handle.route(
                        "call", ctx, metadata, legacy=per_agent_call, candidate=core_worker_call
                    )
                else:
                    side = await core_worker_call(metadata)
                sides[side] += 1
                calls["ok"] += 1
            except DispatchRefused as exc:
                calls["refused"] += 1
                errors[exc.label] += 1
            except Exception as exc:
                errors[type(exc).__name__] += 1
            if progress is not None:
                progress(min(1.0, (time.perf_counter() - started) / opts.duration), calls["total"])

    sampler_task = asyncio.create_task(sampler.run(stop))
    try:
        await asyncio.gather(*(caller(i) for i in range(opts.concurrent)))
    finally:
        stop.set()
        await sampler_task
        backend.close()
        if handle is not None:
            handle._client.close()
    elapsed = time.perf_counter() - started
    stats = configs.stats
    turn_sorted = sorted(turn_ms)
    cpu = sampler.cpu or [0.0]
    rss = sampler.rss_mb or [psutil.Process().memory_info().rss / 2**20]
    return LoadtestReport(
        duration_s=elapsed,
        concurrent=opts.concurrent,
        agents=list(opts.agents),
        total_calls=calls["total"],
        succeeded=calls["ok"],
        refused=calls["refused"],
        errors=calls["total"] - calls["ok"],
        avg_config_fetch_ms=statistics.fmean(config_ms) if config_ms else None,
        cache_hits=stats.hits,
        cache_misses=stats.misses,
        avg_session_start_ms=statistics.fmean(session_ms) if session_ms else None,
        avg_latency_ms=statistics.fmean(turn_ms) if turn_ms else None,
        p95_latency_ms=turn_sorted[int(0.95 * (len(turn_sorted) - 1))] if turn_sorted else None,
        max_latency_ms=turn_sorted[-1] if turn_sorted else None,
        cpu_percent=(min(cpu), max(cpu)),
        memory_mb=(min(rss), max(rss)),
        memory_growth=sampler.growth(),
        peak_active_jobs=runtime.stats.peak_active,
        max_queue_depth=runtime.stats.max_queue_depth,
        sides=dict(sides),
        error_types=dict(errors),
    )


def _migration(settings: WorkerSettings, name: str | None) -> Any:
    """The migration's handle on a client of the same control plane, or None."""
    if name is None:
        return None
    from switchover.sdk.client import connect

    client = connect(settings.backend_url, token=settings.token, refresh_interval=1.0)
    handle = client.migration(name)
    if handle.snapshot is None:
        client.close()
        raise ValidationError(
            f"migration {name!r} does not exist on {settings.backend_url}: create it with "
            f"'switchover migration create {name} --stickiness campaign_id'",
            field="migration",
        )
    return handle.configure("call", feature=None, timeout=max(30.0, settings.queue_timeout + 30))


def render(report: LoadtestReport, criteria: list[Any]) -> str:
    """The seed's report, in its words."""
    r = report.to_dict()

    def ms(v: float | None) -> str:
        return "-" if v is None else (f"{v / 1000:.1f}s" if v >= 1000 else f"{v:.0f}ms")

    minutes, seconds = divmod(round(report.duration_s), 60)
    sr = report.success_rate
    hr = report.cache_hit_rate
    looked = report.cache_hits + report.cache_misses
    lines = [
        "Load Test Results:",
        "==================",
        f"Duration: {minutes}:{seconds:02d} minutes",
        f"Total calls: {report.total_calls}",
        f"Concurrent calls: {report.concurrent}",
        "Success rate: "
        + ("-" if sr is None else f"{sr:.0%} ({report.succeeded}/{report.total_calls})"),
        "",
        "Performance:",
        f"- Avg config fetch time: {ms(report.avg_config_fetch_ms)} "
        f"(cache hit rate: {'-' if hr is None else f'{hr:.0%}'})",
        f"- Avg session start time: {ms(report.avg_session_start_ms)}",
        f"- Avg response latency: {ms(report.avg_latency_ms)}",
        f"- Max response latency: {ms(report.max_latency_ms)} (p95: {ms(report.p95_latency_ms)})",
        "",
        f"Errors: {report.errors}"
        + (
            f" ({', '.join(f'{k}: {v}' for k, v in r['error_types'].items())})"
            if r["errors"]
            else ""
        ),
        f"Cache hits: {report.cache_hits}/{looked} ({(hr or 0):.0%})",
        f"Cache misses: {report.cache_misses}/{looked} ({(1 - hr) if hr is not None else 0:.0%})",
        "",
        "Worker Stats:",
        f"- CPU usage: {report.cpu_percent[0]:.0f}-{report.cpu_percent[1]:.0f}%",
        f"- Memory usage: {report.memory_mb[0]:.0f}MB-{report.memory_mb[1]:.0f}MB",
        f"- Active jobs peak: {report.peak_active_jobs}",
        f"- Job queue depth max: {report.max_queue_depth}"
        + (" (no queuing)" if report.max_queue_depth == 0 else ""),
    ]
    if report.sides:
        lines.append("- Routed: " + ", ".join(f"{k} {v}" for k, v in sorted(report.sides.items())))
    lines += ["", "Acceptance criteria:"]
    lines += [f"  [{'x' if c.passed else ' '}] {c.name}: {c.value}" for c in criteria]
    passed = all(c.passed for c in criteria)
    lines += ["", "✅ Load test PASSED" if passed else "❌ Load test FAILED"]
    return "\n".join(lines)

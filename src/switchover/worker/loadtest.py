"""Seed 000 step 3.3's load test: calls through the worker's own entrypoint.

Each of ``concurrent`` callers places calls back to back for ``duration`` seconds. A call
is a LiveKit job run by ``CoreWorker.entrypoint`` in livekit-agents' fake job context: a
MAX_CONCURRENCY slot, dispatch of its metadata, the runtime config from the control plane
(over HTTP, through the shared cache), a real ``AgentSession``, then ``turns`` caller
turns. Only the LLM and TTS are fakes (``worker.fake_providers``). With a migration
named, each call is routed with the router (stickiness ``campaign_id``): candidate = the
core worker, legacy = a per-agent deployment (the same entrypoint, slots of its own), so
the rollout's metrics fill as in production. When every call fails for one reason the
run stops at once, naming it and its fix. Loopback only, bounded in time and count.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import psutil

from switchover.core.dispatch import DispatchRefused
from switchover.core.loadtest import LoadtestReport
from switchover.errors import ValidationError
from switchover.worker.backend import Backend
from switchover.worker.calls import Dispatched, Dispatcher
from switchover.worker.config_client import ConfigClient
from switchover.worker.livekit_app import CoreWorker, PreparedCall, Providers, require_livekit
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
    target_concurrency: int | None = None
    """Calls the worker must hold at once (seed 000: "handles target concurrency");
    None: ``concurrent``."""


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
    if opts.turns < 1:
        raise ValidationError("--turns must be at least 1", field="turns")
    if opts.turn_ms < 0:
        raise ValidationError("--turn-ms must be 0 or more", field="turn_ms")
    target = opts.target_concurrency
    if target is not None and not 1 <= target <= opts.concurrent:
        raise ValidationError(
            f"--target-concurrency must be 1 to --concurrent ({opts.concurrent})",
            field="target_concurrency",
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


HINTS = {
    "unknown_agent": "check the ids in --agents with 'switchover agents list'",
    "agent_inactive": "activate the agent or leave it out of --agents",
    "no_agent_id": "give agent ids in --agents",
    "no_campaign": "check --campaign with 'switchover agents list'",
    "campaign_has_no_agents": "add the agents to the campaign or leave out --campaign",
    "at_capacity": "raise MAX_CONCURRENCY (or set OVERFLOW=queue) or lower --concurrent",
    "config_unavailable": "check that BACKEND_URL answers and SWITCHOVER_TOKEN has the worker "
    "role ('switchover token create NAME --role worker')",
    "config_unavailable:secret_key": "start 'switchover serve' with the SWITCHOVER_SECRET_KEY "
    "the agents' keys were stored with",
}
"""How to fix what made every call fail, by the failure's label."""

AGENT_REASONS = ("unknown_agent", "agent_inactive")
"""Failures that come from the agent itself: they will not change during the run."""

PASSING_REASONS = ("at_capacity", "draining")
"""Refusals that depend on the moment's load: the run goes on (its criteria judge them)."""


@dataclass
class _Call:
    """What one call went through, filled in by the entrypoint's own steps."""

    started: float
    config_ms: float | None = None
    session_ms: float | None = None
    replies_ms: list[float] = field(default_factory=list)
    refusal: str | None = None
    shutdown: str | None = None


_CALL: ContextVar[_Call] = ContextVar("loadtest_call")


class CallFailed(Exception):
    """A call the worker refused or failed; ``label`` is why (``unknown_agent``, …)."""

    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.label = label


class StoppedEarly(Exception):
    """Every call failed for one reason: running on would only repeat it."""

    def __init__(self, label: str, calls: int, agents: list[str] | None = None) -> None:
        self.label, self.calls, self.agents = label, calls, agents or []
        who = "every call"
        if self.agents:
            named = ", ".join(repr(a) for a in self.agents)
            who = f"every call to agent{'s' if len(self.agents) > 1 else ''} {named}"
        fix = HINTS.get(label) or HINTS.get(label.split(":")[0]) or "see the worker's log"
        super().__init__(f"{who} failed with {label} ({calls} calls): {fix}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.label,
            "calls": self.calls,
            "agents": self.agents,
            "message": str(self),
        }


class _WatchedDispatcher(Dispatcher):
    """The worker's dispatcher, noting why it refused a call (the job only logs it)."""

    async def dispatch(self, metadata: Any) -> Dispatched:
        try:
            return await super().dispatch(metadata)
        except DispatchRefused as exc:
            _CALL.get().refusal = exc.label
            raise


class _FailureWatch:
    """Stops the run once every call so far failed for one reason (at least ``enough``
    calls, capacity refusals aside), or every call to one agent failed because of the
    agent itself."""

    def __init__(self, agents: list[str]) -> None:
        self.enough = max(3, len(agents))
        self.succeeded = 0
        self.reasons: Counter[str] = Counter()
        self.by_agent: dict[str, Counter[str]] = {a: Counter() for a in agents}
        self.agent_ok: Counter[str] = Counter()

    def ok(self, agent: str) -> None:
        self.succeeded += 1
        self.agent_ok[agent] += 1

    def failed(self, agent: str, label: str) -> StoppedEarly | None:
        if label in PASSING_REASONS:
            return None
        self.reasons[label] += 1
        self.by_agent[agent][label] += 1
        failed = sum(self.reasons.values())
        if not self.succeeded and len(self.reasons) == 1 and failed >= self.enough:
            named = [a for a in self.by_agent if self._bad(a, label)]
            return StoppedEarly(label, failed, named if label in AGENT_REASONS else None)
        if label in AGENT_REASONS and self._bad(agent, label) and self.by_agent[agent][label] >= 2:
            bad = [a for a in self.by_agent if self._bad(a, label)]
            return StoppedEarly(label, sum(self.by_agent[a][label] for a in bad), bad)
        return None

    def _bad(self, agent: str, label: str) -> bool:
        """Every call to ``agent`` so far failed with ``label`` (and there was one)."""
        mine = self.by_agent[agent]
        return not self.agent_ok[agent] and set(mine) == {label}


async def run_loadtest(
    settings: WorkerSettings,
    opts: LoadtestOptions,
    progress: Callable[[float, int], None] | None = None,
) -> LoadtestReport:
    """Each call is a LiveKit job through ``CoreWorker.entrypoint`` in livekit-agents' fake
    job context; only the providers are fakes (``worker.fake_providers``)."""
    validate(opts)
    check_loopback(settings.backend_url)
    require_livekit()
    from livekit.agents.testing import fake_job_context

    from switchover.worker.fake_providers import FakeLLM, FakeTTS, TimedAudio

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
    dispatcher = _WatchedDispatcher(configs, backend.inbound_route)
    rng = random.Random(opts.seed)
    providers = Providers(
        llm=lambda _config: FakeLLM(opts.turn_ms, rng),
        tts=lambda _config: FakeTTS(),
        stt=lambda _config: None,
    )

    async def converse(_ctx: Any, prepared: PreparedCall) -> None:
        call = _CALL.get()
        call.config_ms = prepared.timings_ms.get("config_ms")
        session = prepared.session
        speaker = TimedAudio()
        session.output.audio = speaker
        try:
            await session.start(prepared.agent)
            call.session_ms = (time.perf_counter() - call.started) * 1000
            for turn in range(opts.turns):
                speaker.expect_reply()
                asked = time.perf_counter()
                await session.run(user_input=f"question {turn + 1}")
                if speaker.first_at is None:
                    raise CallFailed("no_reply_audio")
                call.replies_ms.append((speaker.first_at - asked) * 1000)
        finally:
            await session.aclose()

    def worker(max_concurrency: int) -> CoreWorker:
        runtime = WorkerRuntime(
            max_concurrency,
            overflow=settings.overflow,
            max_queue_depth=settings.max_queue_depth,
            queue_timeout=settings.queue_timeout,
        )
        return CoreWorker(settings, dispatcher, runtime, providers, converse=converse)

    core = worker(settings.max_concurrency)
    per_agent = worker(MAX_CONCURRENT)  # one deployment per agent: no shared limit
    handle = _migration(settings, opts.migration)
    logging.getLogger("switchover.worker").setLevel(logging.CRITICAL)  # refusals are counted
    config_ms: list[float] = []
    session_ms: list[float] = []
    turn_ms: list[float] = []
    sides: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    calls = {"total": 0, "ok": 0, "refused": 0}
    watch = _FailureWatch(opts.agents)
    stopped: list[StoppedEarly] = []  # the last says most: calls in flight end after the first
    sampler = _Sampler()
    stop = asyncio.Event()

    async def job(side: CoreWorker, name: str, metadata: str, n: int) -> str:
        call = _Call(time.perf_counter())
        token = _CALL.set(call)
        try:
            with fake_job_context(job_id=f"loadtest-{n}", job_metadata=metadata) as ctx:
                ctx._on_shutdown = lambda reason: setattr(call, "shutdown", reason)
                await side.entrypoint(ctx)
        finally:
            _CALL.reset(token)
        if call.shutdown is not None:
            raise CallFailed(call.refusal or call.shutdown.split(": ", 1)[-1])
        if call.config_ms is not None:
            config_ms.append(call.config_ms)
        if call.session_ms is not None:
            session_ms.append(call.session_ms)
        turn_ms.extend(call.replies_ms)
        return name

    async def candidate(metadata: str, n: int) -> str:
        return await job(core, "core_worker", metadata, n)

    async def legacy(metadata: str, n: int) -> str:
        return await job(per_agent, "per_agent", metadata, n)

    await _warm_up(core, fake_job_context, TimedAudio)
    started = time.perf_counter()
    deadline = started + opts.duration

    async def caller(i: int) -> None:
        n = i
        while time.perf_counter() < deadline and calls["total"] < opts.max_calls and not stopped:
            agent = opts.agents[n % len(opts.agents)]
            n += opts.concurrent
            calls["total"] += 1
            metadata = _metadata(opts, agent, f"lt-{i}-{n}")
            try:
                if handle is not None:
                    ctx = {"campaign_id": opts.campaign or agent}
                    side = await handle.route(
                        "call", ctx, metadata, n, legacy=legacy, candidate=candidate
                    )
                else:
                    side = await candidate(metadata, n)
                sides[side] += 1
                calls["ok"] += 1
                watch.ok(agent)
            except CallFailed as exc:
                calls["refused"] += 1
                errors[exc.label] += 1
                if (early := watch.failed(agent, exc.label)) is not None:
                    stopped.append(early)
            except Exception as exc:
                errors[type(exc).__name__] += 1
                if (early := watch.failed(agent, type(exc).__name__)) is not None:
                    stopped.append(early)
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
        peak_active_jobs=core.runtime.stats.peak_active,
        max_queue_depth=core.runtime.stats.max_queue_depth,
        sides=dict(sides),
        error_types=dict(errors),
        target_concurrency=opts.target_concurrency or opts.concurrent,
        stopped_early=stopped[-1].to_dict() if stopped else None,
    )


async def _warm_up(core: CoreWorker, fake_job_context: Any, audio: Any) -> None:
    """One session before the clock starts: the process's first loads livekit's lazy
    parts, which is not a caller's wait. No config fetch, so the cache counts stay true."""
    session, agent = core.build_session({"system_prompt": "Warm up."})
    session.output.audio = audio()
    with fake_job_context(job_id="loadtest-warm-up"):
        try:
            await session.start(agent)
            await session.run(user_input="hello")
        finally:
            await session.aclose()


def _metadata(opts: LoadtestOptions, agent: str, lead: str) -> str:
    meta = {"agent_id": agent, "lead_id": lead, "call_type": "outbound"}
    if opts.campaign:
        meta["campaign_id"] = opts.campaign
    return json.dumps(meta)


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
    if report.stopped_early:
        lines += ["", f"Stopped early: {report.stopped_early['message']}"]
    lines += ["", "Acceptance criteria:"]
    lines += [f"  [{'x' if c.passed else ' '}] {c.name}: {c.value}" for c in criteria]
    passed = all(c.passed for c in criteria)
    lines += ["", "✅ Load test PASSED" if passed else "❌ Load test FAILED"]
    return "\n".join(lines)

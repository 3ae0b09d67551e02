"""The core worker on LiveKit Agents 1.x (``pip install 'switchover[livekit]'``).

One entrypoint for every agent: it reads ``ctx.job.metadata`` (seed 000 step 2.2),
resolves the agent's runtime config through the shared cache, builds an
``AgentSession`` whose LLM, TTS and STT the config chooses, and serves the call in one
of MAX_CONCURRENCY slots. ``load`` is the server's ``load_fnc`` (threshold 1.0): a full
worker gets no more jobs from LiveKit (``refuse``); with ``queue`` it takes jobs until
its queue is full too and holds them until a slot frees.

Jobs run on threads of this process (``JobExecutorType.THREAD``), so they share one
config cache: that is what makes single-flight and a high hit rate possible.
Nothing here imports ``livekit`` at module level: switchover works without the extra.

Providers: the plugin each provider needs, built with the agent's own key and model
(``worker.providers``); a provider without its plugin fails the job, naming the package.
With ``SWITCHOVER_MIGRATION`` set, each job is recorded into the migration on the
worker's side (``worker.recording``).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from switchover.core.dispatch import DispatchRefused, Refusal
from switchover.worker.calls import Dispatched, Dispatcher
from switchover.worker.providers import ProviderMissing, build_llm, build_stt, build_tts
from switchover.worker.recording import JobRecord, JobRecorder
from switchover.worker.runtime import WorkerRuntime
from switchover.worker.settings import WorkerSettings

log = logging.getLogger("switchover.worker")


def require_livekit() -> Any:
    try:
        return importlib.import_module("livekit.agents")
    except ImportError as exc:
        from switchover.errors import ValidationError

        raise ValidationError(
            "the LiveKit worker needs livekit-agents: pip install 'switchover[livekit]'",
            field="livekit",
        ) from exc


@dataclass
class Providers:
    """How the session's components are built from a config (tests pass fakes)."""

    llm: Callable[[dict[str, Any]], Any] = build_llm
    tts: Callable[[dict[str, Any]], Any] = build_tts
    stt: Callable[[dict[str, Any]], Any] = build_stt


def instructions(config: dict[str, Any]) -> str:
    text = str(config["system_prompt"])
    if config.get("personality"):
        text += f"\n\nPersonality: {config['personality']}"
    return text


@dataclass
class PreparedCall:
    dispatched: Dispatched
    session: Any
    agent: Any
    timings_ms: dict[str, float] = field(default_factory=dict)
    record: JobRecord | None = None


class CoreWorker:
    def __init__(
        self,
        settings: WorkerSettings,
        dispatcher: Dispatcher,
        runtime: WorkerRuntime,
        providers: Providers | None = None,
        recorder: JobRecorder | None = None,
        converse: Callable[[Any, PreparedCall], Awaitable[None]] | None = None,
    ) -> None:
        """``recorder``: each job into a migration (None: nothing recorded).
        ``converse``: what the job does once prepared (default: join the room, start the
        session, wait for the job's shutdown); tests hand a scripted conversation."""
        self.settings = settings
        self.dispatcher = dispatcher
        self.runtime = runtime
        self.providers = providers or Providers()
        self.recorder = recorder
        self.converse = converse or self._in_the_room

    def load(self, *_server: Any) -> float:
        """LiveKit's ``load_fnc``: 1.0 means full, and LiveKit sends the job elsewhere.

        ``refuse``: active calls over MAX_CONCURRENCY. ``queue``: active and queued calls
        over MAX_CONCURRENCY + MAX_QUEUE_DEPTH, so jobs keep coming until the queue is full.
        """
        rt = self.runtime
        if self.settings.overflow != "queue":
            return rt.load()
        room = rt.max_concurrency + rt.max_queue_depth
        return min(1.0, (rt.stats.active + rt.stats.queued) / room)

    def heartbeat_body(self) -> dict[str, Any]:
        """What the registry shows of this worker (``worker.heartbeat``)."""
        from switchover.worker.heartbeat import instance_name, version

        st = self.runtime.stats
        return {
            "instance": instance_name(self.settings.worker_name),
            "name": self.settings.worker_name,
            "version": version(),
            "jobs_active": st.active,
            "jobs_total": st.started,
            "jobs_failed": st.failed,
            "load": round(self.load(), 4),
            "max_concurrency": self.settings.max_concurrency,
            "interval": self.settings.heartbeat_interval or 10.0,
            "migration": self.settings.migration,
            "side": self.settings.side if self.settings.migration else None,
        }

    def build_session(self, config: dict[str, Any]) -> tuple[Any, Any]:
        agents = require_livekit()
        session = agents.AgentSession(
            llm=self.providers.llm(config),
            tts=self.providers.tts(config),
            stt=self.providers.stt(config),
        )
        return session, agents.Agent(instructions=instructions(config))

    async def prepare(self, ctx: Any) -> PreparedCall:
        """Dispatch the job's metadata and build its session (not started)."""
        dispatched = await self.dispatcher.dispatch(ctx.job.metadata)
        return self.prepare_dispatched(ctx, dispatched)

    def prepare_dispatched(self, ctx: Any, dispatched: Dispatched) -> PreparedCall:
        """The session for a dispatched call (not started); ProviderMissing if a
        provider's plugin is not installed."""
        session, agent = self.build_session(dispatched.config)
        r = dispatched.resolved
        log.info(
            "job %s: agent %s, campaign %s, %s call; config %s in %.1f ms; keys %s",
            ctx.job.id,
            dispatched.call.agent_id,
            dispatched.call.campaign_id,
            dispatched.call.call_type,
            "from cache" if r.source == "cache" else f"{r.source}ed",
            r.elapsed_ms,
            ", ".join(f"{k}={v}" for k, v in sorted(r.key_sources.items())),
        )
        return PreparedCall(dispatched, session, agent, {"config_ms": r.elapsed_ms})

    async def _in_the_room(self, ctx: Any, prepared: PreparedCall) -> None:
        await ctx.connect()
        await prepared.session.start(agent=prepared.agent, room=ctx.room)
        if prepared.record is not None:
            prepared.record.session_ready()
        ended = asyncio.Event()

        async def on_shutdown(*_reason: Any) -> None:
            ended.set()

        ctx.add_shutdown_callback(on_shutdown)
        await ended.wait()

    async def entrypoint(self, ctx: Any) -> None:
        """The job: take a slot (or refuse), prepare, start the session, serve the call;
        with a recorder, the job's ``call`` (and its session's stt/llm/tts) recorded."""
        started = time.perf_counter()
        record: list[JobRecord] = []

        async def serve() -> None:
            dispatched = await self.dispatcher.dispatch(ctx.job.metadata)
            if self.recorder is not None:
                record.append(self.recorder.job(dispatched.call, started))
            prepared = self.prepare_dispatched(ctx, dispatched)
            if record:
                prepared.record = record[0]
                record[0].attach(prepared.session)
            await self.converse(ctx, prepared)

        try:
            await self.runtime.run(serve)
        except DispatchRefused as exc:
            log.warning("job %s refused (%s): %s", ctx.job.id, exc.reason.value, exc.message)
            if exc.reason not in (Refusal.AT_CAPACITY, Refusal.DRAINING):
                self._record_refusal(ctx, exc, started)
            ctx.shutdown(reason=f"refused: {exc.reason.value}")
        except ProviderMissing as exc:
            log.error("job %s failed: %s", ctx.job.id, exc.message)
            if record:
                record[0].end(exc)
            ctx.shutdown(reason=f"failed: {exc.code}")
        except BaseException as exc:
            if record:
                record[0].end(exc)
            raise
        else:
            if record:
                record[0].end()

    def _record_refusal(self, ctx: Any, exc: DispatchRefused, started: float) -> None:
        """A job this worker could not serve (unknown agent, no config): a failed call."""
        if self.recorder is None:
            return
        from switchover.core.dispatch import parse_metadata

        try:
            call = parse_metadata(ctx.job.metadata)
        except DispatchRefused:
            return
        self.recorder.job(call, started).end(exc)

    def server(self) -> Any:
        """An ``AgentServer`` for this worker: thread jobs, our load, drain timeout, and its
        health endpoint on ``PORT`` (Cloud Run's health checks need it)."""
        agents = require_livekit()
        server = agents.AgentServer(
            job_executor_type=agents.JobExecutorType.THREAD,
            load_fnc=self.load,
            load_threshold=1.0,
            drain_timeout=int(self.settings.drain_timeout),
            ws_url=self.settings.livekit_url,
            api_key=self.settings.env.get("LIVEKIT_API_KEY"),
            api_secret=self.settings.env.get("LIVEKIT_API_SECRET"),
            port=self.settings.http_port,
        )
        server.rtc_session(self.entrypoint, agent_name=self.settings.worker_name)
        return server

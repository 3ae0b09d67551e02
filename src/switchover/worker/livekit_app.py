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

Providers: when a plugin is installed (``livekit-plugins-openai``, ``-cartesia``, …)
it is built with the agent's own key and model; otherwise the model goes through
LiveKit Inference as ``provider/model``, with the LiveKit credentials.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from switchover.core.dispatch import DispatchRefused
from switchover.worker.calls import Dispatched, Dispatcher
from switchover.worker.runtime import WorkerRuntime
from switchover.worker.settings import WorkerSettings

log = logging.getLogger("switchover.worker")

INFERENCE_TTS = {"cartesia": "cartesia/sonic-2", "elevenlabs": "elevenlabs/eleven_flash_v2_5"}
INFERENCE_STT = {"assemblyai": "assemblyai/universal-streaming", "deepgram": "deepgram/nova-3"}


def require_livekit() -> Any:
    try:
        return importlib.import_module("livekit.agents")
    except ImportError as exc:
        from switchover.errors import ValidationError

        raise ValidationError(
            "the LiveKit worker needs livekit-agents: pip install 'switchover[livekit]'",
            field="livekit",
        ) from exc


def _plugin(provider: str) -> Any | None:
    try:
        return importlib.import_module(f"livekit.plugins.{provider}")
    except ImportError:
        return None


def build_llm(config: dict[str, Any]) -> Any:
    plugin = _plugin(config["llm_provider"])
    if plugin is not None and hasattr(plugin, "LLM"):
        return plugin.LLM(
            model=config["llm_model"],
            api_key=config["llm_api_key"],
            temperature=config["temperature"],
        )
    return f"{config['llm_provider']}/{config['llm_model']}"


def build_tts(config: dict[str, Any]) -> Any:
    provider, voice = config["tts_provider"], config["voice_id"]
    plugin = _plugin(provider)
    if plugin is not None and hasattr(plugin, "TTS"):
        kwargs: dict[str, Any] = {"api_key": config["tts_api_key"]}
        if voice and voice != "default":
            kwargs["voice"] = voice
        return plugin.TTS(**kwargs)
    model = INFERENCE_TTS.get(provider, provider)
    return model if not voice or voice == "default" else f"{model}:{voice}"


def build_stt(config: dict[str, Any]) -> Any:
    provider = config["stt_provider"]
    plugin = _plugin(provider)
    if plugin is not None and hasattr(plugin, "STT"):
        return plugin.STT(api_key=config["stt_api_key"])
    return INFERENCE_STT.get(provider, provider)


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


class CoreWorker:
    def __init__(
        self,
        settings: WorkerSettings,
        dispatcher: Dispatcher,
        runtime: WorkerRuntime,
        providers: Providers | None = None,
    ) -> None:
        self.settings = settings
        self.dispatcher = dispatcher
        self.runtime = runtime
        self.providers = providers or Providers()

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

    async def entrypoint(self, ctx: Any) -> None:
        """The job: take a slot (or refuse), prepare, start the session, serve the call."""

        async def serve() -> None:
            prepared = await self.prepare(ctx)
            await ctx.connect()
            await prepared.session.start(agent=prepared.agent, room=ctx.room)
            ended = asyncio.Event()

            async def on_shutdown(*_reason: Any) -> None:
                ended.set()

            ctx.add_shutdown_callback(on_shutdown)
            await ended.wait()

        try:
            await self.runtime.run(serve)
        except DispatchRefused as exc:
            log.warning("job %s refused (%s): %s", ctx.job.id, exc.reason.value, exc.message)
            ctx.shutdown(reason=f"refused: {exc.reason.value}")

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

"""The LiveKit Agents entrypoint with livekit-agents' own fake job context and a fake LLM.

No LiveKit server is reachable here: ``livekit.agents.testing.fake_job_context`` gives a
real ``JobContext`` with the job's metadata, and the session runs in text mode against a
fake LLM that answers from the system prompt it was given.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

pytest.importorskip("livekit.agents")

from livekit.agents import APIConnectOptions, llm
from livekit.agents.testing import fake_job_context

from switchover.worker.calls import Dispatcher
from switchover.worker.config_client import ConfigClient, ConfigRejected
from switchover.worker.livekit_app import CoreWorker, Providers
from switchover.worker.runtime import WorkerRuntime
from switchover.worker.settings import WorkerSettings

CONFIGS = {
    "greeter": {
        "agent_id": "greeter",
        "system_prompt": "You are the Acme Dental receptionist.",
        "personality": "warm",
        "voice_id": "echo",
        "llm_provider": "openai",
        "llm_model": "gpt-4o-mini",
        "temperature": 0.6,
        "tts_provider": "cartesia",
        "stt_provider": "assemblyai",
        "llm_api_key": None,
    },
}


class FakeLLM(llm.LLM):
    """Answers with the first line of its system prompt, and remembers what it was asked."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = config
        self.seen: list[str] = []

    def chat(self, *, chat_ctx: llm.ChatContext, tools: Any = None, **_: Any) -> llm.LLMStream:
        return FakeStream(
            self, chat_ctx=chat_ctx, tools=tools or [], conn_options=APIConnectOptions()
        )


class FakeStream(llm.LLMStream):
    async def _run(self) -> None:
        fake: FakeLLM = self._llm  # type: ignore[assignment]
        system = [
            m.text_content for m in self._chat_ctx.items if getattr(m, "role", "") == "system"
        ]
        fake.seen.append(system[0] or "")
        reply = f"[{fake.config['llm_model']}] " + (system[0] or "").splitlines()[0]
        self._event_ch.send_nowait(
            llm.ChatChunk(id="fake", delta=llm.ChoiceDelta(role="assistant", content=reply))
        )


def fetch(agent_id: str, campaign_id: str | None) -> dict[str, Any]:
    if agent_id not in CONFIGS:
        raise ConfigRejected(404, "not_found", f"no agent {agent_id!r}")
    return {**CONFIGS[agent_id], "campaign_id": campaign_id}


def worker(max_concurrency: int = 2, overflow: str = "refuse") -> tuple[CoreWorker, list[FakeLLM]]:
    made: list[FakeLLM] = []

    def fake_llm(config: dict[str, Any]) -> FakeLLM:
        made.append(FakeLLM(config))
        return made[-1]

    settings = WorkerSettings.from_env(
        {
            "MAX_CONCURRENCY": str(max_concurrency),
            "WORKER_OVERFLOW": overflow,
            "MAX_QUEUE_DEPTH": "2",
        }
    )
    providers = Providers(llm=fake_llm, tts=lambda c: None, stt=lambda c: None)
    runtime = WorkerRuntime(max_concurrency, overflow=overflow, max_queue_depth=2)
    return CoreWorker(settings, Dispatcher(ConfigClient(fetch)), runtime, providers), made


METADATA = json.dumps(
    {"agent_id": "greeter", "campaign_id": "camp456", "lead_id": "lead123", "call_type": "outbound"}
)


def test_entrypoint_builds_the_agent_the_job_metadata_names_and_it_talks() -> None:
    core, made = worker()

    async def scenario() -> str:
        with fake_job_context(job_metadata=METADATA) as ctx:
            prepared = await core.prepare(ctx)
            assert prepared.dispatched.call.lead_id == "lead123"
            assert prepared.dispatched.config["campaign_id"] == "camp456"
            async with prepared.session as session:
                await session.start(prepared.agent)
                result = await session.run(user_input="Hello")
                result.expect.next_event().is_message(role="assistant")
                return str(result.events[-1].item.text_content)

    reply = asyncio.run(scenario())
    assert reply == "[gpt-4o-mini] You are the Acme Dental receptionist."
    assert made[0].seen[0].endswith("Personality: warm")


def test_a_job_for_an_unknown_agent_is_refused_and_shut_down() -> None:
    core, made = worker()
    reasons: list[str] = []

    async def scenario() -> None:
        with fake_job_context(job_metadata=json.dumps({"agent_id": "ghost"})) as ctx:
            ctx._on_shutdown = reasons.append
            await core.entrypoint(ctx)

    asyncio.run(scenario())
    assert reasons == ["refused: unknown_agent"] and made == []
    assert core.runtime.stats.active == 0


def test_load_fnc_honours_max_concurrency() -> None:
    core, _ = worker(max_concurrency=2)
    assert core.load() == 0.0
    core.runtime.stats.active = 1
    assert core.load() == 0.5
    core.runtime.stats.active = 2
    assert core.load() == 1.0
    queued, _ = worker(max_concurrency=2, overflow="queue")
    queued.runtime.stats.active = 2
    assert queued.load() == 0.5  # 2 of 2 slots + 2 queue places
    server = core.server()
    assert server.load_fnc() == 1.0  # the server asks the worker's own load

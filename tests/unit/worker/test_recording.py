"""The core worker records each job into its migration: the session's stt/llm/tts and the
job's ``call`` with the session's outcome; a provider without its plugin fails the job
naming the package; the agent's own keys and models reach the real plugin constructors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("livekit.agents")

from livekit.agents.testing import fake_job_context

from switchover.worker.calls import Dispatcher
from switchover.worker.config_client import ConfigClient
from switchover.worker.livekit_app import CoreWorker, PreparedCall, Providers
from switchover.worker.providers import ProviderMissing, build_llm, build_stt, build_tts
from switchover.worker.recording import JobRecorder
from switchover.worker.runtime import WorkerRuntime
from switchover.worker.settings import WorkerSettings
from unit.integrations_livekit.fakes import FakeLLM, FakeSTT, FakeTTS, KeptAudio
from unit.sdk.routing_env import Env

CONFIG = {
    "agent_id": "greeter",
    "system_prompt": "You are the Acme Dental receptionist.",
    "voice_id": "echo",
    "llm_provider": "openai",
    "llm_model": "gpt-4o-mini",
    "temperature": 0.6,
    "tts_provider": "cartesia",
    "stt_provider": "assemblyai",
    "llm_api_key": "sk-agent-own",
    "tts_api_key": None,
    "stt_api_key": None,
}
METADATA = json.dumps({"agent_id": "greeter", "campaign_id": "camp456", "lead_id": "lead1"})


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env()
    yield e
    e.client.close()


async def two_turns(ctx: Any, prepared: PreparedCall) -> None:
    session = prepared.session
    session.output.audio = KeptAudio()
    await session.start(prepared.agent)
    assert prepared.record is not None
    prepared.record.session_ready()
    for text in ("Hello", "I need a cleaning"):
        await session.run(user_input=text)
    await session.aclose()


def worker(
    env: Env, side: str = "candidate", config: dict[str, Any] | None = None, **kw: Any
) -> CoreWorker:
    cfg = {**CONFIG, **(config or {})}
    settings = WorkerSettings.from_env(
        {"SWITCHOVER_MIGRATION": env.m.name, "SWITCHOVER_SIDE": side}
    )
    return CoreWorker(
        settings,
        Dispatcher(ConfigClient(lambda agent, campaign: dict(cfg))),
        WorkerRuntime(2),
        kw.pop("providers", None)
        or Providers(
            llm=lambda c: FakeLLM("core"), tts=lambda c: FakeTTS(5), stt=lambda c: FakeSTT("s")
        ),
        recorder=JobRecorder(env.m, settings.side, settings.operations),
        converse=two_turns,
        **kw,
    )


def run_job(core: CoreWorker, metadata: str = METADATA) -> list[str]:
    reasons: list[str] = []

    async def job() -> None:
        with fake_job_context(job_metadata=metadata) as ctx:
            ctx._on_shutdown = reasons.append
            await core.entrypoint(ctx)

    asyncio.run(job())
    return reasons


@pytest.mark.parametrize("side", ["candidate", "legacy"])
def test_a_job_is_recorded_on_the_workers_side_with_its_outcome(env: Env, side: str) -> None:
    run_job(worker(env, side))
    ops = [(c["operation"], c["side"], c["ok"]) for c in env.calls()]
    assert ops.count(("llm", side, True)) == 2 and ops.count(("tts", side, True)) == 2
    (call,) = env.calls("call")
    assert call["side"] == side and call["ok"] and call["error_type"] is None
    assert call["outcome"]["call.completed"] == 1 and call["outcome"]["call.turns"] == 2
    assert call["outcome"]["call.duration_s"] > 0 and any(
        k.startswith("close.") for k in call["outcome"]
    )
    assert all(c["first_chunk_ms"] is not None for c in env.calls("llm"))


def test_only_the_operations_asked_for_are_recorded(env: Env) -> None:
    core = worker(env)
    core.recorder = JobRecorder(env.m, "candidate", ("call",))
    run_job(core)
    assert [c["operation"] for c in env.calls()] == ["call"]
    with pytest.raises(Exception, match="SWITCHOVER_OPERATIONS"):
        WorkerSettings.from_env({"SWITCHOVER_OPERATIONS": "stt,asr"})
    with pytest.raises(Exception, match="SWITCHOVER_SIDE"):
        WorkerSettings.from_env({"SWITCHOVER_SIDE": "core"})


def test_a_provider_without_its_plugin_fails_the_job_naming_the_package(env: Env) -> None:
    core = worker(
        env,
        config={"llm_provider": "anthropic"},
        providers=Providers(llm=build_llm, tts=lambda c: FakeTTS(5), stt=lambda c: None),
    )
    try:
        import livekit.plugins.anthropic  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("livekit-plugins-anthropic is installed here")
    assert run_job(core) == ["failed: provider_missing"]
    (call,) = env.calls()
    assert call["operation"] == "call" and not call["ok"]
    assert call["error_type"] == "provider_missing" and call["outcome"]["call.failed"] == 1
    with pytest.raises(ProviderMissing, match="pip install livekit-plugins-anthropic"):
        build_llm({**CONFIG, "llm_provider": "anthropic"})


def test_a_job_for_an_unknown_agent_is_a_failed_call(env: Env) -> None:
    core = worker(env)
    core.dispatcher = Dispatcher(ConfigClient(_unknown))
    assert run_job(core) == ["refused: unknown_agent"]
    (call,) = env.calls()
    assert (call["operation"], call["ok"], call["error_type"]) == ("call", False, "unknown_agent")


def _unknown(agent: str, campaign: str | None) -> dict[str, Any]:
    from switchover.worker.config_client import ConfigRejected

    raise ConfigRejected(404, "not_found", f"no agent {agent!r}")


def test_the_agents_own_keys_models_and_voice_reach_the_plugin_constructors() -> None:
    pytest.importorskip("livekit.plugins.openai")
    pytest.importorskip("livekit.plugins.cartesia")
    pytest.importorskip("livekit.plugins.assemblyai")
    pytest.importorskip("livekit.plugins.deepgram")
    config = {**CONFIG, "tts_api_key": "ck-agent-own", "stt_api_key": "aai-agent-own"}
    llm = build_llm(config)
    assert llm.model == "gpt-4o-mini" and llm._client.api_key == "sk-agent-own"
    assert llm._opts.temperature == 0.6
    tts = build_tts(config)
    assert (tts._opts.api_key, tts._opts.voice) == ("ck-agent-own", "echo")
    assert build_stt(config)._api_key == "aai-agent-own"
    deepgram = {**config, "tts_provider": "deepgram", "stt_provider": "deepgram"}
    deepgram.update(voice_id="aura-2-thalia-en", tts_api_key="dg-tts", stt_api_key="dg-stt")
    dg_tts = build_tts(deepgram)
    assert (dg_tts._opts.api_key, dg_tts.model) == ("dg-tts", "aura-2-thalia-en")
    assert build_stt(deepgram)._api_key == "dg-stt"
    with pytest.raises(ProviderMissing, match="use one of"):
        build_stt({**config, "stt_provider": "whisperx"})

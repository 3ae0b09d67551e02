"""MigratingSTT, MigratingLLM and MigratingTTS inside livekit-agents: an AgentSession turn
on each side, a candidate that stalls before its first chunk while the turn completes on
legacy, one side per call, the kill switch, and what each request records."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("livekit.agents")

from livekit.agents import Agent, AgentSession
from livekit.agents.testing import fake_job_context

from switchover.core.migration import Override
from switchover.livekit import MigratingLLM, MigratingSTT, MigratingTTS
from unit.sdk.routing_env import Env

from .fakes import FakeLLM, FakeSTT, FakeTTS, KeptAudio, frame

LEGACY_LEVEL, CANDIDATE_LEVEL = 11, 22


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env()
    yield e
    e.client.close()


async def turn(llm_: Any, tts_: Any, text: str = "Hello") -> tuple[str, KeptAudio]:
    """One AgentSession turn in a fake job: the agent's reply and the audio it played."""
    audio = KeptAudio()
    with fake_job_context(job_metadata="{}"):
        session = AgentSession(llm=llm_, tts=tts_)
        session.output.audio = audio
        async with session:
            await session.start(Agent(instructions="Be brief."))
            result = await session.run(user_input=text)
            result.expect.next_event().is_message(role="assistant")
            reply = str(result.events[-1].item.text_content)
    return reply, audio


def pair(env: Env, call: Any, *, stall: float = 0.0) -> tuple[MigratingLLM, MigratingTTS]:
    llm_ = MigratingLLM(
        legacy=FakeLLM("legacy"),
        candidate=FakeLLM("candidate", stall=stall),
        call=call,
        first_chunk_timeout=0.3,
    )
    tts_ = MigratingTTS(legacy=FakeTTS(LEGACY_LEVEL), candidate=FakeTTS(CANDIDATE_LEVEL), call=call)
    return llm_, tts_


@pytest.mark.parametrize(("percentage", "side"), [(100, "candidate"), (0, "legacy")])
def test_an_agent_session_turn_runs_on_the_calls_side_and_records_it(
    env: Env, percentage: int, side: str
) -> None:
    env.change(percentage=percentage)
    call = env.m.call("room-1", {"user_id": "u1"})
    reply, audio = asyncio.run(turn(*pair(env, call)))
    assert reply == f"{side} says hi"
    assert audio.frames and audio.levels() == {
        CANDIDATE_LEVEL if side == "candidate" else LEGACY_LEVEL
    }
    recorded = {(c["operation"], c["side"], c["ok"], c["fallback"]) for c in env.calls()}
    assert recorded == {("llm", side, True, False), ("tts", side, True, False)}
    assert all(c["first_chunk_ms"] is not None for c in env.calls())


def test_a_candidate_that_stalls_before_its_first_token_leaves_the_turn_to_legacy(
    env: Env,
) -> None:
    call = env.m.call("room-2", {"user_id": "u1"})
    llm_, tts_ = pair(env, call, stall=30)
    reply, audio = asyncio.run(asyncio.wait_for(turn(llm_, tts_), 10))
    assert reply == "legacy says hi"
    (llm_call,) = env.calls("llm")
    assert llm_call["side"] == "candidate" and llm_call["fallback"]
    assert llm_call["error_type"] == "timeout" and 250 <= llm_call["latency_ms"] < 2000
    # the TTS of the same call is on the candidate side: one side per component's feature
    assert audio.levels() == {CANDIDATE_LEVEL}
    assert llm_.candidate.requests == 1 and llm_.legacy.requests == 1


def test_one_side_per_call_while_the_percentage_moves_and_the_kill_switch_wins(
    env: Env,
) -> None:
    call = env.m.call("room-3", {"user_id": "u1"})
    llm_, tts_ = pair(env, call)
    assert asyncio.run(turn(llm_, tts_))[0] == "candidate says hi"
    env.change(percentage=0)  # a calls started before stays where it is
    assert asyncio.run(turn(llm_, tts_))[0] == "candidate says hi"
    assert llm_.model == "candidate-model"
    env.change(enabled=False)  # the master switch: legacy at the call's next operation
    reply, audio = asyncio.run(turn(llm_, tts_))
    assert reply == "legacy says hi" and audio.levels() == {LEGACY_LEVEL}
    assert llm_.model == "legacy-model"


def test_a_feature_switched_off_moves_only_its_component(env: Env) -> None:
    env.change(features={"llm": True, "tts": False, "stt": True})
    reply, audio = asyncio.run(turn(*pair(env, env.m.call("room-4", {"user_id": "u1"}))))
    assert reply == "candidate says hi" and audio.levels() == {LEGACY_LEVEL}


def test_per_decision_routing_with_a_handle_and_a_context(env: Env) -> None:
    env.change(percentage=0, tenants={"acme": Override.ALLOW})
    llm_ = MigratingLLM(
        legacy=FakeLLM("legacy"),
        candidate=FakeLLM("candidate"),
        call=env.m,
        context={"user_id": "u9", "tenant_id": "acme"},
    )
    tts_ = MigratingTTS(legacy=FakeTTS(1), candidate=FakeTTS(2), call=env.m, context={})
    reply, audio = asyncio.run(turn(llm_, tts_))
    assert reply == "candidate says hi" and audio.levels() == {1}
    with pytest.raises(ValueError, match="not both"):
        MigratingLLM(legacy=FakeLLM("a"), candidate=FakeLLM("b"), call=env.m.call("x"), context={})
    with pytest.raises(TypeError, match=r"m\.call"):
        MigratingLLM(legacy=FakeLLM("a"), candidate=FakeLLM("b"), call="voice_v2")


def test_a_tts_stream_falls_back_with_every_word_replayed_and_a_slower_rate_is_resampled(
    env: Env,
) -> None:
    migrating = MigratingTTS(
        legacy=FakeTTS(LEGACY_LEVEL),
        candidate=FakeTTS(CANDIDATE_LEVEL, rate=16_000, stall=30),
        call=env.m.call("room-5", {"user_id": "u1"}),
        first_chunk_timeout=0.2,
    )

    async def speak() -> list[Any]:
        stream = migrating.stream()
        for word in ("Good ", "morning."):
            stream.push_text(word)
        stream.end_input()
        return [audio async for audio in stream]

    out = asyncio.run(speak())
    assert {f.frame.sample_rate for f in out} == {24_000}
    assert migrating.legacy.texts == ["Good morning."]
    (call,) = env.calls("tts")
    assert call["side"] == "candidate" and call["fallback"] and call["error_type"] == "timeout"

    env.recorder.calls.clear()
    healthy = MigratingTTS(
        legacy=FakeTTS(LEGACY_LEVEL),
        candidate=FakeTTS(CANDIDATE_LEVEL, rate=16_000),
        call=env.m.call("room-6", {"user_id": "u1"}),
    )

    async def chunked() -> Any:
        return await healthy.synthesize("Hi there").collect()

    frame_ = asyncio.run(chunked())
    assert frame_.sample_rate == 24_000 and set(frame_.data.tolist()) >= {CANDIDATE_LEVEL}
    assert [c["side"] for c in env.calls("tts")] == ["candidate"]


def test_an_stt_stream_falls_back_and_legacy_hears_the_audio_from_the_start(env: Env) -> None:
    migrating = MigratingSTT(
        legacy=FakeSTT("legacy"),
        candidate=FakeSTT("candidate", stall=30),
        call=env.m.call("room-7", {"user_id": "u1"}),
        first_chunk_timeout=0.2,
    )

    async def listen() -> list[str]:
        stream = migrating.stream()
        for _ in range(5):
            stream.push_frame(frame())
        stream.flush()
        for _ in range(3):
            stream.push_frame(frame())
        stream.end_input()
        return [e.alternatives[0].text async for e in stream]

    assert asyncio.run(listen()) == ["legacy heard 5 frames", "legacy heard 3 frames"]
    (call,) = env.calls("stt")
    assert call["side"] == "candidate" and call["fallback"] and call["error_type"] == "timeout"

    env.recorder.calls.clear()
    served = MigratingSTT(
        legacy=FakeSTT("legacy"),
        candidate=FakeSTT("candidate"),
        call=env.m.call("room-8", {"user_id": "u1"}),
    )

    async def recognize() -> str:
        event = await served.recognize([frame(), frame()])
        return event.alternatives[0].text

    assert asyncio.run(recognize()) == "candidate heard 2 frames"
    assert [(c["side"], c["ok"]) for c in env.calls("stt")] == [("candidate", True)]

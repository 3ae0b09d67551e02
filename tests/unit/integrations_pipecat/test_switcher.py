"""MigratingSwitcher in a Pipecat pipeline, driven by Pipecat's own test runner: one side
per call, a candidate that fails or stalls before its first frame while legacy answers
the same request, the kill switch at the next request, and what each request records."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("pipecat")

from pipecat.frames.frames import (
    Frame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from switchover.pipecat import MigratingSwitcher
from unit.sdk.routing_env import Env

REPLY = [LLMFullResponseStartFrame, LLMTextFrame, LLMFullResponseEndFrame]


class FakeLLMService(FrameProcessor):
    """Answers each context with ``"<name> says hi"``; or fails, or stalls, first."""

    def __init__(self, name: str, *, fail: bool = False, stall: float = 0.0) -> None:
        super().__init__(name=name)
        self.fail, self.stall = fail, stall
        self.contexts = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        self.contexts += 1
        await self.push_frame(LLMFullResponseStartFrame())
        if self.stall:
            await asyncio.sleep(self.stall)
        if self.fail:
            await self.push_error(f"{self.name} is down")
            return
        await self.push_frame(LLMTextFrame(f"{self.name} says hi"))
        await self.push_frame(LLMFullResponseEndFrame())


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env()
    yield e
    e.client.close()


def ask(n: int = 1) -> list[Frame]:
    return [LLMContextFrame(context=LLMContext()) for _ in range(n)]


def texts(frames: Any) -> list[str]:
    return [f.text for f in frames if isinstance(f, LLMTextFrame)]


def switcher(env: Env, call: Any, **candidate: Any) -> MigratingSwitcher:
    return MigratingSwitcher(
        legacy=FakeLLMService("legacy"),
        candidate=FakeLLMService("candidate", **candidate),
        call=call,
        operation="llm",
        first_frame_timeout=0.3,
    )


@pytest.mark.parametrize(("percentage", "side"), [(100, "candidate"), (0, "legacy")])
def test_each_request_of_a_call_runs_on_its_side_and_is_recorded(
    env: Env, percentage: int, side: str
) -> None:
    env.change(percentage=percentage)
    sw = switcher(env, env.m.call("call-1", {"user_id": "u1"}))
    down, _ = asyncio.run(run_test(sw, frames_to_send=ask(2), expected_down_frames=REPLY * 2))
    assert texts(down) == [f"{side} says hi"] * 2
    calls = env.calls("llm")
    assert [(c["side"], c["ok"], c["fallback"]) for c in calls] == [(side, True, False)] * 2
    assert all(c["first_chunk_ms"] <= c["latency_ms"] for c in calls)


def test_a_candidate_error_before_its_first_frame_is_answered_by_legacy(env: Env) -> None:
    sw = switcher(env, env.m.call("call-2", {"user_id": "u1"}), fail=True)
    frames = [*ask(1), SleepFrame(sleep=0.3), *ask(1)]
    down, up = asyncio.run(run_test(sw, frames_to_send=frames, expected_down_frames=REPLY * 2))
    assert texts(down) == ["legacy says hi", "legacy says hi"]
    assert not any(type(f).__name__ == "ErrorFrame" for f in up)  # absorbed by the switch
    first, *rest = env.calls("llm")
    assert (first["side"], first["fallback"], first["error_type"]) == (
        "candidate",
        True,
        "RuntimeError",
    )
    assert [(c["side"], c["ok"]) for c in rest] == [("legacy", True), ("legacy", True)]
    assert sw.services[1].contexts == 1  # the rest of the call stays on legacy


def test_a_candidate_that_stalls_before_its_first_frame_is_answered_by_legacy(env: Env) -> None:
    sw = switcher(env, env.m.call("call-3", {"user_id": "u1"}), stall=30)
    frames = [*ask(1), SleepFrame(sleep=0.6)]
    down, _ = asyncio.run(asyncio.wait_for(run_test(sw, frames_to_send=frames), 20))
    assert texts(down) == ["legacy says hi"]
    first = env.calls("llm")[0]
    assert (first["side"], first["fallback"], first["error_type"]) == (
        "candidate",
        True,
        "timeout",
    )
    assert 250 <= first["latency_ms"] < 2000


def test_the_kill_switch_moves_the_call_to_legacy_at_its_next_request(env: Env) -> None:
    sw = switcher(env, env.m.call("call-4", {"user_id": "u1"}))

    async def scenario() -> Any:
        async def kill_later() -> None:
            await asyncio.sleep(0.4)
            env.change(enabled=False)

        killer = asyncio.create_task(kill_later())
        result = await run_test(sw, frames_to_send=[*ask(1), SleepFrame(sleep=0.8), *ask(1)])
        await killer
        return result

    down, _ = asyncio.run(scenario())
    assert texts(down) == ["candidate says hi", "legacy says hi"]


def test_an_operation_without_a_profile_is_refused(env: Env) -> None:
    with pytest.raises(ValueError, match="profile"):
        MigratingSwitcher(
            legacy=FakeLLMService("a"), candidate=FakeLLMService("b"), call=env.m, operation="stt"
        )


class FakeTTSService(FrameProcessor):
    """Speaks each ``TTSSpeakFrame`` as 10 ms of samples of value ``level``; or stalls."""

    def __init__(self, level: int, *, stall: float = 0.0) -> None:
        super().__init__(name=f"tts-{level}")
        self.level, self.stall = level, stall

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, TTSSpeakFrame):
            await self.push_frame(frame, direction)
            return
        await self.push_frame(TTSStartedFrame())
        if self.stall:
            await asyncio.sleep(self.stall)
        audio = self.level.to_bytes(2, "little") * 160
        await self.push_frame(TTSAudioRawFrame(audio=audio, sample_rate=16_000, num_channels=1))
        await self.push_frame(TTSStoppedFrame())


def test_a_tts_candidate_that_stalls_leaves_the_sentence_to_legacys_voice(env: Env) -> None:
    sw = MigratingSwitcher(
        legacy=FakeTTSService(1),
        candidate=FakeTTSService(2, stall=30),
        call=env.m.call("call-5", {"user_id": "u1"}),
        operation="tts",
        first_frame_timeout=0.3,
    )
    frames = [TTSSpeakFrame(text="Good morning."), SleepFrame(sleep=0.6)]
    down, _ = asyncio.run(
        asyncio.wait_for(
            run_test(
                sw,
                frames_to_send=frames,
                expected_down_frames=[TTSStartedFrame, TTSAudioRawFrame, TTSStoppedFrame],
            ),
            20,
        )
    )
    assert {f.audio[0] for f in down if isinstance(f, TTSAudioRawFrame)} == {1}
    first, served = env.calls("tts")
    assert (first["side"], first["fallback"], first["error_type"]) == (
        "candidate",
        True,
        "timeout",
    )
    assert (served["side"], served["ok"]) == ("legacy", True)

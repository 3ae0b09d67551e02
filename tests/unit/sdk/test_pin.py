"""Calls pinned to one side: one decision per call, one migration version, and the kill
switch still wins at the call's next operation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from switchover.core.decision import Reason, Side

from .routing_env import CTX, Env


def legacy(x: str) -> str:
    return "legacy"


def candidate(x: str) -> str:
    return "candidate"


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env(percentage=100)
    yield e
    e.client.close()


def test_a_percentage_change_mid_call_does_not_move_the_call(env: Env) -> None:
    with env.m.call("call-1", CTX) as call:
        assert call.side is Side.CANDIDATE and call.version == 1
        assert call.route_sync("stt", "a", legacy=legacy, candidate=candidate) == "candidate"
        env.change(percentage=0)  # the rollout is reduced while the caller talks
        assert call.route_sync("tts", "b", legacy=legacy, candidate=candidate) == "candidate"
        # the handle's own route, inside the block, keeps the pin too
        assert env.m.route_sync("llm", CTX, "c", legacy=legacy, candidate=candidate) == "candidate"
        assert call.decide("tts").version == 1
    # a new call sees the new snapshot
    assert env.m.route_sync("tts", CTX, "d", legacy=legacy, candidate=candidate) == "legacy"


def test_the_kill_switch_wins_at_the_next_operation(env: Env) -> None:
    async def run() -> list[str]:
        got = []
        async with env.m.call("call-2", CTX) as call:
            got.append(await call.route("stt", "a", legacy=legacy, candidate=candidate))
            env.change(enabled=False)
            got.append(await call.route("tts", "b", legacy=legacy, candidate=candidate))
            assert call.decide("tts").reason is Reason.KILL_SWITCH
        return got

    assert asyncio.run(run()) == ["candidate", "legacy"]


def test_a_feature_switched_off_mid_call_goes_to_legacy(env: Env) -> None:
    with env.m.call("call-3", CTX) as call:
        env.change(features={"tts": False, "stt": True, "llm": True, "whatsapp": True})
        assert call.route_sync("tts", "a", legacy=legacy, candidate=candidate) == "legacy"
        assert call.route_sync("stt", "a", legacy=legacy, candidate=candidate) == "candidate"


def test_a_call_pinned_to_legacy_stays_there_when_the_percentage_grows() -> None:
    env = Env(percentage=0)
    try:
        with env.m.call("call-4", CTX) as call:
            assert call.side is Side.LEGACY
            env.change(percentage=100)
            assert call.route_sync("stt", "a", legacy=legacy, candidate=candidate) == "legacy"
    finally:
        env.client.close()


def test_pinned_streams_and_concurrent_calls_keep_their_own_side(env: Env) -> None:
    async def stream(tag: str):  # type: ignore[no-untyped-def]
        yield tag

    async def one_call(call_id: str, percentage_after: int) -> list[str]:
        async with env.m.call(call_id, CTX) as call:
            await asyncio.sleep(0)
            return [
                c
                async for c in call.route_stream(
                    "llm", legacy=stream("legacy"), candidate=stream("candidate")
                )
            ]

    async def run() -> list[list[str]]:
        first = asyncio.create_task(one_call("a", 0))
        await asyncio.sleep(0)  # "a" is pinned to candidate
        env.change(percentage=0)
        second = asyncio.create_task(one_call("b", 0))
        return [await first, await second]

    assert asyncio.run(run()) == [["candidate"], ["legacy"]]


def test_call_id_must_be_given(env: Env) -> None:
    with pytest.raises(ValueError, match="call_id"):
        env.m.call("", CTX)

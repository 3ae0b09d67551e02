"""route_stream, its sync twin and shadow_stream, as a voice caller would notice them:
which chunks arrive, when, what is raised, and what is recorded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from .routing_env import CTX, Env


class Boom(Exception):
    pass


async def tokens(*chunks: str, delay: float = 0.0) -> AsyncIterator[str]:
    for c in chunks:
        if delay:
            await asyncio.sleep(delay)
        yield c


async def legacy_llm(prompt: str) -> AsyncIterator[str]:
    for c in ("legacy:", prompt):
        yield c


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [c async for c in stream]


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env()
    yield e
    e.client.close()


def test_the_candidate_serves_its_chunks_and_the_first_chunk_time_is_recorded(env: Env) -> None:
    async def candidate(prompt: str) -> AsyncIterator[str]:
        await asyncio.sleep(0.02)
        yield "cand:"
        yield prompt

    got = asyncio.run(
        collect(env.m.route_stream("llm", CTX, "hi", legacy=legacy_llm, candidate=candidate))
    )
    assert got == ["cand:", "hi"]
    (call,) = env.calls("llm")
    assert call["side"] == "candidate" and call["ok"] and not call["fallback"]
    assert 15.0 <= call["first_chunk_ms"] <= call["latency_ms"]


def test_a_candidate_that_stalls_before_its_first_chunk_gives_legacy_within_the_deadline(
    env: Env,
) -> None:
    closed: list[str] = []

    async def candidate(prompt: str) -> AsyncIterator[str]:
        try:
            await asyncio.sleep(30)  # dead air
            yield "never"
        finally:
            closed.append("candidate")

    async def run() -> tuple[list[str], float]:
        started = time.perf_counter()
        out = await collect(
            env.m.route_stream(
                "llm", CTX, "hi", legacy=legacy_llm, candidate=candidate, first_chunk_timeout=0.05
            )
        )
        return out, time.perf_counter() - started

    got, took = asyncio.run(run())
    assert got == ["legacy:", "hi"]
    assert took < 1.0
    assert closed == ["candidate"]
    (call,) = env.calls("llm")
    assert call["side"] == "candidate" and call["fallback"] and call["error_type"] == "timeout"
    assert call["first_chunk_ms"] >= 50.0


def test_a_candidate_that_raises_before_its_first_chunk_falls_back_to_legacy(env: Env) -> None:
    async def candidate(prompt: str) -> AsyncIterator[str]:
        raise Boom("connection refused")
        yield "never"  # pragma: no cover

    got = asyncio.run(
        collect(env.m.route_stream("llm", CTX, "hi", legacy=legacy_llm, candidate=candidate))
    )
    assert got == ["legacy:", "hi"]
    (call,) = env.calls("llm")
    assert call["fallback"] and call["error_type"] == "Boom"


def test_a_failure_after_the_first_chunk_is_raised_and_recorded_as_mid_stream(env: Env) -> None:
    async def candidate(prompt: str) -> AsyncIterator[str]:
        yield "cand:"
        raise Boom("socket reset")

    got: list[str] = []

    async def run() -> None:
        async for chunk in env.m.route_stream(
            "llm", CTX, "hi", legacy=legacy_llm, candidate=candidate
        ):
            got.append(chunk)

    with pytest.raises(Boom):
        asyncio.run(run())
    assert got == ["cand:"]  # no legacy chunk was mixed in
    (call,) = env.calls("llm")
    assert call["side"] == "candidate" and not call["ok"] and not call["fallback"]
    assert call["error_type"] == "Boom"
    assert call["outcome"] == {"stream.midstream_error": 1.0}


def test_legacy_failing_after_a_candidate_failure_is_a_total_failure(env: Env) -> None:
    async def candidate(prompt: str) -> AsyncIterator[str]:
        raise Boom("candidate down")
        yield "never"  # pragma: no cover

    async def legacy(prompt: str) -> AsyncIterator[str]:
        raise ConnectionError("legacy down")
        yield "never"  # pragma: no cover

    with pytest.raises(ConnectionError) as info:
        asyncio.run(
            collect(env.m.route_stream("llm", CTX, "x", legacy=legacy, candidate=candidate))
        )
    assert isinstance(info.value.candidate_error, Boom)  # type: ignore[attr-defined]
    (call,) = env.calls("llm")
    assert call["total_failure"]


def test_aclose_reaches_the_side_being_run(env: Env) -> None:
    closed: list[str] = []

    async def candidate(prompt: str) -> AsyncIterator[str]:
        try:
            for i in range(1000):
                yield f"t{i}"
        finally:
            closed.append("candidate")

    async def run() -> list[str]:
        stream = env.m.route_stream("llm", CTX, "hi", legacy=legacy_llm, candidate=candidate)
        got = [await stream.__anext__(), await stream.__anext__()]
        await stream.aclose()  # the caller barged in
        return got

    assert asyncio.run(run()) == ["t0", "t1"]
    assert closed == ["candidate"]
    (call,) = env.calls("llm")
    assert call["ok"] and call["side"] == "candidate"


def test_cancelling_the_caller_cancels_the_side(env: Env) -> None:
    seen: list[str] = []

    async def candidate(prompt: str) -> AsyncIterator[str]:
        yield "first"
        try:
            await asyncio.sleep(30)
            yield "never"
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def run() -> None:
        async def consume() -> None:
            async for _ in env.m.route_stream(
                "llm", CTX, "x", legacy=legacy_llm, candidate=candidate
            ):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert seen == ["cancelled"]


def test_legacy_side_and_async_iterables_are_served_as_they_are() -> None:
    env = Env(percentage=0)
    try:
        got = asyncio.run(
            collect(env.m.route_stream("tts", CTX, legacy=tokens("a", "b"), candidate=tokens("x")))
        )
        assert got == ["a", "b"]
        (call,) = env.calls("tts")
        assert call["side"] == "legacy" and call["first_chunk_ms"] is not None
    finally:
        env.client.close()


def test_an_empty_candidate_stream_is_served_empty(env: Env) -> None:
    got = asyncio.run(
        collect(env.m.route_stream("llm", CTX, legacy=tokens("a"), candidate=tokens()))
    )
    assert got == []


def test_a_side_that_is_not_a_stream_is_a_clear_error(env: Env) -> None:
    def legacy() -> int:
        return 3

    with pytest.raises(TypeError, match="async iterable"):
        asyncio.run(collect(env.m.route_stream("llm", CTX, legacy=legacy, candidate=legacy)))


# sync twin -------------------------------------------------------------------------------


def test_the_sync_twin_falls_back_before_the_first_chunk_and_not_after(env: Env) -> None:
    def broken() -> Iterator[str]:
        raise Boom("down")
        yield "never"  # pragma: no cover

    def legacy() -> Iterator[str]:
        yield from ("l1", "l2")

    assert list(env.m.route_stream_sync("stt", CTX, legacy=legacy, candidate=broken)) == [
        "l1",
        "l2",
    ]
    assert env.calls("stt")[-1]["fallback"]

    def midway() -> Iterator[str]:
        yield "c1"
        raise Boom("midway")

    got: list[str] = []
    with pytest.raises(Boom):
        for chunk in env.m.route_stream_sync("stt", CTX, legacy=legacy, candidate=midway):
            got.append(chunk)
    assert got == ["c1"]
    assert env.calls("stt")[-1]["outcome"] == {"stream.midstream_error": 1.0}


def test_the_sync_twin_times_out_a_stalled_first_chunk(env: Env) -> None:
    def stalled() -> Iterator[str]:
        time.sleep(0.5)
        yield "late"

    started = time.perf_counter()
    got = list(
        env.m.route_stream_sync(
            "stt", CTX, legacy=iter(["l1"]), candidate=stalled, first_chunk_timeout=0.05
        )
    )
    assert got == ["l1"] and time.perf_counter() - started < 0.4
    assert env.calls("stt")[-1]["error_type"] == "timeout"


# shadow ----------------------------------------------------------------------------------


def test_shadow_stream_serves_legacy_undelayed_and_compares_when_both_ended(env: Env) -> None:
    async def slow_candidate(prompt: str) -> AsyncIterator[str]:
        for c in ("legacy:", "other"):
            await asyncio.sleep(0.05)
            yield c

    async def run() -> tuple[list[str], float]:
        started = time.perf_counter()
        got = await collect(
            env.m.shadow_stream("llm", CTX, "hi", legacy=legacy_llm, candidate=slow_candidate)
        )
        took = time.perf_counter() - started
        await env.m.drain()
        return got, took

    got, took = asyncio.run(run())
    assert got == ["legacy:", "hi"]
    assert took < 0.05  # the candidate's 0.1 s did not delay the caller
    assert ("llm", "candidate", {"shadow.mismatch": 1.0}) in env.recorder.outcomes
    assert env.recorder.flush()
    (sample,) = env.recorder.sink.samples  # type: ignore[attr-defined]
    assert sample["legacy"] == ["legacy:", "hi"] and sample["candidate"] == ["legacy:", "other"]


def test_shadow_stream_counts_a_match(env: Env) -> None:
    async def run() -> list[str]:
        got = await collect(
            env.m.shadow_stream("llm", CTX, "hi", legacy=legacy_llm, candidate=legacy_llm)
        )
        await env.m.drain()
        return got

    assert asyncio.run(run()) == ["legacy:", "hi"]
    assert ("llm", "candidate", {"shadow.match": 1.0}) in env.recorder.outcomes


def test_shadow_stream_closed_early_is_not_a_mismatch(env: Env) -> None:
    async def run() -> None:
        stream = env.m.shadow_stream("llm", CTX, "hi", legacy=legacy_llm, candidate=legacy_llm)
        await stream.__anext__()
        await stream.aclose()
        await env.m.drain()

    asyncio.run(run())
    assert ("llm", "candidate", {"shadow.incomplete": 1.0}) in env.recorder.outcomes

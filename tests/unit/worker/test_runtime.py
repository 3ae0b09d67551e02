"""MAX_CONCURRENCY slots, refuse or queue beyond them, and the drain on shutdown."""

from __future__ import annotations

import asyncio

import pytest

from switchover.core.dispatch import DispatchRefused, Refusal
from switchover.worker.runtime import WorkerRuntime


async def call(gate: asyncio.Event, log: list[str], name: str) -> str:
    await gate.wait()
    log.append(name)
    return name


def test_refuse_mode_takes_max_concurrency_calls_and_refuses_the_next() -> None:
    async def scenario() -> None:
        rt = WorkerRuntime(2, overflow="refuse")
        gate, log = asyncio.Event(), []
        running = [asyncio.create_task(rt.run(lambda n=n: call(gate, log, n))) for n in "ab"]
        await asyncio.sleep(0)
        assert rt.load() == 1.0
        with pytest.raises(DispatchRefused) as info:
            await rt.run(lambda: call(gate, log, "c"))
        assert info.value.reason is Refusal.AT_CAPACITY and "MAX_CONCURRENCY" in info.value.message
        gate.set()
        assert await asyncio.gather(*running) == ["a", "b"]
        s = rt.stats.to_dict()
        assert (s["completed"], s["refused"], s["peak_active"], s["active"]) == (2, 1, 2, 0)
        assert rt.load() == 0.0

    asyncio.run(scenario())


def test_queue_mode_waits_for_a_free_slot_in_order() -> None:
    async def scenario() -> None:
        rt = WorkerRuntime(1, overflow="queue", max_queue_depth=5, queue_timeout=5)
        gate, log = asyncio.Event(), []
        tasks = [asyncio.create_task(rt.run(lambda n=n: call(gate, log, n))) for n in "abc"]
        await asyncio.sleep(0.01)
        assert rt.stats.active == 1 and rt.stats.queued == 2
        gate.set()
        await asyncio.gather(*tasks)
        assert log == ["a", "b", "c"]
        assert rt.stats.max_queue_depth == 2 and rt.stats.peak_active == 1
        assert rt.stats.refused == 0 and rt.stats.completed == 3

    asyncio.run(scenario())


def test_a_full_queue_and_a_queue_timeout_refuse() -> None:
    async def scenario() -> None:
        rt = WorkerRuntime(1, overflow="queue", max_queue_depth=1, queue_timeout=0.05)
        gate, log = asyncio.Event(), []
        first = asyncio.create_task(rt.run(lambda: call(gate, log, "a")))
        waiting = asyncio.create_task(rt.run(lambda: call(gate, log, "b")))
        await asyncio.sleep(0.01)
        with pytest.raises(DispatchRefused, match="queue is full"):
            await rt.run(lambda: call(gate, log, "c"))
        with pytest.raises(DispatchRefused, match="QUEUE_TIMEOUT"):
            await waiting
        gate.set()
        await first
        assert rt.stats.refused == 2 and rt.stats.active == 0

    asyncio.run(scenario())


def test_drain_lets_running_calls_finish_and_refuses_new_ones() -> None:
    async def scenario() -> None:
        rt = WorkerRuntime(3)
        done: list[str] = []

        async def short(name: str) -> None:
            await asyncio.sleep(0.05)
            done.append(name)

        tasks = [asyncio.create_task(rt.run(lambda n=n: short(n))) for n in "ab"]
        await asyncio.sleep(0.01)
        result = await rt.drain(timeout=5)
        assert sorted(done) == ["a", "b"] and result.finished == 2 and result.cancelled == 0
        await asyncio.gather(*tasks)
        with pytest.raises(DispatchRefused) as info:
            await rt.run(lambda: short("late"))
        assert info.value.reason is Refusal.DRAINING

    asyncio.run(scenario())


def test_drain_cancels_calls_still_running_at_the_timeout() -> None:
    async def scenario() -> None:
        rt = WorkerRuntime(2)

        async def endless() -> None:
            await asyncio.sleep(3600)

        task = asyncio.create_task(rt.run(endless))
        await asyncio.sleep(0.01)
        result = await rt.drain(timeout=0.1)
        assert result.cancelled == 1
        with pytest.raises(asyncio.CancelledError):
            await task
        assert rt.stats.cancelled == 1 and rt.stats.active == 0

    asyncio.run(scenario())

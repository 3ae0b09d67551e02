"""The circuit breaker, on an injected clock: after N candidate failures within the
window legacy serves at once (reason ``circuit_open``), a probe closes it again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from switchover.core.decision import Reason
from switchover.sdk.circuit import Circuit, CircuitPolicy

from .routing_env import CTX, Env


class Boom(Exception):
    pass


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env()
    e.m.configure("tts", circuit=CircuitPolicy(failures=3, window=10.0, cooldown=5.0))
    yield e
    e.client.close()


def _advance(env: Env, seconds: float) -> None:
    env.clock._mono += seconds  # ManualClock's monotonic time


async def legacy(text: str) -> str:
    return "legacy"


def test_after_n_failures_legacy_serves_without_waiting_for_the_candidate(env: Env) -> None:
    tried: list[str] = []

    async def hanging(text: str) -> str:
        tried.append(text)
        await asyncio.sleep(30)
        return "never"

    async def run() -> float:
        for i in range(3):
            assert (
                await env.m.route(
                    "tts", CTX, f"c{i}", legacy=legacy, candidate=hanging, timeout=0.02
                )
                == "legacy"
            )
        assert env.m.circuit("tts") == "open"
        started = time.perf_counter()
        assert await env.m.route("tts", CTX, "c3", legacy=legacy, candidate=hanging) == "legacy"
        return time.perf_counter() - started

    took = asyncio.run(run())
    assert took < 0.01  # no 10 s timeout, no 20 ms either: the candidate was not tried
    assert tried == ["c0", "c1", "c2"]
    last = env.calls("tts")[-1]
    assert last["side"] == "legacy" and last["ok"]
    assert ("tts", "candidate", {"circuit.open": 1.0}) in env.recorder.outcomes


def test_failures_outside_the_window_do_not_open_it(env: Env) -> None:
    def broken(text: str) -> str:
        raise Boom

    for _ in range(5):
        env.m.route_sync("tts", CTX, "x", legacy=lambda t: "legacy", candidate=broken)
        _advance(env, 6.0)  # at most two failures ever share a 10 s window
    assert env.m.circuit("tts") == "closed"


def test_a_successful_probe_after_the_cooldown_closes_it(env: Env) -> None:
    state = {"healthy": False}

    def candidate(text: str) -> str:
        if not state["healthy"]:
            raise Boom
        return "candidate"

    def route() -> str:
        return env.m.route_sync("tts", CTX, "x", legacy=lambda t: "legacy", candidate=candidate)

    for _ in range(3):
        assert route() == "legacy"
    assert env.m.circuit("tts") == "open"
    state["healthy"] = True
    assert route() == "legacy"  # still open: cooldown not over
    _advance(env, 5.0)
    assert route() == "candidate"  # the probe
    assert env.m.circuit("tts") == "closed"
    assert route() == "candidate"
    assert ("tts", "candidate", {"circuit.half_open": 1.0}) in env.recorder.outcomes
    assert ("tts", "candidate", {"circuit.closed": 1.0}) in env.recorder.outcomes


def test_a_failed_probe_opens_it_for_another_cooldown(env: Env) -> None:
    def broken(text: str) -> str:
        raise Boom

    def route() -> str:
        return env.m.route_sync("tts", CTX, "x", legacy=lambda t: "legacy", candidate=broken)

    for _ in range(3):
        route()
    _advance(env, 5.0)
    route()  # probe fails
    assert env.m.circuit("tts") == "open"
    _advance(env, 4.9)
    attempts = len([c for c in env.calls("tts") if c["side"] == "candidate"])
    route()
    assert len([c for c in env.calls("tts") if c["side"] == "candidate"]) == attempts


def test_the_decision_reason_is_circuit_open() -> None:
    env = Env()
    try:
        env.m.configure("tts", circuit=CircuitPolicy(failures=1))

        def broken(text: str) -> str:
            raise Boom

        env.m.route_sync("tts", CTX, "x", legacy=lambda t: "legacy", candidate=broken)
        cfg = env.m._router.config("tts")
        decision, _ = env.m._router._decide(cfg, CTX)
        assert decision.reason is Reason.CIRCUIT_OPEN and not decision.candidate
    finally:
        env.client.close()


def test_circuit_none_turns_it_off_and_streams_count_too(env: Env) -> None:
    env.m.configure("stt", circuit=None)

    def broken(text: str) -> str:
        raise Boom

    for _ in range(10):
        env.m.route_sync("stt", CTX, "x", legacy=lambda t: "legacy", candidate=broken)
    assert env.m.circuit("stt") == "closed"

    env.m.configure("llm", circuit=CircuitPolicy(failures=2))

    async def failing() -> object:
        raise Boom
        yield  # pragma: no cover

    async def legacy_stream() -> object:
        yield "l"

    async def run() -> None:
        for _ in range(2):
            assert [
                c
                async for c in env.m.route_stream(
                    "llm", CTX, legacy=legacy_stream, candidate=failing
                )
            ] == ["l"]

    asyncio.run(run())
    assert env.m.circuit("llm") == "open"


def test_policy_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="failures"):
        CircuitPolicy(failures=0)
    with pytest.raises(ValueError, match="cooldown"):
        CircuitPolicy(cooldown=-1)


def test_a_cancelled_probe_lets_the_next_call_probe() -> None:
    now = [0.0]
    circuit = Circuit("tts", CircuitPolicy(failures=1, cooldown=1.0), lambda: now[0])
    circuit.failure()
    now[0] = 2.0
    assert circuit.allow() and circuit.state == "half_open"
    assert not circuit.allow()  # one probe at a time
    circuit.abandon()
    assert circuit.allow()


def test_shadow_calls_do_not_take_the_probe(env: Env) -> None:
    def broken(text: str) -> str:
        raise Boom

    for _ in range(3):
        env.m.route_sync("tts", CTX, "x", legacy=lambda t: "legacy", candidate=broken)
    _advance(env, 5.0)

    async def run() -> None:
        await env.m.shadow("tts", CTX, "x", legacy=legacy, candidate=legacy)
        await env.m.drain()

    asyncio.run(run())
    assert env.m.circuit("tts") == "open"  # still waiting for a routed probe
    assert env.m.route_sync("tts", CTX, "x", legacy=lambda t: "l", candidate=lambda t: "c") == "c"
    assert env.m.circuit("tts") == "closed"


def test_a_steady_low_error_rate_does_not_open_it(env: Env) -> None:
    """Failures count in a row: a busy operation failing one call in three stays closed."""
    for i in range(60):

        def candidate(text: str, i: int = i) -> str:
            if i % 3 == 0:
                raise Boom
            return "candidate"

        env.m.route_sync("tts", CTX, "x", legacy=lambda t: "legacy", candidate=candidate)
    assert env.m.circuit("tts") == "closed"

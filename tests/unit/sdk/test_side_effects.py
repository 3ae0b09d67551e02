"""Side effects: a send that must not happen twice (seed 001's WhatsApp reply)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from .routing_env import CTX, Env


class Timeout(Exception):
    pass


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env()
    yield e
    e.client.close()


class Outbox:
    """A WhatsApp API stand-in that deduplicates on the idempotency key, as the real one
    does when given a client message id."""

    def __init__(self) -> None:
        self.delivered: list[str] = []
        self.keys: set[str] = set()

    def deliver(self, text: str, key: str | None) -> None:
        if key is not None and key in self.keys:
            return
        if key is not None:
            self.keys.add(key)
        self.delivered.append(text)


def test_fallback_false_raises_the_candidate_failure_instead_of_sending_twice(env: Env) -> None:
    outbox = Outbox()

    async def candidate(text: str) -> str:
        outbox.deliver(text, None)
        raise Timeout("sent, then the ack timed out")

    async def legacy(text: str) -> str:
        outbox.deliver(text, None)
        return "sent"

    env.m.configure("whatsapp", fallback=False)
    with pytest.raises(Timeout):
        asyncio.run(
            env.m.route("whatsapp", CTX, "Your table is booked", legacy=legacy, candidate=candidate)
        )
    assert outbox.delivered == ["Your table is booked"]
    (call,) = env.calls("whatsapp")
    assert call["side"] == "candidate" and not call["ok"] and not call["fallback"]


def test_the_idempotency_key_reaches_whichever_side_runs(env: Env) -> None:
    outbox = Outbox()
    keys: list[tuple[str, str]] = []

    async def candidate(text: str, *, idempotency_key: str) -> str:
        keys.append(("candidate", idempotency_key))
        outbox.deliver(text, idempotency_key)
        raise Timeout("sent, then the ack timed out")

    async def legacy(text: str, *, idempotency_key: str) -> str:
        keys.append(("legacy", idempotency_key))
        outbox.deliver(text, idempotency_key)
        return "sent"

    got = asyncio.run(
        env.m.route(
            "whatsapp",
            CTX,
            "Your table is booked",
            legacy=legacy,
            candidate=candidate,
            idempotency_key="msg-42",
        )
    )
    assert got == "sent"
    assert keys == [("candidate", "msg-42"), ("legacy", "msg-42")]
    assert outbox.delivered == ["Your table is booked"]  # one message arrived


def test_the_sync_route_and_streams_pass_the_key_too(env: Env) -> None:
    seen: list[str] = []

    def side(text: str, *, idempotency_key: str) -> str:
        seen.append(idempotency_key)
        return text

    env.m.route_sync("whatsapp", CTX, "x", legacy=side, candidate=side, idempotency_key="k1")

    def stream(text: str, *, idempotency_key: str) -> Iterator[str]:
        seen.append(idempotency_key)
        yield text

    list(
        env.m.route_stream_sync(
            "tts", CTX, "x", legacy=stream, candidate=stream, idempotency_key="k2"
        )
    )
    assert seen == ["k1", "k2"]


def test_fallback_false_on_a_stream_raises_before_any_chunk(env: Env) -> None:
    env.m.configure("tts", fallback=False)

    async def candidate():  # type: ignore[no-untyped-def]
        raise Timeout("no audio")
        yield b""  # pragma: no cover

    async def legacy():  # type: ignore[no-untyped-def]
        yield b"audio"

    async def run() -> list[bytes]:
        return [c async for c in env.m.route_stream("tts", CTX, legacy=legacy, candidate=candidate)]

    with pytest.raises(Timeout):
        asyncio.run(run())


def test_configure_refuses_a_bad_fallback(env: Env) -> None:
    with pytest.raises(ValueError, match="fallback"):
        env.m.configure("whatsapp", fallback="no")

"""A client's own Redactor reaches the router: shadow samples, log lines and the note on a
total failure use its patterns; without one the default redactor is used."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from switchover.core.redact import Redactor
from switchover.sdk.client import Client
from switchover.sdk.recorder import MemorySink, Recorder

from .routing_env import CTX, NAME, Env, MutableSource


class Boom(Exception):
    pass


def _client(env: Env, redactor: Redactor | None, sink: MemorySink) -> Client:
    return Client(
        MutableSource(env.migration),
        background=False,
        recorder=Recorder(sink, background=False),
        clock=env.clock,
        redactor=redactor,
    )


def test_the_clients_redactor_redacts_samples_logs_and_notes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = Env()
    env.client.close()
    mine = Redactor().add_pattern("order", r"ORD-\d{6}")
    sink = MemorySink()
    client = _client(env, mine, sink)
    try:
        m = client.migration(NAME)
        assert m._router.redactor is mine

        async def legacy(x: str) -> str:
            return "legacy ORD-123456"

        async def candidate(x: str) -> str:
            return "candidate ORD-654321"

        async def run() -> None:
            await m.shadow(
                "tts", {**CTX, "ref": "ORD-111111"}, "x", legacy=legacy, candidate=candidate
            )
            await m.drain()

        asyncio.run(run())
        client.recorder.flush()
        (sample,) = sink.samples
        text = json.dumps(sample)
        assert "ORD-" not in text and "[REDACTED:order]" in text

        def broken(x: str) -> str:
            raise Boom("failed for ORD-222222")

        def legacy_broken(x: str) -> str:
            raise ValueError("legacy too")

        with (
            caplog.at_level(logging.WARNING, logger="switchover.router"),
            pytest.raises(ValueError) as info,
        ):
            m.route_sync("tts", CTX, "x", legacy=legacy_broken, candidate=broken)
        assert "[REDACTED:order]" in " ".join(info.value.__notes__)
        assert "ORD-222222" not in caplog.text and "[REDACTED:order]" in caplog.text
    finally:
        client.close()


def test_without_a_redactor_the_default_one_is_used() -> None:
    env = Env()
    try:
        assert env.client.redactor is None and env.m._router.redactor is None
    finally:
        env.client.close()

"""The HTTP sink over ``httpx.MockTransport``: one idempotency key a batch, the same key on
a retry, what the server refuses for good dropped (and reported) instead of retried
forever, and big batches sent in parts."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from switchover.core.rollup import Batch, Rollup, RollupKey
from switchover.errors import StoreError
from switchover.sdk import sinks
from switchover.sdk.recorder import Recorder
from switchover.sdk.sinks import HttpSink

NAME = "voice_v2"
NOW = 1_767_225_600.0


def _item(op: str = "tts", n: int = 1) -> tuple[RollupKey, Rollup]:
    r = Rollup()
    for _ in range(n):
        r.add(10.0, True, None, False, None)
    return RollupKey(int(NOW // 60), NAME, op, "candidate"), r


class Server:
    """Keeps posted batches by key, as the real one does; answers what it is told to."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []
        self.stored: dict[str, int] = {}
        self.answers: list[httpx.Response] = []
        self.lose_answer = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        self.headers.append(request.headers)
        if self.answers:
            return self.answers.pop(0)
        key = request.headers["idempotency-key"]
        replay = key in self.stored
        self.stored.setdefault(key, len(body["rollups"]))
        if self.lose_answer:
            self.lose_answer = False
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return httpx.Response(200, json={"accepted": self.stored[key], "replay": replay})


@pytest.fixture
def server() -> Server:
    return Server()


@pytest.fixture
def sink(server: Server) -> HttpSink:
    return HttpSink(httpx.Client(base_url="http://so.test", transport=httpx.MockTransport(server)))


def _refuse(field: str, status: int = 422) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"code": "invalid", "field": field, "message": f"{field} bad"}}
    )


def test_the_batch_key_goes_in_the_header_and_the_body(server: Server, sink: HttpSink) -> None:
    assert sink.write(Batch([_item()], "k-1"), []) is None
    assert server.headers[0]["idempotency-key"] == "k-1"
    assert server.bodies[0]["idempotency_key"] == "k-1"
    assert server.bodies[0]["rollups"][0]["key"]["operation"] == "tts"


def test_a_recorder_retries_a_lost_answer_with_the_same_key_and_counts_once(
    server: Server, sink: HttpSink
) -> None:
    rec = Recorder(sink, background=False, time_fn=lambda: NOW)
    rec.record(NAME, "tts", "candidate", 10.0)
    server.lose_answer = True  # stored by the server, but the client never hears it
    assert rec.flush() is False
    assert rec.flush() is True
    keys = [h["idempotency-key"] for h in server.headers]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert len(server.stored) == 1
    stats = rec.stats()
    assert (stats.flushed_observations, stats.replayed_batches) == (1, 1)


def test_a_rollup_the_server_refuses_is_dropped_and_the_rest_sent_again(
    server: Server, sink: HttpSink
) -> None:
    server.answers = [_refuse("rollups[1].rollup.count")]
    report = sink.write(Batch([_item("stt"), _item("bad", 3), _item("llm")], "k-2"), [])
    assert report is not None
    assert [k.operation for k, _ in report.refused] == ["bad"]
    assert report.reason and "rollups[1].rollup.count" in report.reason
    retried = server.bodies[1]
    assert [r["key"]["operation"] for r in retried["rollups"]] == ["stt", "llm"]
    assert server.headers[1]["idempotency-key"] == "k-2"
    assert server.stored == {"k-2": 2}


def test_a_refused_sample_is_dropped_too(server: Server, sink: HttpSink) -> None:
    server.answers = [_refuse("samples[0].operation")]
    samples = [{"migration": NAME, "operation": "x"}, {"migration": NAME, "operation": "y"}]
    report = sink.write(Batch([_item()], "k-3"), samples)
    assert report is not None and report.refused_samples == 1 and not report.refused
    assert server.bodies[1]["samples"] == samples[1:]


@pytest.mark.parametrize("answer", [_refuse("body", 400), _refuse("rollups", 422)])
def test_a_refusal_naming_no_item_refuses_the_batch_instead_of_blocking_it(
    server: Server, sink: HttpSink, answer: httpx.Response
) -> None:
    server.answers = [answer]
    rec = Recorder(sink, background=False, time_fn=lambda: NOW)
    rec.record(NAME, "tts", "candidate", 10.0)
    assert rec.flush() is True
    assert rec.stats().refused_observations == 1
    rec.record(NAME, "tts", "candidate", 10.0)
    assert rec.flush() is True  # later flushes go through
    assert rec.stats().flushed_observations == 1


@pytest.mark.parametrize("status", [401, 403, 409, 429, 500, 503])
def test_other_answers_keep_the_batch_for_the_next_flush(
    server: Server, sink: HttpSink, status: int
) -> None:
    server.answers = [httpx.Response(status, json={})]
    with pytest.raises(StoreError):
        sink.write(Batch([_item()], "k-4"), [])
    rec = Recorder(sink, background=False, time_fn=lambda: NOW)
    rec.record(NAME, "tts", "candidate", 10.0)
    server.answers = [httpx.Response(status, json={})]
    assert rec.flush() is False and rec.stats().pending_observations == 1
    assert rec.flush() is True and rec.stats().flushed_observations == 1


def test_what_json_cannot_hold_is_refused_before_sending(server: Server, sink: HttpSink) -> None:
    broken = _item("nan")
    broken[1].outcomes["x"] = float("nan")
    report = sink.write(
        Batch([_item(), broken], "k-5"),
        [{"migration": NAME, "operation": "tts", "v": float("inf")}],
    )
    assert report is not None and [k.operation for k, _ in report.refused] == ["nan"]
    assert report.refused_samples == 1
    assert len(server.bodies) == 1 and len(server.bodies[0]["rollups"]) == 1


def test_a_big_batch_goes_in_parts_with_keys_of_their_own(
    server: Server, sink: HttpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sinks, "PART_ROLLUPS", 2)
    assert sink.write(Batch([_item(f"op{i}") for i in range(5)], "big"), []) is None
    assert [h["idempotency-key"] for h in server.headers] == ["big.0", "big.1", "big.2"]
    assert server.stored == {"big.0": 2, "big.1": 2, "big.2": 1}

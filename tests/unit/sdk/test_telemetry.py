"""OpenTelemetry from the router: a span per routed operation with the feature-flag
attributes and the side, and GenAI metrics for ``llm`` operations (duration, time to
first chunk), read back with the SDK's in-memory span exporter and metric reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from switchover.core.migration import Migration, Override
from switchover.sdk import telemetry
from switchover.sdk.backends.memory import MemoryBackend
from switchover.sdk.client import Client

sdk_trace = pytest.importorskip("opentelemetry.sdk.trace", reason="pip install -e '.[test]'")
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode  # noqa: E402

VOICE = Migration(
    "voice_v2",
    percentage=100,
    features={"llm": True, "stt": True},
    tenants={"globex": Override.DENY},
)


@pytest.fixture
def otel() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader, Client]]:
    spans = InMemorySpanExporter()
    tracer_provider = sdk_trace.TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    telemetry.configure(
        tracer_provider=tracer_provider, meter_provider=MeterProvider(metric_readers=[reader])
    )
    client = Client(MemoryBackend([VOICE]), background=False)
    try:
        yield spans, reader, client
    finally:
        client.close()
        telemetry.configure()


def _points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    return [
        point
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


async def _ok(text: str) -> str:
    return text


async def _broken(text: str) -> str:
    raise ConnectionError("candidate down")


def test_a_span_per_routed_operation_with_flag_attributes_and_the_side(otel) -> None:
    spans, _, client = otel
    m = client.migration("voice_v2")
    assert asyncio.run(m.route("stt", {"user_id": "u1"}, "hi", legacy=_ok, candidate=_ok)) == "hi"
    m.route_sync("stt", {"user_id": "u2", "tenant_id": "globex"}, legacy=str, candidate=str)
    asyncio.run(m.route("stt", {"user_id": "u3"}, "x", legacy=_ok, candidate=_broken))

    first, denied, fell_back = spans.get_finished_spans()
    assert first.name == "switchover stt"
    assert first.attributes["feature_flag.key"] == "voice_v2.stt"
    assert first.attributes["feature_flag.provider.name"] == "switchover"
    assert first.attributes["feature_flag.result.variant"] == "candidate"
    assert first.attributes["feature_flag.result.reason"] == "split"
    assert first.attributes["switchover.side"] == "candidate"
    assert first.end_time >= first.start_time
    assert (
        denied.attributes["switchover.side"],
        denied.attributes["feature_flag.result.reason"],
    ) == (
        "legacy",
        "targeting_match",
    )
    # the candidate failed, legacy served: the call did not fail
    assert fell_back.attributes["switchover.side"] == "legacy"
    assert fell_back.attributes["switchover.fallback"] is True
    assert fell_back.attributes["switchover.candidate.error_type"] == "ConnectionError"
    assert fell_back.status.status_code is not StatusCode.ERROR


def test_a_total_failure_is_an_error_span(otel) -> None:
    spans, _, client = otel

    async def legacy_down(text: str) -> str:
        raise TimeoutError("legacy down too")

    with pytest.raises(TimeoutError):
        asyncio.run(
            client.migration("voice_v2").route(
                "stt", {"user_id": "u"}, "x", legacy=legacy_down, candidate=_broken
            )
        )
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ConnectionError"


def test_llm_operations_record_genai_duration_and_time_to_first_chunk(otel) -> None:
    spans, reader, client = otel
    m = client.migration("voice_v2")

    async def tokens(prompt: str) -> AsyncIterator[str]:
        await asyncio.sleep(0.02)
        for word in prompt.split():
            yield word
            await asyncio.sleep(0.01)

    async def consume() -> list[str]:
        return [
            c
            async for c in m.route_stream(
                "llm", {"user_id": "u"}, "a b c", legacy=tokens, candidate=tokens
            )
        ]

    assert asyncio.run(consume()) == ["a", "b", "c"]
    asyncio.run(m.route("stt", {"user_id": "u"}, "x", legacy=_ok, candidate=_ok))

    (duration,) = _points(reader, "gen_ai.client.operation.duration")
    (first,) = _points(reader, "gen_ai.client.operation.time_to_first_chunk")
    assert duration.count == 1 and first.count == 1  # stt records no GenAI metric
    assert dict(duration.attributes) == {
        "gen_ai.operation.name": "chat",
        "switchover.migration": "voice_v2",
        "switchover.side": "candidate",
    }
    assert 0.015 < first.sum < duration.sum  # seconds: the first chunk came before the end
    assert [s.name for s in spans.get_finished_spans()] == ["switchover llm", "switchover stt"]


def test_without_opentelemetry_the_router_has_no_telemetry(monkeypatch) -> None:
    import builtins

    real = builtins.__import__

    def no_otel(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("opentelemetry"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_otel)
    with Client(MemoryBackend([VOICE]), background=False) as client:
        m = client.migration("voice_v2")
        assert m._router.telemetry is None
        assert asyncio.run(m.route("stt", {"user_id": "u"}, "x", legacy=_ok, candidate=_ok)) == "x"

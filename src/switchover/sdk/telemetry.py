"""OpenTelemetry for routed operations (the ``otel`` extra): a span per operation, and
GenAI metrics for ``llm`` operations.

Each routed call (route, route_sync, streams, shadow) ends in one span named
``switchover {operation}``, timed from the call to its end, under the caller's current
span, with the feature-flag semantic conventions (``feature_flag.key`` = ``MIGRATION``
or ``MIGRATION.FEATURE``, ``feature_flag.result.variant`` = the decided side,
``feature_flag.result.reason`` = ``split``, ``targeting_match``, ``disabled`` …,
``feature_flag.provider.name`` = ``switchover``) and switchover's own
``switchover.side`` (the side that served), ``switchover.fallback`` and
``error.type``. An ``llm`` operation also records ``gen_ai.client.operation.duration``
and, when streamed, ``gen_ai.client.operation.time_to_first_chunk`` (seconds, GenAI
semantic conventions) with ``gen_ai.operation.name`` = ``chat`` and the side.

Without ``opentelemetry-api`` installed nothing is imported and the router's only cost
is one ``is None`` test per call; with it but no tracer provider set up, no span is
started. The global tracer and meter providers are used unless :func:`configure` names
others.
"""

from __future__ import annotations

import contextvars
import time
from typing import Any

from switchover.core.decision import Decision
from switchover.core.flag import OPENFEATURE_REASONS

SCOPE = "switchover"
LLM_OPERATIONS = frozenset({"llm"})
_decided: contextvars.ContextVar[tuple[str, str | None, Decision] | None] = contextvars.ContextVar(
    "switchover_decided", default=None
)
_providers: dict[str, Any] = {}


def configure(*, tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Use these providers instead of the global ones, for routers made from now on."""
    _providers["tracer"] = tracer_provider
    _providers["meter"] = meter_provider


def for_migration(name: str) -> Telemetry | None:
    """The migration's telemetry, or None when OpenTelemetry is not installed."""
    try:
        from opentelemetry import metrics, trace
    except ImportError:
        return None
    tracer_provider = _providers.get("tracer")
    meter_provider = _providers.get("meter") or metrics.get_meter_provider()
    tracer = None if tracer_provider is None else tracer_provider.get_tracer(SCOPE)
    return Telemetry(name, tracer, meter_provider.get_meter(SCOPE), trace)


class Telemetry:
    """Spans and metrics of one migration's router."""

    __slots__ = ("_duration", "_first_chunk", "_next_look", "_trace", "migration", "tracer")

    def __init__(self, migration: str, tracer: Any | None, meter: Any, trace_api: Any) -> None:
        self.migration = migration
        self.tracer = tracer
        """None until a tracer provider is set globally: no span is started before."""
        self._next_look = 0.0
        self._trace = trace_api
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration."
        )
        self._first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk of a streamed GenAI operation.",
        )

    def _tracer(self) -> Any | None:
        """The global tracer once the application has set a provider up (looked for at
        most once a second: the lookup reads the environment)."""
        if self.tracer is None:
            now = time.monotonic()
            if now < self._next_look:
                return None
            self._next_look = now + 1.0
            provider = self._trace.get_tracer_provider()
            if isinstance(provider, self._trace.ProxyTracerProvider):
                return None
            self.tracer = provider.get_tracer(SCOPE)
        return self.tracer

    def decided(self, feature: str | None, decision: Decision) -> None:
        """The decision of the call being routed in this context (read when it ends)."""
        if self.tracer is not None or self._tracer() is not None:
            _decided.set((self.migration, feature, decision))

    def observed(
        self,
        operation: str,
        side: str,
        latency_ms: float,
        ok: bool,
        error_type: str | None,
        fallback: bool,
        total_failure: bool,
        first_chunk_ms: float | None,
    ) -> None:
        """One routed call ended: its span, and for ``llm`` its GenAI metrics.

        A fallback is one observation of the candidate's failure: the call itself
        succeeded on legacy (its span is not an error) unless legacy failed too."""
        served = "legacy" if fallback else side
        failed = not ok and (total_failure or not fallback)
        tracer = self.tracer or self._tracer()
        if tracer is not None:
            end = time.time_ns()
            span = tracer.start_span(
                f"switchover {operation}", start_time=end - int(latency_ms * 1_000_000)
            )
            if span.is_recording():  # no attributes built for a span nobody keeps
                span.set_attributes(self._attributes(operation, side, served, fallback, error_type))
                if failed:
                    span.set_attribute("error.type", error_type or "error")
                    span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, error_type))
            span.end(end_time=end)
        if operation in LLM_OPERATIONS:
            metric = {
                "gen_ai.operation.name": "chat",
                "switchover.migration": self.migration,
                "switchover.side": served,
            }
            if failed and error_type is not None:
                metric["error.type"] = error_type
            self._duration.record(latency_ms / 1000.0, metric)
            if first_chunk_ms is not None:
                self._first_chunk.record(first_chunk_ms / 1000.0, metric)

    def _attributes(
        self, operation: str, side: str, served: str, fallback: bool, error_type: str | None
    ) -> dict[str, Any]:
        decided = _decided.get()
        attributes: dict[str, Any] = {
            "feature_flag.key": self.migration,
            "feature_flag.provider.name": "switchover",
            "feature_flag.result.variant": side,
            "switchover.migration": self.migration,
            "switchover.operation": operation,
            "switchover.side": served,
            "switchover.fallback": fallback,
        }
        if decided is not None and decided[0] == self.migration:
            _, feature, decision = decided
            if feature is not None:
                attributes["feature_flag.key"] = f"{self.migration}.{feature}"
            reason = OPENFEATURE_REASONS.get(decision.reason, "ERROR").lower()
            attributes["feature_flag.result.reason"] = reason
            attributes["feature_flag.version"] = str(decision.version)
            attributes["switchover.reason"] = decision.reason.value
        if fallback and error_type is not None:
            attributes["switchover.candidate.error_type"] = error_type
        return attributes

"""``MigratingLLM``: a livekit-agents ``llm.LLM`` over a legacy and a candidate LLM.

Each ``chat()`` is one stream route: the candidate's first token within the first-chunk
deadline, or legacy answers the same request before any token reached the session.
Neither instance retries on its own (``max_retry=0``): a candidate failure goes to
legacy at once, as LiveKit's ``FallbackAdapter`` does. The two instances' metrics are
re-emitted as the drop-in's own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from livekit.agents import llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions

from switchover.sdk.dropin import Route


class MigratingLLM(llm.LLM):
    """``MigratingLLM(legacy=openai.LLM(), candidate=anthropic.LLM(), call=m.call(room))``.

    ``call``: the call's pin (``m.call(call_id, ctx)``: one side for the whole call), or
    the migration handle with a ``context`` (a mapping, or a function returning it).
    ``operation`` names the recorded operation and, unless configured, its feature.
    ``first_chunk_timeout``: seconds the candidate has for its first token (default:
    the operation's timeout, ``m.configure("llm", first_chunk_timeout=…)``).
    """

    def __init__(
        self,
        *,
        legacy: llm.LLM,
        candidate: llm.LLM,
        call: Any,
        context: Mapping[str, Any] | Callable[[], Mapping[str, Any] | None] | None = None,
        operation: str = "llm",
        first_chunk_timeout: float | None = None,
    ) -> None:
        super().__init__()
        self.legacy = legacy
        self.candidate = candidate
        self.route = Route.of(call, operation, context, first_chunk_timeout)
        for instance in (legacy, candidate):
            instance.on("metrics_collected", self._forward_metrics)

    def _next(self) -> llm.LLM:
        return self.candidate if self.route.decide().candidate else self.legacy

    @property
    def model(self) -> str:
        """The model of the side the next request goes to."""
        return self._next().model

    @property
    def provider(self) -> str:
        return self._next().provider

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: Any = NOT_GIVEN,
        tool_choice: Any = NOT_GIVEN,
        extra_kwargs: Any = NOT_GIVEN,
    ) -> llm.LLMStream:
        return MigratingLLMStream(
            self,
            chat_ctx=chat_ctx,
            tools=tools or [],
            conn_options=conn_options,
            options={
                "parallel_tool_calls": parallel_tool_calls,
                "tool_choice": tool_choice,
                "extra_kwargs": extra_kwargs,
            },
        )

    def prewarm(self, *, loop: Any = None) -> None:
        self._next().prewarm(loop=loop)

    async def aclose(self) -> None:
        for instance in (self.legacy, self.candidate):
            instance.off("metrics_collected", self._forward_metrics)

    def _forward_metrics(self, *args: Any, **kwargs: Any) -> None:
        self.emit("metrics_collected", *args, **kwargs)


class MigratingLLMStream(llm.LLMStream):
    def __init__(
        self,
        migrating: MigratingLLM,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
        options: dict[str, Any],
    ) -> None:
        super().__init__(migrating, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._migrating = migrating
        self._options = options

    def _side(self, instance: llm.LLM) -> Callable[[], AsyncIterator[llm.ChatChunk]]:
        async def chunks() -> AsyncIterator[llm.ChatChunk]:
            async with instance.chat(
                chat_ctx=self._chat_ctx,
                tools=self._tools,
                conn_options=dataclasses.replace(self._conn_options, max_retry=0),
                **self._options,
            ) as stream:
                async for chunk in stream:
                    yield chunk

        return chunks

    async def _run(self) -> None:
        m = self._migrating
        async for chunk in m.route.stream(self._side(m.legacy), self._side(m.candidate)):
            self._event_ch.send_nowait(chunk)

    async def _metrics_monitor_task(self, event_aiter: Any) -> None:
        async for _ in event_aiter:  # the side's own stream reports its metrics
            pass

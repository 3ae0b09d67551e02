"""``MigratingSTT``: a livekit-agents ``stt.STT`` over a legacy and a candidate STT.

``recognize()`` is a route; ``stream()`` is a stream route whose chunks are speech
events. The audio pushed into the stream is kept until a side gave its first event, so
a candidate that fails or stalls before it hands legacy the whole utterance, not its
tail. The first-chunk deadline counts from the stream's start: set
``first_chunk_timeout`` above the silence you expect before the caller's first words.
It streams when both sides do (otherwise the session uses a ``StreamAdapter`` with VAD).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from livekit import rtc
from livekit.agents import stt, utils
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    NOT_GIVEN,
    APIConnectOptions,
    NotGivenOr,
)
from livekit.agents.utils import AudioBuffer

from switchover.sdk.dropin import Replay, Route


class MigratingSTT(stt.STT):
    """``MigratingSTT(legacy=deepgram.STT(), candidate=assemblyai.STT(), call=m.call(room))``.

    ``call``, ``context``, ``operation`` and ``first_chunk_timeout`` as for
    :class:`~switchover.livekit.MigratingLLM`.
    """

    def __init__(
        self,
        *,
        legacy: stt.STT,
        candidate: stt.STT,
        call: Any,
        context: Mapping[str, Any] | Callable[[], Mapping[str, Any] | None] | None = None,
        operation: str = "stt",
        first_chunk_timeout: float | None = None,
    ) -> None:
        lc, cc = legacy.capabilities, candidate.capabilities
        super().__init__(
            capabilities=stt.STTCapabilities(
                streaming=lc.streaming and cc.streaming,
                interim_results=lc.interim_results and cc.interim_results,
            )
        )
        self.legacy = legacy
        self.candidate = candidate
        self.route = Route.of(call, operation, context, first_chunk_timeout)
        self._recognize_metrics_needed = False  # each side reports its own
        for instance in (legacy, candidate):
            instance.on("metrics_collected", self._forward_metrics)

    def _next(self) -> stt.STT:
        return self.candidate if self.route.decide().candidate else self.legacy

    @property
    def model(self) -> str:
        return self._next().model

    @property
    def provider(self) -> str:
        return self._next().provider

    async def _recognize_impl(
        self,
        buffer: AudioBuffer,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions,
    ) -> stt.SpeechEvent:
        once = dataclasses.replace(conn_options, max_retry=0)

        def side(instance: stt.STT) -> Callable[[], Any]:
            return lambda: instance.recognize(buffer, language=language, conn_options=once)

        return await self.route.call_once(side(self.legacy), side(self.candidate))

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        if not self.capabilities.streaming:
            raise NotImplementedError(
                "one side of this MigratingSTT does not stream: the session wraps it in a "
                "StreamAdapter with VAD, or give two streaming STT"
            )
        return MigratingRecognizeStream(stt=self, conn_options=conn_options, language=language)

    def prewarm(self) -> None:
        self._next().prewarm()

    async def aclose(self) -> None:
        for instance in (self.legacy, self.candidate):
            instance.off("metrics_collected", self._forward_metrics)

    def _forward_metrics(self, *args: Any, **kwargs: Any) -> None:
        self.emit("metrics_collected", *args, **kwargs)


class MigratingRecognizeStream(stt.RecognizeStream):
    def __init__(
        self,
        *,
        stt: MigratingSTT,
        conn_options: APIConnectOptions,
        language: NotGivenOr[str],
    ) -> None:
        super().__init__(stt=stt, conn_options=conn_options)
        self._migrating = stt
        self._language = language

    def _side(
        self, instance: stt.STT, replay: Replay
    ) -> Callable[[], AsyncIterator[stt.SpeechEvent]]:
        async def events() -> AsyncIterator[stt.SpeechEvent]:
            stream = instance.stream(
                language=self._language,
                conn_options=dataclasses.replace(self._conn_options, max_retry=0),
            )

            async def forward() -> None:
                async for item in replay:
                    if isinstance(item, rtc.AudioFrame):
                        stream.push_frame(item)
                    else:
                        stream.flush()
                stream.end_input()

            feeding = asyncio.create_task(forward())
            try:
                async with stream:
                    async for event in stream:
                        yield event
            finally:
                await utils.aio.cancel_and_wait(feeding)

        return events

    async def _run(self) -> None:
        m = self._migrating
        replay = Replay()

        async def take_input() -> None:
            async for item in self._input_ch:
                replay.push(item)
            replay.close()

        reading = asyncio.create_task(take_input())
        try:
            chunks = m.route.stream(self._side(m.legacy, replay), self._side(m.candidate, replay))
            async for event in chunks:
                replay.settle()
                self._event_ch.send_nowait(event)
        finally:
            await utils.aio.cancel_and_wait(reading)

"""``MigratingTTS``: a livekit-agents ``tts.TTS`` over a legacy and a candidate TTS.

``synthesize()`` and ``stream()`` are stream routes: the candidate's first audio within
the first-chunk deadline, or legacy speaks the same text (everything pushed so far is
replayed to it) before any audio reached the session. The drop-in speaks at legacy's
sample rate; a candidate at another rate is resampled. It streams when both sides do.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from livekit import rtc
from livekit.agents import tts, utils
from livekit.agents.types import (
    DEFAULT_API_CONNECT_OPTIONS,
    USERDATA_TIMED_TRANSCRIPT,
    APIConnectOptions,
)

from switchover.sdk.dropin import Replay, Route


class MigratingTTS(tts.TTS):
    """``MigratingTTS(legacy=cartesia.TTS(), candidate=elevenlabs.TTS(), call=m.call(room))``.

    ``call``, ``context``, ``operation`` and ``first_chunk_timeout`` as for
    :class:`~switchover.livekit.MigratingLLM`.
    """

    def __init__(
        self,
        *,
        legacy: tts.TTS,
        candidate: tts.TTS,
        call: Any,
        context: Mapping[str, Any] | Callable[[], Mapping[str, Any] | None] | None = None,
        operation: str = "tts",
        first_chunk_timeout: float | None = None,
    ) -> None:
        if legacy.num_channels != candidate.num_channels:
            raise ValueError(
                f"legacy speaks {legacy.num_channels} channel(s) and the candidate "
                f"{candidate.num_channels}: give both the same number of channels"
            )
        super().__init__(
            capabilities=tts.TTSCapabilities(
                streaming=legacy.capabilities.streaming and candidate.capabilities.streaming,
                aligned_transcript=legacy.capabilities.aligned_transcript
                and candidate.capabilities.aligned_transcript,
            ),
            sample_rate=legacy.sample_rate,
            num_channels=legacy.num_channels,
        )
        self.legacy = legacy
        self.candidate = candidate
        self.route = Route.of(call, operation, context, first_chunk_timeout)
        for instance in (legacy, candidate):
            instance.on("metrics_collected", self._forward_metrics)

    def _next(self) -> tts.TTS:
        return self.candidate if self.route.decide().candidate else self.legacy

    @property
    def model(self) -> str:
        return self._next().model

    @property
    def provider(self) -> str:
        return self._next().provider

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return MigratingChunkedStream(tts=self, input_text=text, conn_options=conn_options)

    def stream(
        self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.SynthesizeStream:
        if not self.capabilities.streaming:
            raise NotImplementedError(
                "one side of this MigratingTTS does not stream: the session wraps it in a "
                "StreamAdapter, or give two streaming TTS"
            )
        return MigratingSynthesizeStream(tts=self, conn_options=conn_options)

    def prewarm(self) -> None:
        self._next().prewarm()

    async def aclose(self) -> None:
        for instance in (self.legacy, self.candidate):
            instance.off("metrics_collected", self._forward_metrics)

    def _forward_metrics(self, *args: Any, **kwargs: Any) -> None:
        self.emit("metrics_collected", *args, **kwargs)


class _Speaker:
    """Pushes a side's audio into the drop-in's emitter, resampled when its rate differs."""

    def __init__(self, emitter: tts.AudioEmitter, sample_rate: int) -> None:
        self.emitter = emitter
        self.sample_rate = sample_rate
        self.resampler: rtc.AudioResampler | None = None

    def push(self, audio: tts.SynthesizedAudio) -> None:
        if texts := audio.frame.userdata.get(USERDATA_TIMED_TRANSCRIPT):
            self.emitter.push_timed_transcript(texts)
        frame = audio.frame
        if frame.sample_rate == self.sample_rate:
            self.emitter.push_frame(frame)
            return
        if self.resampler is None:
            self.resampler = rtc.AudioResampler(frame.sample_rate, self.sample_rate)
        for out in self.resampler.push(frame):
            self.emitter.push_frame(out)
        if audio.is_final:
            self.flush()

    def flush(self) -> None:
        if self.resampler is not None:
            for out in self.resampler.flush():
                self.emitter.push_frame(out)


def _once(options: APIConnectOptions) -> APIConnectOptions:
    return dataclasses.replace(options, max_retry=0)


class MigratingChunkedStream(tts.ChunkedStream):
    _tts_attempt_span_name = None

    def __init__(
        self, *, tts: MigratingTTS, input_text: str, conn_options: APIConnectOptions
    ) -> None:
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._migrating = tts

    def _side(self, instance: tts.TTS) -> Callable[[], AsyncIterator[tts.SynthesizedAudio]]:
        async def audio() -> AsyncIterator[tts.SynthesizedAudio]:
            async with instance.synthesize(
                self._input_text, conn_options=_once(self._conn_options)
            ) as stream:
                async for chunk in stream:
                    yield chunk

        return audio

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        m = self._migrating
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=m.sample_rate,
            num_channels=m.num_channels,
            mime_type="audio/pcm",
        )
        speaker = _Speaker(output_emitter, m.sample_rate)
        async for audio in m.route.stream(self._side(m.legacy), self._side(m.candidate)):
            speaker.push(audio)
        speaker.flush()

    async def _metrics_monitor_task(self, event_aiter: Any) -> None:
        async for _ in event_aiter:  # the side's own stream reports its metrics
            pass


class MigratingSynthesizeStream(tts.SynthesizeStream):
    _tts_attempt_span_name = None

    def __init__(self, *, tts: MigratingTTS, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=tts, conn_options=conn_options)
        self._migrating = tts

    def _side(
        self, instance: tts.TTS, replay: Replay
    ) -> Callable[[], AsyncIterator[tts.SynthesizedAudio]]:
        async def audio() -> AsyncIterator[tts.SynthesizedAudio]:
            stream = instance.stream(conn_options=_once(self._conn_options))

            async def forward() -> None:
                async for item in replay:
                    if isinstance(item, str):
                        stream.push_text(item)
                    else:
                        stream.flush()
                stream.end_input()

            feeding = asyncio.create_task(forward())
            try:
                async with stream:
                    async for chunk in stream:
                        yield chunk
            finally:
                await utils.aio.cancel_and_wait(feeding)

        return audio

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        m = self._migrating
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=m.sample_rate,
            num_channels=m.num_channels,
            mime_type="audio/pcm",
            stream=True,
        )
        output_emitter.start_segment(segment_id=utils.shortuuid())
        replay = Replay()

        async def take_input() -> None:
            async for item in self._input_ch:
                replay.push(item)
            replay.close()

        reading = asyncio.create_task(take_input())
        speaker = _Speaker(output_emitter, m.sample_rate)
        try:
            chunks = m.route.stream(self._side(m.legacy, replay), self._side(m.candidate, replay))
            async for audio in chunks:
                replay.settle()
                speaker.push(audio)
            speaker.flush()
        finally:
            await utils.aio.cancel_and_wait(reading)

    async def _metrics_monitor_task(self, event_aiter: Any) -> None:
        async for _ in event_aiter:
            pass

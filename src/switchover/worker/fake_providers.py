"""Fake LLM and TTS for the load test, built on livekit-agents' own base classes.

They stand in for the provider APIs only: the job still goes through
``CoreWorker.entrypoint``, a real ``AgentSession`` runs each turn (LLM node, TTS node,
transcription sync, audio output), so what the load test measures is the worker's own
path plus a provider latency the user chooses. Imported only when the load test runs
(it needs the ``livekit`` extra).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from livekit import rtc
from livekit.agents import APIConnectOptions, llm, tts, utils
from livekit.agents.voice.io import AudioOutput, AudioOutputCapabilities

RATE = 16_000
WORDS = ("Thanks", " for", " calling,", " how", " can", " I", " help?")


class FakeLLM(llm.LLM):
    """Streams a short answer, its first token after ``reply_ms`` (times 0.7 to 1.3)."""

    def __init__(self, reply_ms: float, rng: random.Random) -> None:
        super().__init__()
        self.reply_ms, self.rng = reply_ms, rng

    @property
    def model(self) -> str:
        return "loadtest-fake"

    @property
    def provider(self) -> str:
        return "fake"

    def chat(self, *, chat_ctx: llm.ChatContext, tools: Any = None, **kw: Any) -> llm.LLMStream:
        return _LLMStream(
            self,
            chat_ctx=chat_ctx,
            tools=tools or [],
            conn_options=kw.get("conn_options", APIConnectOptions()),
        )


class _LLMStream(llm.LLMStream):
    async def _run(self) -> None:
        fake: FakeLLM = self._llm  # type: ignore[assignment]
        await asyncio.sleep(fake.reply_ms / 1000 * fake.rng.uniform(0.7, 1.3))
        for word in WORDS:
            self._event_ch.send_nowait(
                llm.ChatChunk(id="fake", delta=llm.ChoiceDelta(role="assistant", content=word))
            )


class FakeTTS(tts.TTS):
    """Streaming speech: 10 ms of a quiet tone per character of text, at once."""

    def __init__(self) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=True), sample_rate=RATE, num_channels=1
        )

    @property
    def model(self) -> str:
        return "loadtest-fake"

    @property
    def provider(self) -> str:
        return "fake"

    def synthesize(self, text: str, *, conn_options: Any = None) -> tts.ChunkedStream:
        return _Chunked(tts=self, input_text=text, conn_options=conn_options or APIConnectOptions())

    def stream(self, *, conn_options: Any = None) -> tts.SynthesizeStream:
        return _Synth(tts=self, conn_options=conn_options or APIConnectOptions())


def _audio(text: str) -> bytes:
    return (3).to_bytes(2, "little", signed=True) * (RATE // 100 * max(1, len(text)))


def _start(emitter: tts.AudioEmitter, *, stream: bool) -> None:
    emitter.initialize(
        request_id=utils.shortuuid(),
        sample_rate=RATE,
        num_channels=1,
        mime_type="audio/pcm",
        stream=stream,
    )


class _Chunked(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        _start(output_emitter, stream=False)
        output_emitter.push(_audio(self._input_text))


class _Synth(tts.SynthesizeStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        _start(output_emitter, stream=True)
        output_emitter.start_segment(segment_id=utils.shortuuid())
        text = ""
        async for data in self._input_ch:
            if isinstance(data, str):
                text += data
            elif text:
                output_emitter.push(_audio(text))
                output_emitter.flush()
                text = ""
        if text:
            output_emitter.push(_audio(text))
        output_emitter.end_input()


class TimedAudio(AudioOutput):
    """The call's loudspeaker: plays out at once and notes when each reply's first audio
    arrived (the caller's wait is from the end of their words to that moment)."""

    def __init__(self) -> None:
        super().__init__(label="loadtest", capabilities=AudioOutputCapabilities(pause=True))
        self.first_at: float | None = None
        self._pushed = 0.0

    def expect_reply(self) -> None:
        self.first_at = None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self.first_at is None:
            self.first_at = time.perf_counter()
        self._pushed += frame.duration

    def flush(self) -> None:
        super().flush()
        self.on_playback_finished(playback_position=self._pushed, interrupted=False)
        self._pushed = 0.0

    def clear_buffer(self) -> None:
        pass

"""Fake providers built on livekit-agents' own base classes (no network), and an audio
output that keeps what the session would have played."""

from __future__ import annotations

import asyncio
from typing import Any

from livekit import rtc
from livekit.agents import APIConnectionError, APIConnectOptions, llm, stt, tts, utils
from livekit.agents.voice.io import AudioOutput, AudioOutputCapabilities

RATE = 24_000


class FakeLLM(llm.LLM):
    """Answers ``"<name> says hi"``; ``stall`` seconds before its first token, or ``fail``."""

    def __init__(self, name: str, *, stall: float = 0.0, fail: bool = False) -> None:
        super().__init__()
        self.name, self.stall, self.fail = name, stall, fail
        self.requests = 0

    @property
    def model(self) -> str:
        return f"{self.name}-model"

    def chat(self, *, chat_ctx: llm.ChatContext, tools: Any = None, **kw: Any) -> llm.LLMStream:
        self.requests += 1
        return _LLMStream(
            self,
            chat_ctx=chat_ctx,
            tools=tools or [],
            conn_options=kw.get("conn_options", APIConnectOptions()),
        )


class _LLMStream(llm.LLMStream):
    async def _run(self) -> None:
        fake: FakeLLM = self._llm  # type: ignore[assignment]
        if fake.stall:
            await asyncio.sleep(fake.stall)
        if fake.fail:
            raise APIConnectionError(f"{fake.name} is down", retryable=False)
        for word in (fake.name, " says", " hi"):
            self._event_ch.send_nowait(
                llm.ChatChunk(id=fake.name, delta=llm.ChoiceDelta(role="assistant", content=word))
            )


class FakeTTS(tts.TTS):
    """Speaks 10 ms of samples of value ``level`` per character of text."""

    def __init__(self, level: int, *, rate: int = RATE, stall: float = 0.0) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=True), sample_rate=rate, num_channels=1
        )
        self.level, self.stall = level, stall
        self.texts: list[str] = []

    def synthesize(self, text: str, *, conn_options: Any = None) -> tts.ChunkedStream:
        return _Chunked(tts=self, input_text=text, conn_options=conn_options or APIConnectOptions())

    def stream(self, *, conn_options: Any = None) -> tts.SynthesizeStream:
        return _Synth(tts=self, conn_options=conn_options or APIConnectOptions())

    def audio(self, text: str) -> bytes:
        self.texts.append(text)
        samples = self.sample_rate // 100 * max(1, len(text))
        return self.level.to_bytes(2, "little", signed=True) * samples


class _Chunked(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        fake: FakeTTS = self._tts  # type: ignore[assignment]
        if fake.stall:
            await asyncio.sleep(fake.stall)
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=fake.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
        )
        output_emitter.push(fake.audio(self._input_text))


class _Synth(tts.SynthesizeStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        fake: FakeTTS = self._tts  # type: ignore[assignment]
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=fake.sample_rate,
            num_channels=1,
            mime_type="audio/pcm",
            stream=True,
        )
        output_emitter.start_segment(segment_id=utils.shortuuid())
        text = ""
        async for data in self._input_ch:
            if fake.stall:
                await asyncio.sleep(fake.stall)
            if isinstance(data, str):
                text += data
                continue
            if text:
                output_emitter.push(fake.audio(text))
                output_emitter.flush()
                text = ""
        if text:
            output_emitter.push(fake.audio(text))
        output_emitter.end_input()


class FakeSTT(stt.STT):
    """A streaming STT: on each flush, one final transcript naming how many frames it heard."""

    def __init__(self, name: str, *, stall: float = 0.0) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=False))
        self.name, self.stall = name, stall

    async def _recognize_impl(self, buffer: Any, *, language: Any = None, conn_options: Any = None):
        if self.stall:
            await asyncio.sleep(self.stall)
        frames = buffer if isinstance(buffer, list) else [buffer]
        return _final(f"{self.name} heard {len(frames)} frames")

    def stream(self, *, language: Any = None, conn_options: Any = None) -> stt.RecognizeStream:
        return _Recognize(stt=self, conn_options=conn_options or APIConnectOptions())


def _final(text: str) -> stt.SpeechEvent:
    return stt.SpeechEvent(
        type=stt.SpeechEventType.FINAL_TRANSCRIPT,
        alternatives=[stt.SpeechData(language="en", text=text)],
    )


class _Recognize(stt.RecognizeStream):
    async def _run(self) -> None:
        fake: FakeSTT = self._stt  # type: ignore[assignment]
        frames = 0
        async for item in self._input_ch:
            if fake.stall:
                await asyncio.sleep(fake.stall)
            if isinstance(item, rtc.AudioFrame):
                frames += 1
            elif frames:
                self._event_ch.send_nowait(_final(f"{fake.name} heard {frames} frames"))
                frames = 0


def frame(level: int = 7) -> rtc.AudioFrame:
    return rtc.AudioFrame(
        data=level.to_bytes(2, "little", signed=True) * 160,
        sample_rate=16_000,
        num_channels=1,
        samples_per_channel=160,
    )


class KeptAudio(AudioOutput):
    """The session's audio output: keeps every frame, plays it out at once."""

    def __init__(self) -> None:
        super().__init__(label="kept", capabilities=AudioOutputCapabilities(pause=False))
        self.frames: list[rtc.AudioFrame] = []
        self._pushed = 0.0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        self.frames.append(frame)
        self._pushed += frame.duration

    def flush(self) -> None:
        super().flush()
        self.on_playback_finished(playback_position=self._pushed, interrupted=False)
        self._pushed = 0.0

    def clear_buffer(self) -> None:
        pass

    def levels(self) -> set[int]:
        """The sample values played, silence left out: which fake TTS spoke."""
        out: set[int] = set()
        for f in self.frames:
            out.update(f.data.tolist())
        return out - {0}  # the emitter pads with silence

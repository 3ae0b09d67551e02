"""Simulated voice pipelines for the demo: speech-to-text, the LLM turn, text-to-speech.

Each part of each side waits a lognormal latency (``asyncio.sleep``, so the router's
wall-clock measurement records it and many calls share one event loop) and fails now
and then. The candidate (voice_v2) is somewhat faster and fails less than legacy,
until :meth:`Pipelines.break_candidate` makes it fail far more often: the router then
falls back to legacy, and the recorded rollups show the candidate's errors and
fallbacks that the controller rolls back on.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

PARTS = ("stt", "llm", "tts")
SIDES = ("legacy", "candidate")
BROKEN_ERROR_RATE = 0.3


@dataclass(frozen=True, slots=True)
class Profile:
    """One part of one side: median latency, lognormal spread, base error rate."""

    p50_ms: float
    sigma: float
    error_rate: float

    def p95_ms(self) -> float:
        return self.p50_ms * math.exp(1.6449 * self.sigma)


PROFILES: dict[str, dict[str, Profile]] = {
    "legacy": {
        "stt": Profile(300.0, 0.35, 0.008),
        "llm": Profile(700.0, 0.40, 0.008),
        "tts": Profile(250.0, 0.35, 0.008),
    },
    "candidate": {
        "stt": Profile(240.0, 0.30, 0.005),
        "llm": Profile(560.0, 0.35, 0.005),
        "tts": Profile(200.0, 0.30, 0.005),
    },
}
CANDIDATE_BASE_ERROR_RATE = 0.005

UTTERANCES: dict[str, tuple[str, ...]] = {
    "book": (
        "I'd like to book a cleaning next Tuesday",
        "can I get an appointment tomorrow morning",
        "book me in with doctor Reyes please",
    ),
    "reschedule": (
        "I need to move my appointment to Friday",
        "can we push Thursday's visit by an hour",
    ),
    "question": (
        "what are your opening hours on Saturday",
        "do you take my insurance",
        "where do I park",
    ),
}
INTENTS = ("book", "reschedule", "question")
INTENT_WEIGHTS = (0.5, 0.2, 0.3)
BOOKING_CONVERSION = {"legacy": 0.74, "candidate": 0.76}
"""Share of "book" calls the LLM turn closes with a booking."""
EMPTY_TRANSCRIPT = {"legacy": 0.012, "candidate": 0.008}


class ProviderError(Exception):
    """A simulated provider failure: a 5xx, a dropped stream."""


@dataclass(frozen=True, slots=True)
class Audio:
    """What a caller said (the simulation carries the words instead of samples)."""

    intent: str
    words: str


@dataclass(frozen=True, slots=True)
class Transcript:
    intent: str
    text: str


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    booked: bool


Part = Callable[..., Awaitable[object]]


class Pipelines:
    """Both sides' parts, one seeded generator, and the demo's break switch.

    ``latency_scale`` shrinks every wait (tests); ``break_candidate`` and
    ``heal_candidate`` may be called from any thread.
    """

    def __init__(self, *, seed: int | None = None, latency_scale: float = 1.0) -> None:
        if latency_scale <= 0:
            raise ValueError("latency_scale must be positive")
        self.latency_scale = latency_scale
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._broken_rate: float | None = None
        self.legacy: dict[str, Part] = self._side("legacy")
        self.candidate: dict[str, Part] = self._side("candidate")

    # the demo control ----------------------------------------------------------------

    def break_candidate(self, error_rate: float = BROKEN_ERROR_RATE) -> None:
        """Make every candidate part fail with ``error_rate`` (0 < rate <= 1)."""
        if not isinstance(error_rate, int | float) or not 0.0 < error_rate <= 1.0:
            raise ValueError("error_rate must be above 0 and at most 1")
        with self._lock:
            self._broken_rate = float(error_rate)

    def heal_candidate(self) -> None:
        with self._lock:
            self._broken_rate = None

    @property
    def broken(self) -> bool:
        return self._broken_rate is not None

    @property
    def candidate_error_rate(self) -> float:
        """The error rate of each candidate part now."""
        rate = self._broken_rate
        return CANDIDATE_BASE_ERROR_RATE if rate is None else rate

    def error_rate(self, side: str, part: str) -> float:
        base = PROFILES[side][part].error_rate
        rate = self._broken_rate if side == "candidate" else None
        return base if rate is None else max(base, rate)

    # draws ------------------------------------------------------------------------------

    def draw(self, side: str, part: str) -> tuple[float, bool]:
        """Latency in seconds (before scaling) and whether this call fails."""
        profile = PROFILES[side][part]
        fail_rate = self.error_rate(side, part)
        with self._lock:
            latency = self._rng.lognormvariate(math.log(profile.p50_ms), profile.sigma) / 1000.0
            fails = self._rng.random() < fail_rate
        return latency, fails

    def chance(self, p: float) -> bool:
        with self._lock:
            return self._rng.random() < p

    def utterance(self) -> Audio:
        with self._lock:
            intent = self._rng.choices(INTENTS, INTENT_WEIGHTS)[0]
            words = self._rng.choice(UTTERANCES[intent])
        return Audio(intent, words)

    async def _wait(self, side: str, part: str) -> None:
        latency, fails = self.draw(side, part)
        if fails:
            # a failure answers early: a refused stream or a 5xx after part of the work
            await asyncio.sleep(latency * 0.4 * self.latency_scale)
            raise ProviderError(f"{side} {part}: upstream returned 503")
        await asyncio.sleep(latency * self.latency_scale)

    # the parts ----------------------------------------------------------------------

    def _side(self, side: str) -> dict[str, Part]:
        async def stt(audio: Audio) -> Transcript:
            await self._wait(side, "stt")
            empty = self.chance(EMPTY_TRANSCRIPT[side])
            return Transcript(audio.intent, "" if empty else audio.words)

        async def llm(transcript: Transcript) -> Reply:
            await self._wait(side, "llm")
            if not transcript.text:
                return Reply("Sorry, I didn't catch that. Could you say it again?", False)
            if transcript.intent == "book" and self.chance(BOOKING_CONVERSION[side]):
                return Reply("You're booked. See you then!", True)
            return Reply("Sure, here is what I found.", False)

        async def tts(reply: Reply) -> bytes:
            await self._wait(side, "tts")
            return reply.text.encode()

        stt.__qualname__ = f"{side}_stt"
        llm.__qualname__ = f"{side}_llm"
        tts.__qualname__ = f"{side}_tts"
        return {"stt": stt, "llm": llm, "tts": tts}

"""The demo's simulated voice pipelines: latencies, error rates, the break switch."""

from __future__ import annotations

import asyncio
import statistics
import threading

import pytest

from switchover.demo.pipelines import (
    PARTS,
    PROFILES,
    Audio,
    Part,
    Pipelines,
    ProviderError,
    Reply,
    Transcript,
)

N = 20_000


def failure_rate(p: Pipelines, side: str, part: str, n: int = N) -> float:
    return sum(p.draw(side, part)[1] for _ in range(n)) / n


def test_healthy_candidate_is_faster_and_fails_less_than_legacy() -> None:
    p = Pipelines(seed=1)
    for part in PARTS:
        legacy = [p.draw("legacy", part)[0] for _ in range(5000)]
        candidate = [p.draw("candidate", part)[0] for _ in range(5000)]
        assert statistics.median(candidate) < statistics.median(legacy)
        # medians within 10 % of the profile (seconds)
        assert statistics.median(legacy) * 1000 == pytest.approx(
            PROFILES["legacy"][part].p50_ms, rel=0.1
        )
        assert 0.002 < failure_rate(p, "candidate", part) < failure_rate(p, "legacy", part) < 0.02


def test_voice_latencies_are_in_a_realistic_range() -> None:
    assert 200 <= PROFILES["legacy"]["stt"].p50_ms <= 400
    assert 500 <= PROFILES["legacy"]["llm"].p50_ms <= 900
    assert 150 <= PROFILES["legacy"]["tts"].p50_ms <= 350
    for side in PROFILES.values():
        for profile in side.values():
            assert profile.p95_ms() < 2000


def test_break_raises_the_candidate_error_rate_and_heal_restores_it() -> None:
    p = Pipelines(seed=2)
    assert not p.broken
    assert p.candidate_error_rate == pytest.approx(0.005)
    p.break_candidate()
    assert p.broken
    assert p.candidate_error_rate == 0.3
    for part in PARTS:
        assert failure_rate(p, "candidate", part) == pytest.approx(0.3, abs=0.02)
        assert failure_rate(p, "legacy", part) < 0.02  # legacy is untouched
    p.break_candidate(error_rate=0.6)
    assert failure_rate(p, "candidate", "llm") == pytest.approx(0.6, abs=0.02)
    p.heal_candidate()
    assert not p.broken
    assert p.candidate_error_rate == pytest.approx(0.005)
    assert failure_rate(p, "candidate", "stt") < 0.02


@pytest.mark.parametrize("rate", [0, -0.1, 1.5, float("nan")])
def test_break_refuses_an_impossible_error_rate(rate: float) -> None:
    with pytest.raises(ValueError, match="error_rate"):
        Pipelines().break_candidate(rate)


def test_the_same_seed_draws_the_same_calls() -> None:
    a, b = Pipelines(seed=7), Pipelines(seed=7)
    assert [a.draw("legacy", "llm") for _ in range(50)] == [
        b.draw("legacy", "llm") for _ in range(50)
    ]


def test_break_and_heal_from_other_threads_while_calls_are_drawn() -> None:
    p = Pipelines(seed=3)
    stop = threading.Event()

    def toggle() -> None:
        while not stop.is_set():
            p.break_candidate(0.5)
            p.heal_candidate()

    thread = threading.Thread(target=toggle)
    thread.start()
    try:
        draws = [p.draw("candidate", "tts") for _ in range(20_000)]
    finally:
        stop.set()
        thread.join()
    assert all(latency > 0 for latency, _ in draws)
    p.heal_candidate()
    assert not p.broken


def test_the_parts_answer_like_a_voice_pipeline_and_a_broken_candidate_raises() -> None:
    p = Pipelines(seed=4, latency_scale=0.001)

    async def one(side: dict[str, Part]) -> tuple[Transcript, Reply, bytes]:
        text = await side["stt"](Audio("book", "book me in for Tuesday"))
        reply = await side["llm"](text)
        return text, reply, await side["tts"](reply)

    async def main() -> None:
        text, reply, audio = await one(p.legacy)
        assert text.intent == "book" and text.text in ("", "book me in for Tuesday")
        assert audio == reply.text.encode()
        p.break_candidate(1.0)
        with pytest.raises(ProviderError, match="candidate stt"):
            await one(p.candidate)
        p.heal_candidate()
        results = await asyncio.gather(
            *(one(p.candidate) for _ in range(200)), return_exceptions=True
        )
        answered = [r for r in results if not isinstance(r, BaseException)]
        assert len(answered) > 180  # a healthy part fails 0.5 % of the time
        booked = sum(reply.booked for _, reply, _ in answered)
        assert 0.5 * len(answered) < booked < 0.95 * len(answered)  # most "book" calls book

    asyncio.run(main())

"""The demo's callers: simulated voice calls through the real router, in a background thread.

Each call is one caller (``user_id``, the stickiness key) of one tenant saying one thing:
speech-to-text, an LLM turn, text-to-speech, each routed by the SDK
(:meth:`MigrationHandle.route`) between the legacy and the candidate pipeline, so the
decisions, fallbacks, latencies and outcomes recorded into the store are the ones a
real application would produce. Calls arrive as a Poisson process at ``rate`` per
second and run concurrently on one event loop in a thread of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Any

import switchover
from switchover.demo import DEMO_TENANTS, EXAMPLE_NAME, LLM_FEATURE
from switchover.demo.pipelines import BROKEN_ERROR_RATE, Audio, Pipelines, Reply, Transcript
from switchover.sdk.client import Client, MigrationHandle

if TYPE_CHECKING:
    from switchover.bootstrap import App

log = logging.getLogger("switchover.demo")

DEFAULT_RATE = 15.0
"""Calls per second: ~135 candidate calls a minute at the 5 % canary (3 operations each)."""
DEFAULT_USERS = 5000
TENANT_WEIGHTS = (0.35, 0.25, 0.2, 0.15, 0.05)
TIMEOUTS = {"stt": 3.0, "llm": 5.0, "tts": 3.0}
"""Candidate timeouts in seconds, as a voice application would set them."""
MAX_BACKLOG = 1.0
"""Seconds of arrivals a lagging loop may catch up on; older ones are skipped."""
THREAD_NAME = "switchover-demo-traffic"


class _NotFromDemo(logging.Filter):
    """Mutes the router's per-call fallback lines for the demo's own calls: a broken
    candidate would print dozens a second into the terminal of ``make run``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != THREAD_NAME


_ROUTER_LOG = logging.getLogger("switchover.router")


class DemoTraffic:
    """``start()`` it, ``break_candidate()`` and ``heal_candidate()`` it from any thread,
    ``stop()`` it: stopping cancels the calls in flight and flushes what was recorded."""

    def __init__(
        self,
        app: App,
        *,
        rate: float = DEFAULT_RATE,
        seed: int | None = None,
        users: int = DEFAULT_USERS,
        latency_scale: float = 1.0,
        flush_interval: float = 2.0,
        quiet: bool = True,
    ) -> None:
        if not rate > 0:
            raise ValueError("rate must be positive (calls per second)")
        if users < 1:
            raise ValueError("users must be at least 1")
        self.app = app
        self.rate = float(rate)
        self.users = users
        self.flush_interval = flush_interval
        self._filter = _NotFromDemo() if quiet else None
        self.pipelines = Pipelines(seed=seed, latency_scale=latency_scale)
        self._rng = random.Random(None if seed is None else seed + 1)
        self._client: Client | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lifecycle = threading.Lock()
        self._started_at: float | None = None
        self._calls = 0
        self._failed_calls = 0

    # lifecycle ----------------------------------------------------------------------

    @property
    def client(self) -> Client | None:
        """The SDK client the calls go through while running (its ``health()``)."""
        return self._client

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        with self._lifecycle:
            if not self.running:
                self._start()

    def _start(self) -> None:
        self._stop.clear()
        self._client = switchover.connect(
            self.app.settings.database_url,
            clock=self.app.clock,
            flush_interval=self.flush_interval,
        )
        handle = self._client.migration(EXAMPLE_NAME)
        handle.configure("llm", feature=LLM_FEATURE)
        for operation, timeout in TIMEOUTS.items():
            # no circuit breaker: the demo shows the controller judging a broken candidate
            # at the plan's share, which an open circuit would hide by sending it to legacy
            handle.configure(operation, timeout=timeout, circuit=None)
        if self._filter is not None:
            _ROUTER_LOG.addFilter(self._filter)
        self._started_at = time.monotonic()
        self._thread = threading.Thread(
            target=self._run, args=(handle,), name=THREAD_NAME, daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop making calls, cancel those in flight, flush the recorder to the store."""
        with self._lifecycle:
            self._stop_locked(timeout)

    def _stop_locked(self, timeout: float) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("demo traffic: the call loop did not stop within %.1f s", timeout)
        client, self._client = self._client, None
        if client is not None:
            client.close()
        if self._filter is not None:
            _ROUTER_LOG.removeFilter(self._filter)

    def flush(self) -> bool:
        """Write the calls recorded so far to the store now; False if it failed."""
        client = self._client
        return client.recorder.flush() if client is not None else True

    # the demo controls ----------------------------------------------------------------

    def break_candidate(self, error_rate: float = BROKEN_ERROR_RATE) -> None:
        self.pipelines.break_candidate(error_rate)
        log.warning(
            "demo: candidate broken: each part now fails %.0f %% of calls", error_rate * 100
        )

    def heal_candidate(self) -> None:
        self.pipelines.heal_candidate()
        log.warning("demo: candidate healed")

    def status(self) -> dict[str, Any]:
        started = self._started_at
        return {
            "migration": EXAMPLE_NAME,
            "running": self.running,
            "rate": self.rate,
            "calls": self._calls,
            "failed_calls": self._failed_calls,
            "broken": self.pipelines.broken,
            "candidate_error_rate": self.pipelines.candidate_error_rate,
            "uptime_seconds": (
                round(time.monotonic() - started, 1)
                if started is not None and self.running
                else None
            ),
        }

    # the call loop --------------------------------------------------------------------

    def _run(self, handle: MigrationHandle) -> None:
        try:
            asyncio.run(self._main(handle))
        except Exception:
            log.exception("demo traffic stopped on an error")

    async def _main(self, handle: MigrationHandle) -> None:
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        next_at = loop.time()
        try:
            while not self._stop.is_set():
                now = loop.time()
                if next_at > now:
                    await asyncio.sleep(min(next_at - now, 0.1))
                    continue
                if now - next_at > MAX_BACKLOG:
                    next_at = now
                task = loop.create_task(self._call(handle))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                next_at += self._rng.expovariate(self.rate)
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _call(self, handle: MigrationHandle) -> None:
        rng = self._rng
        context = {
            "user_id": f"caller-{rng.randrange(self.users):05d}",
            "tenant_id": rng.choices(DEMO_TENANTS, TENANT_WEIGHTS)[0],
        }
        legacy, candidate = self.pipelines.legacy, self.pipelines.candidate
        audio: Audio = self.pipelines.utterance()
        try:
            transcript: Transcript = await handle.route(
                "stt",
                context,
                audio,
                legacy=legacy["stt"],
                candidate=candidate["stt"],
                outcome=_stt_outcome,
            )
            reply: Reply = await handle.route(
                "llm",
                context,
                transcript,
                legacy=legacy["llm"],
                candidate=candidate["llm"],
                outcome=_llm_outcome,
            )
            await handle.route(
                "tts", context, reply, legacy=legacy["tts"], candidate=candidate["tts"]
            )
        except Exception:
            # legacy failed (chosen directly, or after the candidate): the caller hears an
            # error; the router has recorded it
            self._failed_calls += 1
        self._calls += 1


def _stt_outcome(transcript: Transcript) -> dict[str, float]:
    return {"empty_transcript": float(not transcript.text)}


def _llm_outcome(reply: Reply) -> dict[str, float]:
    return {"booked": float(reply.booked)}

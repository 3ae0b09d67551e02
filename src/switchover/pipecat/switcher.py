"""``MigratingSwitcher``: Pipecat's ``ServiceSwitcher`` over a legacy and a candidate
service, switched by a migration.

- One side per call: the side is the call's pin (``m.call(call_id, ctx)``), decided when
  the pipeline starts; the kill switch (or the operation's feature switched off) moves
  the call to legacy at its next request.
- Fallback before the first frame: a request the candidate fails (an ``ErrorFrame``) or
  stalls on (no first frame within ``first_frame_timeout``) before its first output
  frame is interrupted on the candidate and replayed to legacy, which serves the rest
  of the call. After the first frame the side is fixed: a failure is recorded and
  travels on as Pipecat's own error.
- Recording: one observation per request (latency to the end of the response, time to
  the first frame), a fallback or an error, through the migration's recorder.

A request is what the operation's :class:`Profile` says: for ``llm`` an
``LLMContextFrame`` answered by text up to ``LLMFullResponseEndFrame``; for ``tts`` a
``TTSSpeakFrame`` answered by audio up to ``TTSStoppedFrame``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipecat.frames.frames import (
    DataFrame,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    StartFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.service_switcher import ServiceSwitcher, ServiceSwitcherStrategy
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from switchover.sdk.dropin import Route

_perf = time.perf_counter


@dataclass(frozen=True)
class Profile:
    """Which frames start a request, which is its first output, which ends it, and which
    open a response (dropped, with the rest, when they come from a side let go)."""

    request: tuple[type[Frame], ...]
    first: tuple[type[Frame], ...]
    end: tuple[type[Frame], ...]
    opening: tuple[type[Frame], ...] = ()


PROFILES: Mapping[str, Profile] = {
    "llm": Profile(
        (LLMContextFrame,),
        (LLMTextFrame,),
        (LLMFullResponseEndFrame,),
        (LLMFullResponseStartFrame,),
    ),
    "tts": Profile((TTSSpeakFrame,), (TTSAudioRawFrame,), (TTSStoppedFrame,), (TTSStartedFrame,)),
}


class _Request:
    __slots__ = ("first_ms", "frame", "held", "side", "started", "watch")

    def __init__(self, side: str, frame: Frame) -> None:
        self.side = side
        self.frame = frame
        self.started = _perf()
        self.first_ms: float | None = None
        self.watch: asyncio.TimerHandle | None = None
        self.held: list[Frame] = []
        """The candidate's opening frames, held until its first frame: a fallback leaves
        no half-opened response downstream."""


class MigrationStrategy(ServiceSwitcherStrategy):
    """The side of the call (services: legacy, then candidate); made by the switcher."""

    switcher: MigratingSwitcher

    @property
    def legacy(self) -> FrameProcessor:
        return self.services[0]

    @property
    def candidate(self) -> FrameProcessor:
        return self.services[1]

    def side_of(self, service: FrameProcessor) -> str:
        return "candidate" if service is self.candidate else "legacy"

    async def handle_error(self, error: ErrorFrame) -> FrameProcessor | None:
        if error.processor is self.candidate:
            return await self.switcher._candidate_error(error)
        return None


class MigratingSwitcher(ServiceSwitcher[MigrationStrategy]):
    """``MigratingSwitcher(legacy=openai_llm, candidate=anthropic_llm, call=m.call(id))``.

    ``call``: the call's pin, or the migration handle with a ``context``. ``operation``
    names the recorded operation (its feature by default) and picks the
    :class:`Profile` (give ``profile`` for another kind of service).
    ``first_frame_timeout``: seconds the candidate has for a request's first output
    frame (default: the operation's timeout).
    """

    def __init__(
        self,
        *,
        legacy: FrameProcessor,
        candidate: FrameProcessor,
        call: Any,
        operation: str,
        context: Mapping[str, Any] | Callable[[], Mapping[str, Any] | None] | None = None,
        first_frame_timeout: float | None = None,
        profile: Profile | None = None,
    ) -> None:
        if profile is None:
            if operation not in PROFILES:
                raise ValueError(
                    f"operation {operation!r} has no frame profile: use one of "
                    f"{', '.join(PROFILES)} or give profile=Profile(request=…, first=…, end=…)"
                )
            profile = PROFILES[operation]
        super().__init__(services=[legacy, candidate], strategy_type=MigrationStrategy)
        self.strategy.switcher = self
        self.route = Route.of(call, operation, context, first_frame_timeout)
        self.profile = profile
        self._pending: deque[_Request] = deque()
        """Requests sent to the active service and not answered yet, oldest first."""
        self._interruptions: deque[int] = deque(maxlen=16)
        self._tenant: str | None = None

    # the side -------------------------------------------------------------------------

    def _decide(self) -> str:
        router = self.route.handle._router
        cfg = router.config(self.route.operation)
        with self.route.bound():
            decision, self._tenant = router._decide(cfg, self.route._context())
        return decision.side.value

    def _activate(self, side: str) -> None:
        s = self.strategy
        s._active_service = s.candidate if side == "candidate" else s.legacy

    def _limit(self) -> float | None:
        cfg = self.route.handle._router.config(self.route.operation)
        if self.route.first_chunk_timeout is not None:
            return self.route.first_chunk_timeout
        return cfg.first_chunk_timeout if cfg.first_chunk_timeout is not None else cfg.timeout

    # frames in ------------------------------------------------------------------------

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, StartFrame):
            self._activate(self._decide())
        elif direction is FrameDirection.DOWNSTREAM and isinstance(frame, self.profile.request):
            self._begin(frame)
        await super().process_frame(frame, direction)

    def _begin(self, frame: Frame) -> None:
        s = self.strategy
        if s.active_service is s.candidate and self._decide() != "candidate":
            self._activate("legacy")  # the kill switch, at the call's next request
        request = _Request(s.side_of(s.active_service), frame)
        self._pending.append(request)
        if len(self._pending) == 1:
            self._watch(request)

    def _watch(self, request: _Request) -> None:
        """The candidate's request at the head of the queue: its first-frame deadline."""
        limit = self._limit()
        if request.side == "candidate" and limit is not None:
            request.started = _perf()
            loop = asyncio.get_running_loop()
            request.watch = loop.call_later(limit, self._stalled, request, limit)

    def _stalled(self, request: _Request, limit: float) -> None:
        if self._pending and self._pending[0] is request and request.first_ms is None:
            self.create_task(
                self._fall_back(TimeoutError(f"no first frame within {limit} s")),
                name="switchover-fallback",
            )

    # frames out -----------------------------------------------------------------------

    @staticmethod
    def _make_pipeline_definitions(services: list[FrameProcessor], strategy: Any) -> list[Any]:
        """Each branch as Pipecat builds it, with a tap after the service."""
        out = []
        for service in services:
            definition = list(ServiceSwitcher._make_pipeline_definition(service, strategy))
            definition.insert(2, _Tap(service, strategy))
            out.append(definition)
        return out

    def _output(self, service: FrameProcessor, frame: Frame) -> list[Frame]:
        """What goes on downstream for a frame the service pushed (none: a side let go,
        or held until the candidate's first frame)."""
        p = self.profile
        if service is not self.strategy.active_service:  # a late answer of a side let go
            if frame.id in self._interruptions or isinstance(
                frame, (DataFrame, *p.opening, *p.first, *p.end)
            ):
                return []
            return [frame]
        if not self._pending:
            return [frame]
        request = self._pending[0]
        if request.first_ms is None:
            if request.side == "candidate" and isinstance(frame, p.opening):
                request.held.append(frame)
                return []
            if isinstance(frame, p.first):
                request.first_ms = (_perf() - request.started) * 1000.0
                if request.watch is not None:
                    request.watch.cancel()
                held, request.held = request.held, []
                return [*held, frame]
        elif isinstance(frame, p.end):
            self._pending.popleft()
            self._record(request, ok=True)
            if self._pending:
                self._watch(self._pending[0])
        return [frame]

    def _record(self, request: _Request, ok: bool, error: BaseException | None = None) -> None:
        router = self.route.handle._router
        cfg = router.config(self.route.operation)
        if request.side == "candidate":
            if ok:
                router._candidate_ok(cfg)
            else:
                router._candidate_failed(cfg, self.route.operation)
        router._record(
            self.route.operation,
            request.side,
            (_perf() - request.started) * 1000.0,
            ok,
            None if error is None else _error_type(error),
            tenant=self._tenant,
            first_chunk_ms=request.first_ms,
        )

    # the candidate's failures ---------------------------------------------------------

    async def _candidate_error(self, error: ErrorFrame) -> FrameProcessor | None:
        if not self._pending or self._pending[0].side != "candidate":
            return None
        request = self._pending[0]
        if request.first_ms is not None:  # after the first frame: Pipecat's own handling
            self._pending.popleft()
            self._record(request, ok=False, error=RuntimeError(error.error))
            return None
        return await self._fall_back(RuntimeError(error.error))

    async def _fall_back(self, exc: BaseException) -> FrameProcessor | None:
        """The head request failed on the candidate before its first frame: legacy
        answers it and every request queued behind it, and serves the rest of the call."""
        if not self._pending or self._pending[0].side != "candidate":
            return None
        request = self._pending[0]
        if request.first_ms is not None:
            return None
        if request.watch is not None:
            request.watch.cancel()
        router = self.route.handle._router
        candidate_ms = (_perf() - request.started) * 1000.0
        router._candidate_failed(router.config(self.route.operation), self.route.operation)
        router._record_fallback(
            self.route.operation, self.route._context(), self._tenant, exc, candidate_ms, None, None
        )
        s = self.strategy
        self._activate("legacy")
        stop = InterruptionFrame()
        self._interruptions.append(stop.id)
        await s.candidate.queue_frame(stop)  # stop what it was doing
        frames = [r.frame for r in self._pending]
        self._pending.clear()
        for frame in frames:
            await self.queue_frame(frame, FrameDirection.DOWNSTREAM)
        return s.legacy


def _error_type(exc: BaseException) -> str:
    return "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__


class _Tap(FrameProcessor):
    """After a service in its branch: tells the switcher what the service pushed."""

    def __init__(self, service: FrameProcessor, strategy: Any) -> None:
        super().__init__(name=f"{service.name}::switchover", enable_direct_mode=True)
        self._service = service
        self._strategy = strategy

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction is not FrameDirection.DOWNSTREAM:
            await self.push_frame(frame, direction)
            return
        for out in self._strategy.switcher._output(self._service, frame):
            await self.push_frame(out, direction)

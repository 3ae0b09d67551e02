"""What the framework drop-ins share (``switchover.livekit``, ``switchover.pipecat``):
which call they route for, and the input a fallback replays.

A drop-in routes through a :class:`~switchover.sdk.pin.PinnedCall` (``m.call(room, ctx)``:
one side for the whole call, the kill switch still winning) or a migration handle and a
context (one decision per operation). LiveKit and Pipecat run every stream in a task of
their own, so the call's pin is bound in that task's context, not in the caller's
``with`` block.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from switchover.core.decision import Decision
from switchover.sdk.pin import PINS, PinnedCall


@dataclass(frozen=True)
class Route:
    """One operation of one migration, for one call (``call``) or per decision (``handle``)."""

    handle: Any
    operation: str
    call: PinnedCall | None = None
    context: Mapping[str, Any] | Callable[[], Mapping[str, Any] | None] | None = None
    first_chunk_timeout: float | None = None

    @classmethod
    def of(
        cls,
        call: Any,
        operation: str,
        context: Mapping[str, Any] | Callable[[], Mapping[str, Any] | None] | None,
        first_chunk_timeout: float | None,
    ) -> Route:
        """``call`` is ``m.call(call_id, ctx)`` or the migration handle ``m`` itself."""
        if isinstance(call, PinnedCall):
            if context is not None:
                raise ValueError("give a pinned call or a context, not both: the call has one")
            return cls(call._handle, operation, call, None, first_chunk_timeout)
        if not hasattr(call, "route_stream"):
            raise TypeError(
                f"call must be m.call(call_id, context) or a migration handle, got "
                f"{type(call).__name__}"
            )
        return cls(call, operation, None, context, first_chunk_timeout)

    def _context(self) -> Mapping[str, Any] | None:
        if self.call is not None:
            return self.call.pin.context
        return self.context() if callable(self.context) else self.context

    def decide(self) -> Decision:
        """The side this operation's next request goes to (no circuit, no recording)."""
        feature = self.handle._router.config(self.operation).feature
        if self.call is not None:
            return self.call.decide(feature)
        return self.handle.decide(feature, self._context())

    @contextlib.contextmanager
    def bound(self) -> Iterator[None]:
        """The call's pin, in the current task's context, for the duration of the block."""
        if self.call is None:
            yield
            return
        pins = dict(PINS.get() or {})
        pins[self.handle.name] = self.call.pin
        token = PINS.set(pins)
        try:
            yield
        finally:
            with contextlib.suppress(ValueError):  # finalised in another context
                PINS.reset(token)

    async def stream(self, legacy: Any, candidate: Any) -> AsyncIterator[Any]:
        """``route_stream`` of the two sides' async generator functions, pinned."""
        with self.bound():
            chunks = self.handle.route_stream(
                self.operation,
                self._context(),
                legacy=legacy,
                candidate=candidate,
                first_chunk_timeout=self.first_chunk_timeout,
            )
            try:
                async for chunk in chunks:
                    yield chunk
            finally:
                await chunks.aclose()

    async def call_once(self, legacy: Any, candidate: Any) -> Any:
        """``route`` of two coroutine functions, pinned (non-streaming requests)."""
        with self.bound():
            return await self.handle.route(
                self.operation, self._context(), legacy=legacy, candidate=candidate
            )


class Replay:
    """Input pushed into a drop-in (audio frames, text, flush marks), kept so that a side
    that takes over after the candidate failed gets all of it from the start.

    Once a side gave its first chunk (:meth:`settle`), nothing more is kept for a later
    side: what the serving side has read is dropped, so a long call holds no audio.
    """

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._offset = 0
        self._closed = False
        self._kept = True
        self._changed = asyncio.Event()

    def push(self, item: Any) -> None:
        self._items.append(item)
        self._changed.set()

    def close(self) -> None:
        self._closed = True
        self._changed.set()

    def settle(self) -> None:
        self._kept = False

    async def __aiter__(self) -> AsyncIterator[Any]:
        index = self._offset
        while True:
            if index - self._offset < len(self._items):
                item = self._items[index - self._offset]
                index += 1
                if not self._kept:
                    drop = index - self._offset
                    del self._items[:drop]
                    self._offset += drop
                yield item
                continue
            if self._closed:
                return
            self._changed.clear()
            await self._changed.wait()

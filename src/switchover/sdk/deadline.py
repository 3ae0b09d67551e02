"""Cheap per-call timeouts for the router's hot path.

``asyncio.timeout`` schedules and cancels a timer-heap entry per call, which costs
several microseconds. The router's candidate calls usually finish long before their
timeout, so one watchdog per event loop does the waiting instead: a call registers
its task and deadline in a dict (and removes it when done); a single timer, armed
only while calls are registered, wakes at most every ``resolution`` seconds and
cancels the tasks that are overdue, which the call turns into ``TimeoutError``
exactly as ``asyncio.timeout`` does. A deadline fires up to ``resolution`` late.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

RESOLUTION = 0.005


class _Watchdog:
    __slots__ = ("armed", "entries", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # weak: the registry below is keyed weakly by the loop, so the value must not
        # keep its key alive
        self.loop = weakref.ref(loop)
        self.entries: dict[int, list[Any]] = {}
        self.armed = False

    def arm(self) -> None:
        loop = self.loop()
        if not self.armed and loop is not None:
            self.armed = True
            loop.call_later(RESOLUTION, self.tick)

    def tick(self) -> None:
        self.armed = False
        loop = self.loop()
        if not self.entries or loop is None:
            return
        now = loop.time()
        for entry in list(self.entries.values()):
            if not entry[2] and entry[1] <= now:
                entry[2] = True
                entry[0].cancel()
        self.arm()


_watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watchdog] = (
    weakref.WeakKeyDictionary()
)


class Deadline:
    """``async with Deadline(seconds):`` like ``asyncio.timeout``, for hot paths."""

    __slots__ = ("_cancelling", "_entry", "_seconds", "_watchdog")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    async def __aenter__(self) -> Deadline:
        loop = asyncio.get_running_loop()
        watchdog = _watchdogs.get(loop)
        if watchdog is None:
            watchdog = _watchdogs[loop] = _Watchdog(loop)
        task = asyncio.current_task(loop)
        if task is None:  # pragma: no cover - not inside a task
            raise RuntimeError("Deadline must be used inside a task")
        self._cancelling = task.cancelling()
        self._entry = entry = [task, loop.time() + self._seconds, False]
        self._watchdog = watchdog
        watchdog.entries[id(entry)] = entry
        watchdog.arm()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        entry = self._entry
        self._watchdog.entries.pop(id(entry), None)
        if entry[2]:
            task = entry[0]
            # like asyncio.timeout: only our own cancellation becomes a timeout
            if exc_type is asyncio.CancelledError and task.uncancel() <= self._cancelling:
                raise TimeoutError(f"timed out after {self._seconds} s") from exc
        return None

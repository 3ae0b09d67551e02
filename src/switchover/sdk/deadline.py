"""Cheap per-call timeouts for the router's hot path.

``asyncio.timeout`` schedules and cancels a timer-heap entry per call, and its
``async with`` protocol creates two coroutines, which together cost microseconds.
The router's candidate calls usually finish long before their timeout, so one
watchdog per event loop does the waiting instead: :func:`start` registers the task and
its deadline in a dict, :func:`finish` removes it; a single timer, armed only while
calls are registered, wakes every ``RESOLUTION`` seconds and cancels the overdue
tasks. :func:`finish` tells whether the cancellation was the deadline's (then the
caller raises ``TimeoutError``, as ``asyncio.timeout`` does) or came from outside
(then it propagates). A deadline fires up to ``RESOLUTION`` late.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

RESOLUTION = 0.005

# an entry: [task, deadline, fired, cancelling-at-start, registered]
Entry = list[Any]


class _Watchdog:
    __slots__ = ("__weakref__", "armed", "entries", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # weak: the registry is keyed weakly by the loop; the value must not keep it alive
        self.loop = weakref.ref(loop)
        self.entries: dict[int, Entry] = {}
        self.armed = False

    def arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.armed:
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
        self.arm(loop)


_watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watchdog] = (
    weakref.WeakKeyDictionary()
)
_last: list[Any] = [None, None]  # weakref to the last loop seen, and its watchdog


def start(seconds: float) -> Entry:
    """Register the current task for cancellation ``seconds`` from now."""
    loop = asyncio.get_running_loop()
    ref = _last[0]
    if ref is not None and ref() is loop:
        watchdog = _last[1]
    else:
        watchdog = _watchdogs.get(loop)
        if watchdog is None:
            watchdog = _watchdogs[loop] = _Watchdog(loop)
        _last[0], _last[1] = weakref.ref(loop), watchdog
    task = asyncio.current_task(loop)
    if task is None:  # pragma: no cover - the router always runs inside a task
        raise RuntimeError("a deadline needs a running task")
    entry: Entry = [task, loop.time() + seconds, False, task.cancelling(), watchdog]
    watchdog.entries[id(entry)] = entry
    watchdog.arm(loop)
    return entry


def finish(entry: Entry) -> bool:
    """Unregister; True when the deadline fired and its cancellation is to become a timeout."""
    watchdog = entry[4]
    if watchdog is None:
        return False
    entry[4] = None
    watchdog.entries.pop(id(entry), None)
    if entry[2]:
        # like asyncio.timeout: only our own cancellation becomes a timeout
        return entry[0].uncancel() <= entry[3]
    return False

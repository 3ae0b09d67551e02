"""How many calls run at once: MAX_CONCURRENCY slots, refuse or queue beyond, drain.

Thread-safe and loop-agnostic, like the config cache: LiveKit runs each job on a thread
of its own with its own event loop. A queued job waits on a ``concurrent.futures.Future``
that a finishing job hands its slot to, first come first served.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from switchover.core.dispatch import DispatchRefused, Refusal

T = TypeVar("T")


@dataclass
class RuntimeStats:
    active: int = 0
    peak_active: int = 0
    queued: int = 0
    max_queue_depth: int = 0
    started: int = 0
    completed: int = 0
    failed: int = 0
    refused: int = 0
    cancelled: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DrainResult:
    finished: int
    cancelled: int
    seconds: float


class WorkerRuntime:
    def __init__(
        self,
        max_concurrency: int = 25,
        *,
        overflow: str = "refuse",
        max_queue_depth: int = 50,
        queue_timeout: float = 30.0,
    ) -> None:
        self.max_concurrency = max_concurrency
        self.overflow = overflow
        self.max_queue_depth = max_queue_depth
        self.queue_timeout = queue_timeout
        self.stats = RuntimeStats()
        self._lock = threading.Lock()
        self._waiters: deque[concurrent.futures.Future[bool]] = deque()
        self._running: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = {}
        self._idle = threading.Event()
        self._idle.set()
        self.draining = False

    def load(self) -> float:
        """Active jobs over MAX_CONCURRENCY, 0 to 1: LiveKit's ``load_fnc``."""
        return min(1.0, self.stats.active / self.max_concurrency)

    async def _acquire(self) -> None:
        with self._lock:
            if self.draining:
                self.stats.refused += 1
                raise DispatchRefused(
                    Refusal.DRAINING, "the worker is shutting down and takes no new calls"
                )
            if self.stats.active < self.max_concurrency:
                self._take()
                return
            if self.overflow != "queue" or len(self._waiters) >= self.max_queue_depth:
                self.stats.refused += 1
                raise DispatchRefused(
                    Refusal.AT_CAPACITY,
                    f"all {self.max_concurrency} slots are busy (MAX_CONCURRENCY)"
                    + ("" if self.overflow != "queue" else " and the queue is full"),
                )
            waiter: concurrent.futures.Future[bool] = concurrent.futures.Future()
            self._waiters.append(waiter)
            self.stats.queued = len(self._waiters)
            self.stats.max_queue_depth = max(self.stats.max_queue_depth, self.stats.queued)
        try:
            await asyncio.wait_for(asyncio.wrap_future(waiter), self.queue_timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            with self._lock:
                handed = waiter.done() and not waiter.cancelled() and waiter.exception() is None
                if handed:
                    self._release_locked()  # the slot arrived as we gave up: pass it on
                elif waiter in self._waiters:
                    self._waiters.remove(waiter)
                self.stats.queued = len(self._waiters)
                if isinstance(exc, TimeoutError):
                    self.stats.refused += 1
            if isinstance(exc, TimeoutError):
                raise DispatchRefused(
                    Refusal.AT_CAPACITY,
                    f"no slot became free within {self.queue_timeout:g} s (QUEUE_TIMEOUT)",
                ) from None
            raise
        except DispatchRefused:
            with self._lock:
                self.stats.refused += 1
            raise

    def _take(self) -> None:
        self.stats.active += 1
        self.stats.started += 1
        self.stats.peak_active = max(self.stats.peak_active, self.stats.active)
        self._idle.clear()

    def _release_locked(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            self.stats.queued = len(self._waiters)
            if not waiter.done():
                self.stats.started += 1  # the slot passes on: active stays the same
                waiter.set_result(True)
                return
        self.stats.active -= 1
        if self.stats.active == 0:
            self._idle.set()

    async def run(self, job: Callable[[], Awaitable[T]]) -> T:
        """Run one job in a slot: refused at capacity (or queued), counted either way."""
        await self._acquire()
        task = asyncio.current_task()
        key = id(task)
        if task is not None:
            with self._lock:
                self._running[key] = (asyncio.get_running_loop(), task)
        try:
            result = await job()
        except asyncio.CancelledError:
            with self._lock:
                self.stats.cancelled += 1
            raise
        except BaseException:
            with self._lock:
                self.stats.failed += 1
            raise
        else:
            with self._lock:
                self.stats.completed += 1
            return result
        finally:
            with self._lock:
                self._running.pop(key, None)
                self._release_locked()

    async def drain(self, timeout: float) -> DrainResult:
        """Stop taking calls, let running ones finish for up to ``timeout`` s, cancel the rest."""
        started = time.monotonic()
        with self._lock:
            self.draining = True
            waiters = list(self._waiters)
            self._waiters.clear()
            self.stats.queued = 0
            before = self.stats.completed + self.stats.failed
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(
                    DispatchRefused(Refusal.DRAINING, "the worker is shutting down")
                )
        await asyncio.to_thread(self._idle.wait, timeout)
        with self._lock:
            leftover = list(self._running.values())
        for loop, task in leftover:
            loop.call_soon_threadsafe(task.cancel)
        if leftover:
            await asyncio.to_thread(self._idle.wait, 5.0)
        with self._lock:
            finished = self.stats.completed + self.stats.failed - before
        return DrainResult(finished, len(leftover), time.monotonic() - started)

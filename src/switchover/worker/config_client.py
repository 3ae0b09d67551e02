"""The worker's runtime-config cache: TTL, single-flight, stale-if-error, keys from env.

- TTL: a config is reused for ``ttl`` seconds (``CONFIG_CACHE_TTL``, default 300).
- Single-flight: however many jobs start at once for one agent, one fetch is made; the
  others wait for it (counted as ``coalesced``).
- Stale-if-error: when the control plane cannot be reached (or answers 5xx), the last
  config keeps serving up to ``max_staleness`` seconds after it was fetched (counted as
  ``stale_served``); for ``error_backoff`` seconds after a failure, no new fetch is tried,
  so a dead backend does not slow every call start. A 404 or 400 (unknown or inactive
  agent) is never papered over: the entry is dropped and the call refused.
- Keys the agent has not got are filled from the worker's environment
  (``OPENAI_API_KEY``, ``CARTESIA_API_KEY``, ``LIVEKIT_API_KEY``…).

Thread-safe and loop-agnostic: LiveKit runs each job on a thread with its own event loop,
and they all share one cache. Fetches are plain functions run on a worker thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from switchover.core.agents import with_env_keys
from switchover.core.clock import Clock, SystemClock


class ConfigUnavailable(Exception):
    """The control plane could not be asked (transport error, 5xx, timeout); ``code`` is
    its error code when it answered one (``secret_key``: it cannot decrypt the keys)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class ConfigRejected(Exception):
    """The control plane refused: unknown agent or campaign (404), inactive (400), auth."""

    def __init__(self, status: int, code: str, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.reason = reason


Fetch = Callable[[str, str | None], dict[str, Any]]
"""``fetch(agent_id, campaign_id) -> config``; raises ConfigUnavailable or ConfigRejected."""


@dataclass
class _Entry:
    value: dict[str, Any]
    fetched_at: float
    retry_after: float = 0.0


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    fetches: int = 0
    coalesced: int = 0
    fetch_errors: int = 0
    stale_served: int = 0
    rejected: int = 0
    env_fallbacks: int = 0
    fetch_ms_total: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        looked = self.hits + self.misses
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": round(self.hits / looked, 4) if looked else None,
            "fetches": self.fetches,
            "coalesced": self.coalesced,
            "fetch_errors": self.fetch_errors,
            "stale_served": self.stale_served,
            "rejected": self.rejected,
            "env_fallbacks": self.env_fallbacks,
            "avg_fetch_ms": round(self.fetch_ms_total / self.fetches, 3) if self.fetches else None,
        }


@dataclass(frozen=True)
class ResolvedConfig:
    config: dict[str, Any]
    """The runtime config with missing keys filled from the environment."""
    source: str
    """``cache``, ``fetch`` or ``stale``."""
    elapsed_ms: float
    """How long this call waited for its config."""
    age_s: float
    key_sources: Mapping[str, str] = field(default_factory=dict)
    """Per key: ``agent``, ``env:VAR`` or ``missing`` (never a value)."""


class ConfigClient:
    def __init__(
        self,
        fetch: Fetch,
        *,
        ttl: float = 300.0,
        max_staleness: float = 3600.0,
        error_backoff: float = 5.0,
        env: Mapping[str, str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._fetch = fetch
        self.ttl = ttl
        self.max_staleness = max_staleness
        self.error_backoff = error_backoff
        self.env = dict(env or {})
        self._clock = clock or SystemClock()
        self._entries: dict[tuple[str, str | None], _Entry] = {}
        self._inflight: dict[tuple[str, str | None], concurrent.futures.Future[_Entry]] = {}
        self._lock = threading.RLock()
        self.stats = CacheStats()

    async def get(self, agent_id: str, campaign_id: str | None = None) -> ResolvedConfig:
        started = time.perf_counter()
        key = (agent_id, campaign_id)
        now = self._clock.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry.fetched_at < self.ttl:
                self.stats.hits += 1
                return self._resolved(entry, "cache", started, now)
            if entry is not None and now < entry.retry_after:
                self.stats.misses += 1
                self.stats.stale_served += 1
                return self._resolved(entry, "stale", started, now)
            self.stats.misses += 1
            future = self._inflight.get(key)
            leader = future is None
            if leader:
                future = self._inflight[key] = concurrent.futures.Future()
            else:
                self.stats.coalesced += 1
        assert future is not None
        if leader:
            await self._lead(key, future)
        try:
            fresh = await asyncio.wrap_future(future)
        except ConfigUnavailable:
            stale = self._stale(key)
            if stale is None:
                raise
            return self._resolved(stale, "stale", started, self._clock.monotonic())
        return self._resolved(fresh, "fetch", started, self._clock.monotonic())

    async def _lead(
        self, key: tuple[str, str | None], future: concurrent.futures.Future[_Entry]
    ) -> None:
        t0 = time.perf_counter()
        try:
            value = await asyncio.to_thread(self._fetch, *key)
        except ConfigRejected as exc:
            with self._lock:
                self.stats.fetches += 1
                self.stats.rejected += 1
                self._entries.pop(key, None)
                self._inflight.pop(key, None)
            future.set_exception(exc)
            return
        except Exception as exc:
            with self._lock:
                self.stats.fetches += 1
                self.stats.fetch_errors += 1
                entry = self._entries.get(key)
                if entry is not None:
                    entry.retry_after = self._clock.monotonic() + self.error_backoff
                self._inflight.pop(key, None)
            future.set_exception(
                exc
                if isinstance(exc, ConfigUnavailable)
                else ConfigUnavailable(f"{type(exc).__name__}: {exc}")
            )
            return
        entry = _Entry(value, self._clock.monotonic())
        with self._lock:
            self.stats.fetches += 1
            self.stats.fetch_ms_total += (time.perf_counter() - t0) * 1000.0
            self._entries[key] = entry
            self._inflight.pop(key, None)
        future.set_result(entry)

    def _stale(self, key: tuple[str, str | None]) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self._clock.monotonic() - entry.fetched_at > self.max_staleness:
                return None
            self.stats.stale_served += 1
            return entry

    def _resolved(self, entry: _Entry, source: str, started: float, now: float) -> ResolvedConfig:
        config, sources = with_env_keys(entry.value, self.env)
        filled = sum(1 for s in sources.values() if s.startswith("env:"))
        if filled:
            with self._lock:
                self.stats.env_fallbacks += filled
        return ResolvedConfig(
            config=config,
            source=source,
            elapsed_ms=(time.perf_counter() - started) * 1000.0,
            age_s=max(0.0, now - entry.fetched_at),
            key_sources=sources,
        )

    def invalidate(self, agent_id: str | None = None) -> None:
        with self._lock:
            for key in [k for k in self._entries if agent_id is None or k[0] == agent_id]:
                del self._entries[key]

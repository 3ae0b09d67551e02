"""Bearer tokens on every request but the health check, with a short verification cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable

from fastapi import Request

from switchover.access import Principal, TokenService, hash_token
from switchover.core.access import Role


class TokenCache:
    """Remembers verified tokens for ``ttl`` seconds: a revocation takes effect within it."""

    def __init__(self, tokens: TokenService, ttl: float = 5.0, size: int = 1024) -> None:
        self.tokens = tokens
        self.ttl = ttl
        self.size = size
        self._seen: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def principal(self, token: str | None) -> Principal:
        key = hash_token(token) if token else ""
        now = time.monotonic()
        hit = self._seen.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        principal = self.tokens.authenticate(token)
        with self._lock:
            if len(self._seen) >= self.size:
                self._seen.clear()
            self._seen[key] = (principal, now + self.ttl)
        return principal

    def forget(self) -> None:
        with self._lock:
            self._seen.clear()


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def requires(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    async def dependency(request: Request) -> Principal:
        # async so that a cached token is checked on the event loop, not in a thread
        cache: TokenCache = request.app.state.token_cache
        principal = cache.principal(bearer(request))
        principal.require(role)
        return principal

    dependency.__name__ = f"requires_{role.value}"
    return dependency

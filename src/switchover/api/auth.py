"""Bearer tokens on every request but the health check, with a short verification cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from switchover.access import Principal, TokenService, hash_token
from switchover.core.access import Role
from switchover.errors import AuthError, StoreError


class TokenCache:
    """Remembers verified tokens for ``ttl`` seconds: a revocation takes effect within it.

    A check that needs the store waits at most ``wait`` seconds for it. If the store is
    down or hangs, a token verified within ``stale_ttl`` keeps working (the check goes on
    in the background and its answer replaces the old one), so the server goes on
    deciding from its snapshot for the callers it knows, and refuses only those it never
    verified.
    """

    def __init__(
        self,
        tokens: TokenService,
        ttl: float = 5.0,
        size: int = 1024,
        stale_ttl: float = 3600.0,
        wait: float = 1.0,
    ) -> None:
        self.tokens = tokens
        self.ttl = ttl
        self.size = size
        self.stale_ttl = stale_ttl
        self.wait = wait
        self._seen: dict[str, tuple[Principal, float]] = {}
        self._checking: dict[str, Future[Principal]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="switchover-token-check")
        self.degraded = False
        """True while the last token check could not reach the store."""

    def cached(self, token: str | None) -> Principal | None:
        """A fresh verification of ``token`` from memory, or ``None``: no I/O."""
        hit = self._seen.get(hash_token(token) if token else "")
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        return None

    def principal(self, token: str | None) -> Principal:
        key = hash_token(token) if token else ""
        now = time.monotonic()
        hit = self._seen.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        check = self._check(key, token)
        try:
            return check.result(timeout=self.wait)
        except (StoreError, FutureTimeout) as exc:
            self.degraded = True
            if hit is not None and hit[1] - self.ttl + self.stale_ttl > now:
                return hit[0]
            if isinstance(exc, StoreError):
                raise
            raise StoreError(
                "the store does not answer, and this token was not verified before it "
                "stopped: retry when the store is back"
            ) from None

    def _check(self, key: str, token: str | None) -> Future[Principal]:
        with self._lock:
            running = self._checking.get(key)
            if running is None:
                running = self._pool.submit(self._verify, key, token)
                self._checking[key] = running
            return running

    def _verify(self, key: str, token: str | None) -> Principal:
        try:
            principal = self.tokens.authenticate(token)
        except AuthError:
            self.degraded = False  # the store answered: the token is just not valid
            with self._lock:
                self._seen.pop(key, None)
            raise
        finally:
            with self._lock:
                self._checking.pop(key, None)
        self.degraded = False
        with self._lock:
            if len(self._seen) >= self.size:
                self._seen.clear()
            self._seen[key] = (principal, time.monotonic() + self.ttl)
        return principal

    def forget(self) -> None:
        with self._lock:
            self._seen.clear()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token: 'switchover token create NAME --role viewer|worker|"
    "operator|admin'. Sent as 'Authorization: Bearer <token>'.",
)


def requires(role: Role) -> Callable[..., Awaitable[Principal]]:
    async def dependency(
        request: Request, _: HTTPAuthorizationCredentials | None = Depends(BEARER)
    ) -> Principal:
        # a token verified a moment ago is checked on the event loop; one that needs the
        # store is checked in a thread, so a slow database never stalls the loop
        cache: TokenCache = request.app.state.token_cache
        token = bearer(request)
        principal = cache.cached(token)
        if principal is None:
            principal = await run_in_threadpool(cache.principal, token)
        principal.require(role)
        return principal

    dependency.__name__ = f"requires_{role.value}"
    return dependency

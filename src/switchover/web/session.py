"""Who is looking at the dashboard: a bearer header, else the session cookie.

The cookie holds an API token (the same tokens as the HTTP API, stored hashed), is
HttpOnly and SameSite=Strict, and changes additionally need the ``HX-Request`` header
that only the dashboard's own scripts send: a page on another site can neither read
the cookie nor make a change with it.
"""

from __future__ import annotations

import secrets
import threading
import time

from fastapi import Request

from switchover.access import Principal
from switchover.api.auth import TokenCache, bearer
from switchover.core.access import Role
from switchover.errors import ForbiddenError

COOKIE = "switchover_session"
COOKIE_MAX_AGE = 7 * 24 * 3600


def token_of(request: Request) -> str | None:
    return bearer(request) or request.cookies.get(COOKIE) or None


def principal(request: Request) -> Principal:
    """The caller, or AuthError; viewer is the least any dashboard page needs."""
    cache: TokenCache = request.app.state.token_cache
    who = cache.principal(token_of(request))
    who.require(Role.VIEWER)
    return who


def operator(request: Request) -> Principal:
    """The caller for a change: an operator token, sent by the dashboard itself."""
    who = principal(request)
    who.require(Role.OPERATOR)
    if bearer(request) is None and request.headers.get("hx-request") != "true":
        raise ForbiddenError(
            "changes from the dashboard are sent by its own page (HX-Request header); "
            "scripts use the HTTP API with 'Authorization: Bearer <token>'",
            field="token",
        )
    return who


def can_operate(who: Principal) -> bool:
    return who.role.allows(Role.OPERATOR)


class LoginCodes:
    """One-time sign-in codes for the link ``serve`` prints on a first run.

    The link carries a random code, not the token: once used (or after ``ttl``) the
    code is dead, so a terminal's scrollback or a shared log never holds a live secret.
    """

    def __init__(self, ttl: float = 3600.0) -> None:
        self.ttl = ttl
        self._codes: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def issue(self, token: str) -> str:
        code = secrets.token_urlsafe(18)
        with self._lock:
            self._codes[code] = (token, time.monotonic() + self.ttl)
        return code

    def redeem(self, code: str) -> str | None:
        with self._lock:
            found = self._codes.pop(code, None)
        if found is None or found[1] < time.monotonic():
            return None
        return found[0]

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
from urllib.parse import urlsplit

from fastapi import Request, Response

from switchover.access import Principal
from switchover.api.auth import TokenCache, bearer
from switchover.core.access import Role
from switchover.errors import ForbiddenError

COOKIE = "switchover_session"
COOKIE_MAX_AGE = 7 * 24 * 3600
CSRF_COOKIE = "switchover_login_csrf"
CSRF_MAX_AGE = 3600


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def set_csrf_cookie(response: Response, value: str, *, secure: bool) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        value,
        max_age=CSRF_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/login",
    )


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def cross_site_refusal(request: Request, csrf: str) -> str | None:
    """Why a sign-in form must be refused, or ``None``: login CSRF is a page elsewhere
    signing the victim's browser in as the attacker.

    The form must come from this server's own page: its ``Origin`` (or, where a
    browser sends none, its ``Referer``) names this server, and it carries the value
    the sign-in page put both in the form and in a strict cookie, which a page on
    another site can neither read nor make the browser send.
    """
    own = {f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}".lower()}
    forwarded = request.headers.get("x-forwarded-host")
    if forwarded:  # behind a reverse proxy the browser names the public address
        scheme = request.headers.get("x-forwarded-proto", request.url.scheme)
        own.add(f"{scheme}://{forwarded.split(',')[0].strip()}".lower())
    claimed = request.headers.get("origin")
    if claimed is None or claimed == "null":
        referer = request.headers.get("referer")
        claimed = _origin_of(referer) if referer else claimed
    if claimed is not None and (claimed == "null" or claimed.lower() not in own):
        return "this sign-in form was sent from another site; sign in from this server's own page"
    if request.headers.get("sec-fetch-site") == "cross-site":
        return "this sign-in form was sent from another site; sign in from this server's own page"
    expected = request.cookies.get(CSRF_COOKIE) or ""
    if not csrf or not expected or not secrets.compare_digest(csrf, expected):
        return "the sign-in form expired or did not come from this server: reload it and try again"
    return None


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

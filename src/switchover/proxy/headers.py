"""Header handling of a forwarding proxy (RFC 9110 §7.6).

Hop-by-hop fields (``Connection``, the fields it names, ``Keep-Alive``,
``Proxy-Connection``, ``TE``, ``Transfer-Encoding``, ``Upgrade``) describe one
connection and are not forwarded (§7.6.1); ``Via`` is added (§7.6.3). The upstream's
``Host`` is its own; the caller's goes in ``X-Forwarded-Host``.
"""

from __future__ import annotations

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"trailer",
    }
)
VIA = (b"via", b"1.1 switchover")
Headers = list[tuple[bytes, bytes]]


def _connection_named(headers: Headers) -> frozenset[bytes]:
    named: set[bytes] = set()
    for key, value in headers:
        if key == b"connection":
            named.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return frozenset(named)


def _end_to_end(headers: Headers, drop: frozenset[bytes]) -> Headers:
    named = _connection_named(headers)
    return [
        (k, v)
        for k, v in headers
        if k not in HOP_BY_HOP and k not in drop and (not named or k not in named)
    ]


def request_headers(
    headers: Headers, client: tuple[str, int] | None, scheme: str, drop: frozenset[bytes]
) -> Headers:
    """The caller's headers as an upstream gets them (``drop``: also left out)."""
    out = _end_to_end(headers, drop | {b"host", b"x-forwarded-for"})
    forwarded_for = b""
    host = b""
    for k, v in headers:
        if k == b"x-forwarded-for":
            forwarded_for = v
        elif k == b"host":
            host = v
    if client is not None:
        ip = client[0].encode()
        forwarded_for = forwarded_for + b", " + ip if forwarded_for else ip
    if forwarded_for:
        out.append((b"x-forwarded-for", forwarded_for))
    if host and not any(k == b"x-forwarded-host" for k, _ in out):
        out.append((b"x-forwarded-host", host))
    if not any(k == b"x-forwarded-proto" for k, _ in out):
        out.append((b"x-forwarded-proto", scheme.encode()))
    out.append(VIA)
    return out


def response_headers(headers: Headers, drop: frozenset[bytes]) -> Headers:
    """An upstream's response headers as the caller gets them."""
    out = _end_to_end(headers, drop)
    out.append(VIA)
    return out

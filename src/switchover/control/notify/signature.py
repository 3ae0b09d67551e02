"""How a receiver knows a webhook came from us: HMAC-SHA256 over timestamp and body.

Each request carries ``X-Switchover-Event``, ``X-Switchover-Timestamp`` (unix seconds) and,
when the target has a secret, ``X-Switchover-Signature: sha256=<hex>`` over
``f"{timestamp}."`` + body (the Stripe/Slack scheme; receivers check it with :func:`verify`
and reject stale timestamps to stop replays). ``X-Switchover-Delivery`` stays the same
across the retries of one delivery so a receiver can drop duplicates.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Switchover-Signature"
TIMESTAMP_HEADER = "X-Switchover-Timestamp"
EVENT_HEADER = "X-Switchover-Event"
DELIVERY_HEADER = "X-Switchover-Delivery"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``f"{timestamp}."`` + body, keyed by ``secret``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance: float | None = None,
    now: float | None = None,
) -> bool:
    """Whether ``signature`` is ours for this timestamp and body (constant-time compare).

    With ``tolerance`` (seconds), a timestamp further than that from ``now`` (default: the
    current time) is rejected too, which stops replays of a captured request.
    """
    if not isinstance(signature, str) or not isinstance(timestamp, str):
        return False
    if tolerance is not None:
        try:
            sent_at = int(timestamp)
        except ValueError:
            return False
        current = time.time() if now is None else now
        if abs(current - sent_at) > tolerance:
            return False
    expected = sign(secret, timestamp, body).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))

"""The inbound webhook signature: an HMAC of the raw body, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac

from switchover.proxy.config import Signature

_DIGESTS = {"sha256": hashlib.sha256, "sha1": hashlib.sha1, "sha512": hashlib.sha512}


def expected(sig: Signature, body: bytes) -> bytes:
    """The digest a sender holding the secret writes, encoded as the scheme says."""
    mac = hmac.new(sig.secret, body, _DIGESTS[sig.algorithm]).digest()
    return mac.hex().encode() if sig.encoding == "hex" else base64.b64encode(mac)


def verify(sig: Signature, body: bytes, value: str | None) -> bool:
    """True when ``value`` (the header, with or without the prefix) signs ``body``."""
    if not value:
        return False
    value = value.strip()
    prefix = sig.prefix
    if prefix and value[: len(prefix)].lower() == prefix.lower():
        value = value[len(prefix) :]
    given = value.encode("latin-1", "replace")
    if sig.encoding == "hex":
        given = given.lower()
    return hmac.compare_digest(expected(sig, body), given)

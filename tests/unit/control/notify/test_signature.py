"""The signature scheme a receiver checks: HMAC-SHA256 over ``timestamp.body``."""

from __future__ import annotations

import hashlib
import hmac

from switchover.control.notify import sign, verify

SECRET = "whsec-0123456789abcdef"
BODY = b'{"text":"hi"}'


def test_sign_is_the_documented_hmac_so_any_language_can_check_it() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, "1700000000", BODY) == f"sha256={expected}"


def test_verify_needs_the_secret_the_timestamp_and_the_exact_body() -> None:
    sig = sign(SECRET, "1700000000", BODY)
    assert verify(SECRET, "1700000000", BODY, sig)
    assert not verify("wrong", "1700000000", BODY, sig)
    assert not verify(SECRET, "1700000001", BODY, sig)
    assert not verify(SECRET, "1700000000", BODY + b" ", sig)
    assert not verify(SECRET, "1700000000", BODY, sig.upper())


def test_verify_rejects_stale_and_malformed_timestamps_and_non_strings() -> None:
    sig = sign(SECRET, "1700000000", BODY)
    assert verify(SECRET, "1700000000", BODY, sig, tolerance=300, now=1_700_000_299)
    assert not verify(SECRET, "1700000000", BODY, sig, tolerance=300, now=1_700_000_301)
    assert not verify(SECRET, "1700000000", BODY, sig, tolerance=300, now=1_699_999_699)
    assert not verify(SECRET, "soon", BODY, sign(SECRET, "soon", BODY), tolerance=300)
    assert not verify(SECRET, "1700000000", BODY, None)  # type: ignore[arg-type]

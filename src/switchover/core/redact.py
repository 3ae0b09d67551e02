"""Redaction of secrets and PII from anything switchover logs or stores as a sample.

Seed 001 asks for PII redaction: phone numbers, e-mail addresses and API keys are
replaced by a marker naming what was there. Mapping keys that name a secret
(``api_key``, ``token``, ``password``, …) have their whole value replaced.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_KEY = re.compile(
    r"\b(?:sk|pk|rk|swo|xox[abpr]|ghp|gho|AKIA|AIza|key|tok)[-_A-Za-z0-9]{12,}\b"
    r"|\bBearer\s+[-._~+/A-Za-z0-9]+=*"
    r"|\beyJ[-_A-Za-z0-9]+\.[-_A-Za-z0-9]+\.[-_A-Za-z0-9]+"
)
_PHONE = re.compile(r"(?<![\w])\+?\d[\d\s().-]{7,}\d(?![\w])")
_SECRET_KEYS = re.compile(
    r"(?i)(secret|token|password|passwd|api[_-]?key|authorization|credential)"
)

MAX_SAMPLE_CHARS = 4000


def redact_text(text: str) -> str:
    text = _KEY.sub("[REDACTED:key]", text)
    text = _EMAIL.sub("[REDACTED:email]", text)
    return _PHONE.sub(_phone, text)


def _phone(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match.group(0))
    return "[REDACTED:phone]" if digits >= 8 else match.group(0)


def redact(value: Any, *, limit: int = MAX_SAMPLE_CHARS, _depth: int = 0) -> Any:
    """A JSON-ready copy of ``value`` with secrets and PII replaced and long text cut."""
    if _depth > 8:
        return "[…]"
    if isinstance(value, str):
        out = redact_text(value)
        return out if len(out) <= limit else out[:limit] + f"…[{len(out) - limit} more]"
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, Mapping):
        return {
            str(k): "[REDACTED:secret]"
            if _SECRET_KEYS.search(str(k))
            else redact(v, limit=limit, _depth=_depth + 1)
            for k, v in list(value.items())[:100]
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, limit=limit, _depth=_depth + 1) for v in list(value)[:100]]
    return redact(repr(value), limit=limit, _depth=_depth + 1)

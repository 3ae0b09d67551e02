"""What the proxy records of a request: the status class, the outcome header, and the
comparison of a shadowed answer with legacy's."""

from __future__ import annotations

import math
from typing import Any

import orjson

from switchover.core.compare import equal
from switchover.core.observation import MAX_OUTCOMES, is_name

STATUS_CLASSES = {1: "status.1xx", 2: "status.2xx", 3: "status.3xx", 4: "status.4xx"}
STATUS_CLASSES[5] = "status.5xx"


def status_class(status: int) -> str:
    return STATUS_CLASSES.get(status // 100, "status.5xx")


def outcome(status: int, header: str | None) -> dict[str, float]:
    """The status class counter plus what the service wrote in the outcome header.

    The header is ``name=value`` pairs separated by ``,`` or ``;`` (``booked=1,
    routing_failure=0``); a bare name counts 1. A pair that is not a valid name and a
    finite number is left out: a service's typo never fails the caller's request."""
    counters = {status_class(status): 1.0}
    if not header:
        return counters
    for part in header.replace(";", ",").split(","):
        name, sep, raw = part.partition("=")
        name = name.strip()
        if not is_name(name) or len(counters) >= MAX_OUTCOMES:
            continue
        try:
            value = float(raw.strip()) if sep else 1.0
        except ValueError:
            continue
        if math.isfinite(value) and abs(value) <= 1e12:
            counters[name] = value
    return counters


def body_value(body: bytes, truncated: bool) -> Any:
    """An answer's body as compared and sampled: its JSON, else its text."""
    if truncated:
        return {"truncated_bytes": len(body)}
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", "replace")


def same_answer(legacy: tuple[int, Any], candidate: tuple[int, Any]) -> bool:
    """Same status and the same JSON body (or the same text)."""
    return legacy[0] == candidate[0] and equal(legacy[1], candidate[1])

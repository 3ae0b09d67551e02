"""Durations as people write them: ``90s``, ``15m``, ``2h``, ``7d``."""

from __future__ import annotations

import re
from datetime import timedelta

from switchover.errors import ValidationError

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_WINDOW = timedelta(days=31)


def parse_duration(text: str, field: str = "window") -> timedelta:
    match = _DURATION.match(text or "")
    if match is None:
        raise ValidationError(
            f"{field} {text!r} is not a duration: write a number and a unit, "
            "for example 90s, 15m, 2h or 7d",
            field=field,
        )
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValidationError(f"{field} must be longer than zero", field=field)
    if seconds > MAX_WINDOW.total_seconds():
        raise ValidationError(f"{field} may be at most 31d", field=field)
    return timedelta(seconds=seconds)

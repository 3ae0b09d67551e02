"""Call outcomes inferred from a call's status and duration (seed 003: "Outcomes: inferred").

The rules, first match wins:

1. an outcome already in :data:`OUTCOMES` (any case, ``-`` or ``_``) is kept, normalised;
2. status ``failed``/``error`` → ``failed``;
3. status ``no-answer``/``busy``/``canceled`` → ``no_answer``;
4. status ``voicemail`` → ``voicemail``; status ``transferred`` → ``transferred``;
5. a duration that is not a finite number (NaN, infinity: a broken record) → ``failed``;
6. no duration or a duration of 0 s → ``no_answer``;
7. under :data:`ABANDONED_BELOW` seconds → ``abandoned``;
8. otherwise ``completed``.
"""

from __future__ import annotations

import math

OUTCOMES = ("completed", "abandoned", "no_answer", "voicemail", "transferred", "failed")
ABANDONED_BELOW = 15.0

_STATUS = {
    "failed": "failed",
    "error": "failed",
    "no_answer": "no_answer",
    "busy": "no_answer",
    "canceled": "no_answer",
    "cancelled": "no_answer",
    "voicemail": "voicemail",
    "transferred": "transferred",
}


def _norm(value: str | None) -> str:
    return (value or "").strip().lower().replace("-", "_").replace(" ", "_")


def is_canonical(outcome: str | None) -> bool:
    return outcome in OUTCOMES


def infer_outcome(status: str | None, duration_seconds: float | None, outcome: str | None) -> str:
    known = _norm(outcome)
    if known in OUTCOMES:
        return known
    by_status = _STATUS.get(_norm(status))
    if by_status is not None:
        return by_status
    if duration_seconds is not None and not math.isfinite(duration_seconds):
        return "failed"
    if duration_seconds is None or duration_seconds <= 0:
        return "no_answer"
    if duration_seconds < ABANDONED_BELOW:
        return "abandoned"
    return "completed"


def p95(values: list[float]) -> float | None:
    """Nearest-rank 95th percentile: the smallest value with at least 95 % at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = -(-95 * len(ordered) // 100)  # ceil(0.95 n), exact in integers
    return ordered[max(rank, 1) - 1]

"""Scores recorded per call (a 1-5 rating, a judge's grade), kept as outcome counters.

A score is not a share of calls: its gate reads a mean. Each score ``NAME`` a call
carries becomes three outcome counters of that call, which rollups sum and merge exactly
like any other outcome:

- ``score.NAME.n``: 1, the call was scored;
- ``score.NAME.sum``: the score;
- ``score.NAME.sq``: its square.

From the three sums, :func:`score_stats` gives the number of scored calls, their mean
and standard deviation: what ``score.csat >= 4.5`` and ``score_drop.csat <= 0.2`` test.
Calls without a score leave the counters alone, so a mean is over scored calls only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from switchover.errors import ValidationError

PREFIX = "score."
MAX_SCORE = 1e6
"""A score's absolute value is at most this: its square stays within an outcome value's
limit (1e12)."""
MAX_SCORES = 8
"""Scores a call may carry: each takes three of the call's outcome counters."""
SCORE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,49}$")
SCORE_NAME_RULE = "1-50 letters, digits, '_' or '-', starting with a letter or '_'"


def counter_names(name: str) -> tuple[str, str, str]:
    """The outcome counters of score ``name``: scored calls, sum, sum of squares."""
    return (f"{PREFIX}{name}.n", f"{PREFIX}{name}.sum", f"{PREFIX}{name}.sq")


def validate_scores(scores: Any, field_name: str = "scores") -> dict[str, float]:
    """``{"csat": 4}`` checked: names, finite values within :data:`MAX_SCORE`."""
    if scores is None:
        return {}
    if not isinstance(scores, Mapping):
        raise ValidationError(
            f'{field_name} must be an object of score names to numbers, for example {{"csat": 4}}',
            field=field_name,
        )
    if len(scores) > MAX_SCORES:
        raise ValidationError(
            f"{field_name} has {len(scores)} scores; at most {MAX_SCORES} a call",
            field=field_name,
        )
    clean: dict[str, float] = {}
    for name, value in scores.items():
        if not isinstance(name, str) or not SCORE_NAME.match(name):
            raise ValidationError(
                f"{field_name}: {str(name)[:60]!r} is not a score name; use {SCORE_NAME_RULE}",
                field=field_name,
            )
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or abs(value) > MAX_SCORE
        ):
            raise ValidationError(
                f"{field_name}: score {name!r} must be a finite number with |value| <= "
                f"{MAX_SCORE:g}, got {str(value)[:60]!r}",
                field=field_name,
            )
        clean[name] = float(value)
    return clean


def score_counters(scores: Mapping[str, float]) -> dict[str, float]:
    """Validated scores as the outcome counters one call adds."""
    out: dict[str, float] = {}
    for name, value in scores.items():
        n, total, squares = counter_names(name)
        out[n] = 1.0
        out[total] = value
        out[squares] = value * value
    return out


@dataclass(frozen=True, slots=True)
class ScoreStats:
    n: int
    """Scored calls."""
    mean: float | None
    sd: float
    """The sample's standard deviation (0 with fewer than two scores)."""


def score_stats(outcomes: Mapping[str, float], name: str) -> ScoreStats:
    """Scored calls, mean and standard deviation of score ``name`` from summed counters."""
    n_name, sum_name, sq_name = counter_names(name)
    n = max(0, round(outcomes.get(n_name, 0.0)))
    if n == 0:
        return ScoreStats(0, None, 0.0)
    total, squares = outcomes.get(sum_name, 0.0), outcomes.get(sq_name, 0.0)
    mean = total / n
    variance = (squares - n * mean * mean) / (n - 1) if n > 1 else 0.0
    return ScoreStats(n, mean, math.sqrt(max(0.0, variance)))

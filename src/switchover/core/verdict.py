"""What a judgement says: the checks it made, their severity, and the action it takes.

Frozen values, serialised by ``to_dict`` into the JSON the store keeps with each verdict
(the CLI, the API and the dashboard read it back): fields are added, never renamed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from switchover.core.plan import GateAction


class Action(StrEnum):
    START = "start"
    CONTINUE = "continue"
    ADVANCE = "advance"
    COMPLETE = "complete"
    HOLD = "hold"
    ROLLBACK_PARTIAL = "rollback_partial"
    ROLLBACK_TOTAL = "rollback_total"


class Severity(StrEnum):
    """Seed 001's decision matrix levels; P0 is the most severe."""

    P0 = "P0"
    """Immediate total rollback: percentage 0, master switch off."""
    P1 = "P1"
    """Back to the previous phase."""
    P2 = "P2"
    """Hold and alert."""
    P3 = "P3"
    """Monitor: continue, advance or complete on the gates."""

    @property
    def rank(self) -> int:
        """0 for P0 ... 3 for P3."""
        return int(self.value[1])


def most_severe(*levels: Severity) -> Severity:
    return min(levels, key=lambda s: s.rank, default=Severity.P3)


GATE_SEVERITY = {
    GateAction.ABORT: Severity.P0,
    GateAction.ROLLBACK: Severity.P1,
    GateAction.HOLD: Severity.P2,
}
"""The level a failed gate or guardrail raises the verdict to, by its ``action``."""


class Result(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class Classification(StrEnum):
    """Kayenta's words for one metric, candidate against legacy (or a threshold)."""

    PASS = "pass"
    HIGH = "high"
    LOW = "low"
    NODATA = "nodata"


class Scope(StrEnum):
    GATE = "gate"
    GUARDRAIL = "guardrail"
    MATRIX = "matrix"
    METRIC = "metric"


PHASE = "phase"
"""A check on the evidence since the phase began."""
RECENT = "recent"
"""A check on a window that ends now and began after the phase (a change, a spike)."""


@dataclass(frozen=True, slots=True)
class Check:
    """One gate, guardrail, matrix row or metric, judged on one span of minutes."""

    name: str
    scope: Scope
    window: str
    """:data:`PHASE` or :data:`RECENT`."""
    result: Result
    classification: Classification
    candidate: float | None
    """The candidate's pooled value the decision used (a rate, a latency in ms)."""
    legacy: float | None
    """Legacy's pooled value on the same span (or its baseline), for relative checks."""
    effect: float | None
    p_value: float | None
    """Always valid, adjusted for every look, test and window: fail iff <= alpha."""
    samples: tuple[int, int]
    """(candidate calls, legacy calls)."""
    reason: str
    action: GateAction | None = GateAction.ROLLBACK
    """What failing does; None for the informational metric table."""
    span: tuple[int, int] = (0, 0)
    """The minutes read, [from, to)."""
    method: str = ""
    """The test, in a few words."""
    log_e: float | None = None
    """The log e-value (the evidence against the limit); None when not computed."""
    threshold: float | None = None
    """The log e-value this check needed to fail."""
    bound: float | None = None
    """The confidence bound compared with the limit, when the test compares bounds."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scope": self.scope.value,
            "window": self.window,
            "result": self.result.value,
            "classification": self.classification.value,
            "candidate": _finite(self.candidate),
            "legacy": _finite(self.legacy),
            "effect": _finite(self.effect),
            "p_value": self.p_value,
            "samples": {"candidate": self.samples[0], "legacy": self.samples[1]},
            "reason": self.reason,
            "action": self.action.value if self.action is not None else "none",
            "span": {"from_minute": self.span[0], "to_minute": self.span[1]},
            "method": self.method,
            "log_e": _finite(self.log_e),
            "threshold": _finite(self.threshold),
            "bound": _finite(self.bound),
        }


def _finite(x: float | None) -> float | str | None:
    """JSON has no infinity (PostgreSQL refuses it): a rate over a zero rate is "inf"."""
    if x is None or math.isfinite(x):
        return x
    if math.isnan(x):
        return None
    return "inf" if x > 0 else "-inf"


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    severity: Severity
    phase_index: int
    target_index: int | None
    """The phase the action moves to: -1 means before the first (0 %, features off)."""
    reasons: tuple[str, ...]
    checks: tuple[Check, ...] = ()
    metrics: tuple[Check, ...] = ()
    window: tuple[int, int] = (0, 0)
    """The gates' span, in minutes since the epoch [first, end): since the phase began."""
    awaiting_approval: bool = False

    def summary(self) -> str:
        return self.reasons[0] if self.reasons else self.action.value

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "severity": self.severity.value,
            "phase_index": self.phase_index,
            "target_index": self.target_index,
            "reasons": list(self.reasons),
            "checks": [c.to_dict() for c in self.checks],
            "metrics": [c.to_dict() for c in self.metrics],
            "window": {"from_minute": self.window[0], "to_minute": self.window[1]},
            "awaiting_approval": self.awaiting_approval,
        }


CHANGING = frozenset(
    {Action.START, Action.ADVANCE, Action.COMPLETE, Action.ROLLBACK_PARTIAL, Action.ROLLBACK_TOTAL}
)
"""The actions that change the migration's percentage, features or switch."""


def held_for_operator(verdict: Verdict, why: str) -> Verdict:
    """The operator wins: a verdict that would change a migration an operator killed or
    whose plan they paused becomes a ``hold`` that says what it would have done (its
    severity kept, so a P0 still alerts). Other verdicts are returned as they are."""
    if verdict.action not in CHANGING:
        return verdict
    would = f"would have been {verdict.action.value}: {verdict.summary()}"
    return replace(
        verdict,
        action=Action.HOLD,
        target_index=None,
        reasons=(f"{why}; the controller changes nothing ({would})", *verdict.reasons[1:]),
    )


def human_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 86400:
        d, rest = divmod(seconds, 86400)
        return f"{d}d {rest // 3600}h" if rest >= 3600 else f"{d}d"
    if seconds >= 3600:
        h, rest = divmod(seconds, 3600)
        return f"{h}h {rest // 60}m" if rest >= 60 else f"{h}h"
    if seconds >= 60:
        return f"{seconds // 60}m"
    return f"{seconds}s"

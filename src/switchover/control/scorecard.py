"""A migration's scorecard: the controller's judgement of now, read without acting on it.

The dashboard, the report and the API show an operator, at a glance, whether the
candidate is worse than legacy. That answer must be the controller's own, so the
scorecard is built from the same parts: an :class:`~switchover.control.evidence.EvidenceCache`
fed exactly as :meth:`Controller.tick` feeds its own, and
:meth:`Controller.verdict_for`, which runs :func:`switchover.core.judge.judge`. Each
guardrail and gate row is one of the verdict's checks. The decision matrix's rows (the
verdict names only those shown exceeded) are judged by
:func:`switchover.core.judge.guardrail_check` on the same gathered pools and looks as
:func:`~switchover.core.judge.run_checks` uses, so a row the verdict names as exceeded
fails here too.

Health is then read from those checks, never from the plan's status: ``worse`` when a
check fails, ``not enough data`` when one is inconclusive, ``no worse`` when all pass.

Read only: nothing is written, no lock is taken. One cache per server process, guarded
by a lock (the cache is not thread-safe).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from switchover.control.controller import Controller, horizon_minutes
from switchover.control.evidence import EvidenceCache
from switchover.core.checks import matrix_gates
from switchover.core.clock import Clock
from switchover.core.evidence import as_evidence
from switchover.core.judge import gather, guardrail_check, looks
from switchover.core.plan import Gate
from switchover.core.plan_state import PlanState
from switchover.core.rollup import minute_of
from switchover.core.verdict import Check, Result, Scope, Severity, Verdict
from switchover.store.ports import Repository

WORSE = "worse"
NO_WORSE = "no worse"
NOT_ENOUGH = "not enough data"
NOT_JUDGED = "not judged"
"""No plan, or no phase running: nothing to compare yet."""

RESULT_WORDS = {
    Result.PASS: "pass",
    Result.FAIL: "fail",
    Result.INCONCLUSIVE: NOT_ENOUGH,
}


@dataclass(frozen=True, slots=True)
class MatrixRow:
    level: Severity
    check: Check
    gate: Gate


@dataclass(frozen=True, slots=True)
class Scorecard:
    migration: str
    at: datetime
    health: str
    """:data:`WORSE`, :data:`NO_WORSE`, :data:`NOT_ENOUGH` or :data:`NOT_JUDGED`."""
    verdict: Verdict | None
    """What the controller would decide now (None without a running phase)."""
    checks: tuple[Check, ...] = ()
    """Every guardrail, then every gate of the phase: the verdict's own checks."""
    matrix: tuple[MatrixRow, ...] = ()
    """Every decision-matrix row, most severe first."""
    gates: tuple[Gate | None, ...] = ()
    """The plan's gate behind each of :attr:`checks`, in the same order (None for a
    check no gate of the plan wrote, such as the sample ratio)."""
    phase: str | None = None
    next_judgement_s: float | None = None
    last_verdict: dict[str, Any] | None = None
    why: str = ""
    """One sentence behind the health word."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.result is Result.FAIL] + [
            r.check for r in self.matrix if r.check.result is Result.FAIL
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "migration": self.migration,
            "at": self.at.isoformat(),
            "health": self.health,
            "why": self.why,
            "phase": self.phase,
            "verdict": None if self.verdict is None else self.verdict.to_dict(),
            "checks": [c.to_dict() for c in self.checks],
            "matrix": [{"level": r.level.value, **r.check.to_dict()} for r in self.matrix],
            "gates": [None if g is None else g.to_dict() for g in self.gates],
            "next_judgement_s": self.next_judgement_s,
            "last_verdict": self.last_verdict,
        }


def health_of(checks: tuple[Check, ...], matrix: tuple[MatrixRow, ...]) -> tuple[str, str]:
    """The health word and why, from the checks alone."""
    every = [*checks, *(r.check for r in matrix)]
    failed = [c for c in every if c.result is Result.FAIL]
    if failed:
        return WORSE, "; ".join(c.name for c in failed) + " failed"
    unsure = [c for c in every if c.result is Result.INCONCLUSIVE]
    if unsure:
        return NOT_ENOUGH, f"{len(unsure)} check(s) without enough evidence yet"
    if not every:
        return NOT_JUDGED, "the phase has no checks"
    return NO_WORSE, f"all {len(every)} checks pass"


def next_judgement(state: PlanState, now: float) -> float | None:
    """Seconds until the controller's next interval begins (it judges then)."""
    if not state.active:
        return None
    interval = state.plan.interval
    return max(0.0, (math.floor(now / interval) + 1) * interval - now)


class ScorecardService:
    """Scorecards of one store, from one evidence cache kept across calls."""

    def __init__(self, store: Repository, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.cache = EvidenceCache(store)
        self.controller = Controller(store, clock, cache=self.cache, env={})
        self._lock = threading.Lock()

    def scorecard(
        self, state: PlanState | None, name: str, last: dict[str, Any] | None = None
    ) -> Scorecard:
        """The scorecard of migration ``name`` whose plan is ``state`` (None: no plan)."""
        now = self.clock.now()
        if state is None:
            return Scorecard(name, now, NOT_JUDGED, None, why="no plan", last_verdict=last)
        nxt = next_judgement(state, now.timestamp())
        if state.phase_index < 0:
            return Scorecard(
                name,
                now,
                NOT_JUDGED,
                None,
                why="no phase is running",
                next_judgement_s=nxt,
                last_verdict=last,
            )
        with self._lock:
            self._feed(state)
            verdict = self.controller.verdict_for(state)
            matrix = self._matrix(state)
        checks = tuple(c for c in verdict.checks if c.scope is not Scope.MATRIX)
        plan = state.plan
        by_text = {g.text: g for g in (*plan.guardrails, *plan.phases[state.phase_index].gates)}
        gates = tuple(by_text.get(c.name) for c in checks)
        word, why = health_of(checks, matrix)
        return Scorecard(
            name,
            now,
            word,
            verdict,
            checks,
            matrix,
            gates,
            phase=state.phase_name,
            next_judgement_s=nxt,
            last_verdict=last,
            why=why,
        )

    def _feed(self, state: PlanState) -> None:
        """What :meth:`Controller.tick` does before judging: keep the minutes the plan's
        windows read, load the migration once, then follow the rollups table."""
        self.cache.horizon = max(self.cache.horizon, horizon_minutes(state.plan))
        now_minute = minute_of(self.clock.now().timestamp())
        self.cache.track([state.migration], now_minute)
        self.cache.refresh(now_minute)

    def _matrix(self, state: PlanState) -> tuple[MatrixRow, ...]:
        plan = state.plan
        s = self.controller.situation_for(state)
        g = gather(s, as_evidence(self.cache.evidence(state.migration)))
        at = looks(s, g.spans).scoped(Scope.MATRIX)
        return tuple(
            MatrixRow(level, guardrail_check(plan, g, gate, at), gate)
            for level, gate in matrix_gates(plan.matrix, plan.operation)
        )

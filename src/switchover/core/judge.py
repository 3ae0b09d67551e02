"""The controller's judgement of one interval: a short sequence of named steps.

Pure: the plan, where the rollout stands and the evidence go in, a :class:`Verdict` comes
out. The steps, each a function tested on its own:

1. :func:`spans`: the minutes read. The evidence since the phase began, and windows
   that end now (``recent``, doubled until ``window``) for a change in mid-phase.
2. :func:`budget`: what each test must reach to fail, so that every look, test and
   window of the plan together fail a healthy candidate with a chance of at most
   ``1 - confidence`` (:class:`~switchover.core.sequential.Budget`).
3. :func:`gather`: each side's pooled evidence per span and operation
   (:mod:`switchover.core.evidence`); at 100 % legacy's baseline before the phase.
4. :func:`run_checks`: the decision matrix (seed 001) and every guardrail and gate
   (:mod:`switchover.core.checks`).
5. :func:`severity_of`: P0 to P3 from the matrix and the failed checks' actions.
6. :func:`decide`: the action: P0 total rollback, P1 back one phase, P2 hold, and at P3
   wait for the minimum duration, then advance when every gate and guardrail passes,
   hold when one is inconclusive, wait when the next phase needs approval.

"Worse" always means shown worse by an always-valid test at the plan's ``confidence``;
no test fails on fewer than ``min_samples`` calls; an inconclusive phase never advances.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from switchover.core.checks import (
    MATRIX_TESTS,
    SRM_NAME,
    WINDOWED_KINDS,
    Look,
    check_gate,
    check_matrix,
    check_rollbacks,
    check_sample_ratio,
    compare_metrics,
    may_fail,
)
from switchover.core.evidence import (
    CANDIDATE,
    LEGACY,
    Evidence,
    MinuteReader,
    MinuteStats,
    Pool,
    as_evidence,
    minute_stats,
    nested,
)
from switchover.core.plan import Gate, Plan
from switchover.core.sequential import Budget
from switchover.core.verdict import (
    GATE_SEVERITY,
    PHASE,
    RECENT,
    Action,
    Check,
    Classification,
    Result,
    Scope,
    Severity,
    Verdict,
    human_duration,
    most_severe,
)

__all__ = [
    "Action",
    "Check",
    "Checked",
    "Classification",
    "Decision",
    "Evidence",
    "Looks",
    "MinuteStats",
    "Pool",
    "Result",
    "Severity",
    "Situation",
    "Spans",
    "Verdict",
    "budget",
    "decide",
    "gather",
    "human_duration",
    "judge",
    "looked_at",
    "looks",
    "minute_stats",
    "minutes_by_side",
    "run_checks",
    "severity_of",
    "spans",
    "window_lengths",
]


@dataclass(frozen=True, slots=True)
class Situation:
    """Where a rollout stands when it is judged."""

    plan: Plan
    phase_index: int
    """-1 before the first phase."""
    phase_started: float
    """When the current phase (or the last rollback) began, seconds since the epoch."""
    now: float
    status: str = "running"
    """``running``, ``paused`` or ``rolled_back``: only ``running`` advances."""
    approved: bool = False
    """An operator approved entering the next phase."""
    rollbacks: int = 0
    """Rollbacks (partial or total, the controller's and operators') since the plan was
    applied: what a ``rollbacks <= 2`` gate reads."""
    share_known: bool = False
    """The candidate's share of calls should be the migration's percentage (the
    controller says so unless tenant overrides send some callers to a side of their own,
    or the migration is killed): the sample ratio guardrail then judges it."""
    percentage: int | None = None
    """The migration's percentage now (None: the phase's)."""
    changed_at: float | None = None
    """When the migration last changed (its percentage may have): the sample ratio
    guardrail reads calls from after it."""


# --- 1. spans ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spans:
    phase: tuple[int, int]
    """[first whole minute of the phase, the minute in progress included)."""
    windows: tuple[tuple[int, int], ...]
    """Windows ending with the minute in progress that began after the guardrails' span
    did, shortest first."""
    baseline: tuple[int, int]
    """Legacy's last ``window`` before the phase: what a 100 % phase compares with."""
    guard: tuple[int, int] = (0, 0)
    """What guardrails and the decision matrix read: from the minute the phase began in
    (its calls before the change were the candidate's too, judged by no phase yet), to
    the minute in progress. After a rollback, from the next whole minute, as the gates:
    the calls that caused it are not judged twice."""
    ratio: tuple[int, int] = (0, 0)
    """What the sample ratio guardrail reads: the phase from its second whole minute (the
    minutes before mix the old percentage with the new while every process learns it)."""


def window_lengths(plan: Plan) -> list[int]:
    """``recent``, doubled while shorter than ``window``, then ``window`` (minutes)."""
    longest = max(1, int(plan.window // 60))
    length = max(1, int(plan.recent // 60))
    out = []
    while length < longest:
        out.append(length)
        length *= 2
    out.append(longest)
    return out


def spans(s: Situation) -> Spans:
    """Every span ends with the minute in progress (``now`` is already ``settle`` seconds
    behind the clock): a failure in a phase's last minute is judged before it advances,
    and rows that arrive later for that minute are merged into the running pools."""
    end = -(-int(s.now) // 60)  # the minute in progress, when one is
    start = min(end, -(-int(s.phase_started) // 60))
    guard_start = start
    if s.status != "rolled_back":
        guard_start = min(start, int(s.phase_started // 60))
    windows = tuple((end - n, end) for n in window_lengths(s.plan) if end - n > guard_start)
    ratio_start = start
    if s.changed_at is not None:
        ratio_start = max(start, -(-int(s.changed_at) // 60))
    return Spans(
        (start, end),
        windows,
        (start - max(1, int(s.plan.window // 60)), start),
        (guard_start, end),
        (min(end, ratio_start + SRM_SETTLE_MINUTES), end),
    )


SRM_SETTLE_MINUTES = 1
"""Whole minutes of a phase the sample ratio guardrail leaves out after its first
partial one: processes learn a new percentage within seconds, not at once."""


def srm_applies(plan: Plan, index: int) -> bool:
    """The sample ratio guardrail is on and the phase splits traffic (not 0 or 100 %)."""
    return plan.srm and 0 < plan.phases[index].percentage < 100


# --- 2. budget --------------------------------------------------------------------------------


def budget(plan: Plan, index: int) -> Budget:
    """The phase's share of the plan's ``1 - confidence``, as log e-value thresholds."""
    phase = plan.phases[index]
    gates = (*plan.guardrails, *phase.gates)
    # a rollback count is no test: it spends none of the budget
    tests = sum(1 for g in gates if g.kind != "rollbacks") + MATRIX_TESTS
    return Budget(plan.alpha, tests, len(plan.phases), plan.planned_minutes(index))


# --- 3. gather --------------------------------------------------------------------------------


@dataclass(slots=True)
class Sides:
    candidate: Pool
    legacy: Pool
    baseline: bool = False
    """``legacy`` is the baseline from before a 100 % phase."""


@dataclass(slots=True)
class Gathered:
    """Pools read once per span and operation, on demand."""

    evidence: Evidence
    spans: Spans
    full: bool
    """A 100 % phase: legacy serves (almost) nothing, its baseline stands in."""
    min_samples: int
    _phase: dict[tuple[str | None, tuple[int, int]], Sides] = field(default_factory=dict)
    _windows: dict[str | None, list[Sides]] = field(default_factory=dict)
    _baseline: dict[str | None, Pool] = field(default_factory=dict)

    def baseline(self, operation: str | None) -> Pool:
        if operation not in self._baseline:
            b0, b1 = self.spans.baseline
            self._baseline[operation] = self.evidence.pools(b0, b1, operation)[LEGACY]
        return self._baseline[operation]

    def _with_baseline(self, cand: Pool, legacy: Pool, operation: str | None) -> Sides:
        if self.full and legacy.calls < self.min_samples:
            return Sides(cand, self.baseline(operation), baseline=True)
        return Sides(cand, legacy)

    def phase(self, operation: str | None, *, guard: bool = False) -> Sides:
        """Since the phase began; ``guard``: the span guardrails and the matrix read."""
        span = self.spans.guard if guard else self.spans.phase
        key = (operation, span)
        if key not in self._phase:
            pools = self.evidence.pools(span[0], span[1], operation)
            self._phase[key] = self._with_baseline(pools[CANDIDATE], pools[LEGACY], operation)
        return self._phase[key]

    def windows(self, operation: str | None) -> list[Sides]:
        """Pools of :attr:`Spans.windows`, in the same order, from one read of minutes."""
        if operation not in self._windows:
            windows = self.spans.windows
            if not windows:
                self._windows[operation] = []
                return []
            end = windows[0][1]
            first = min(w[0] for w in windows)
            sides = self.evidence.minutes(first, end, operation)
            starts = [w[0] for w in windows]
            cand = nested(sides.get(CANDIDATE, ()), starts, end)
            legacy = nested(sides.get(LEGACY, ()), starts, end)
            self._windows[operation] = [
                self._with_baseline(c, lg, operation) for c, lg in zip(cand, legacy, strict=True)
            ]
        return self._windows[operation]


def gather(s: Situation, evidence: Evidence) -> Gathered:
    phase = s.plan.phases[s.phase_index]
    return Gathered(evidence, spans(s), phase.percentage >= 100, s.plan.min_samples)


# --- 4. checks --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checked:
    matrix: list[tuple[Severity, Check]]
    """The matrix rows shown exceeded, all of the most severe level found."""
    gates: list[Check]
    """Every guardrail, then every gate of the phase, then the sample ratio guardrail."""


@dataclass(frozen=True, slots=True)
class Looks:
    """The span since the phase began and each window, with what each takes to fail."""

    phase: Look
    """For a test also checked on the windows: half its share."""
    phase_only: Look
    """For a test checked only since the phase began: its whole share."""
    windows: tuple[Look, ...]

    def scoped(self, scope: Scope) -> Looks:
        return Looks(
            _scoped(self.phase, scope),
            _scoped(self.phase_only, scope),
            tuple(_scoped(w, scope) for w in self.windows),
        )


def _scoped(look: Look, scope: Scope, baseline: bool = False) -> Look:
    return Look(
        scope, look.window, look.span, look.threshold, look.alpha, look.min_samples, baseline
    )


def looks(s: Situation, sp: Spans) -> Looks:
    plan, b = s.plan, budget(s.plan, s.phase_index)
    first = sp.guard[0]

    def look(window: str, span: tuple[int, int], threshold: float) -> Look:
        return Look(Scope.GUARDRAIL, window, span, threshold, plan.alpha, plan.min_samples)

    return Looks(
        look(PHASE, sp.guard, b.phase(windowed=True)),
        look(PHASE, sp.guard, b.phase()),
        tuple(look(RECENT, w, b.window(w[0] - first)) for w in sp.windows),
    )


def _operation(plan: Plan, gate: Gate) -> str | None:
    return gate.operation if gate.operation is not None else plan.operation


def _as(look: Look, sides: Sides) -> Look:
    return _scoped(look, look.scope, True) if sides.baseline else look


def guardrail_check(plan: Plan, g: Gathered, gate: Gate, at: Looks) -> Check:
    """The evidence since the phase began, then (counted kinds) each window ending now,
    shortest first: the first that fails, else the phase's check."""
    op = _operation(plan, gate)
    sides = g.phase(op, guard=True)
    if gate.kind not in WINDOWED_KINDS:
        return check_gate(gate, sides.candidate, sides.legacy, _as(at.phase_only, sides))
    check = check_gate(gate, sides.candidate, sides.legacy, _as(at.phase, sides))
    if check.result is Result.FAIL:
        return check
    for look, w in zip(at.windows, g.windows(op), strict=True):
        look = _as(look, w)
        if may_fail(gate, w.candidate, w.legacy, look):
            spike = check_gate(gate, w.candidate, w.legacy, look)
            if spike.result is Result.FAIL:
                return spike
    return check


def matrix_rows(plan: Plan, g: Gathered, at: Looks) -> list[tuple[Severity, Check]]:
    """The most severe matrix level any span shows, with its rows."""
    op = plan.operation
    found = check_matrix(plan, g.phase(op, guard=True).candidate, at.phase)
    if found and found[0][0] is Severity.P0:
        return found
    for look, w in zip(at.windows, g.windows(op), strict=True):
        rows = check_matrix(plan, w.candidate, look)
        if rows and (not found or rows[0][0].rank < found[0][0].rank):
            found = rows
    return found


def run_checks(s: Situation, g: Gathered) -> Checked:
    plan, phase = s.plan, s.plan.phases[s.phase_index]
    at = looks(s, g.spans)
    checks = [
        check_rollbacks(gate, s.rollbacks, at.phase_only)
        if gate.kind == "rollbacks"
        else guardrail_check(plan, g, gate, at)
        for gate in plan.guardrails
    ]
    gate_look = Look(
        Scope.GATE, PHASE, g.spans.phase, at.phase_only.threshold, plan.alpha, plan.min_samples
    )
    for gate in phase.gates:
        if gate.kind == "rollbacks":
            checks.append(check_rollbacks(gate, s.rollbacks, gate_look))
            continue
        sides = g.phase(_operation(plan, gate))
        checks.append(check_gate(gate, sides.candidate, sides.legacy, _as(gate_look, sides)))
    splits = s.percentage is None or 0 < s.percentage < 100
    if s.share_known and splits and srm_applies(plan, s.phase_index):
        checks.append(sample_ratio(s, g))
    return Checked(matrix_rows(plan, g, at.scoped(Scope.MATRIX)), checks)


def sample_ratio(s: Situation, g: Gathered) -> Check:
    """The sample ratio guardrail on :attr:`Spans.ratio`, every operation the plan judges.

    It has a budget of its own, the plan's ``1 - confidence`` split over the phases: it
    can only hold, so it takes nothing from the tests that roll back, and a healthy
    rollout is held by it with a chance of at most ``1 - confidence`` too."""
    plan = s.plan
    own = Budget(plan.alpha, 1, len(plan.phases), plan.planned_minutes(s.phase_index))
    look = Look(Scope.GUARDRAIL, PHASE, g.spans.ratio, own.phase(), plan.alpha, plan.min_samples)
    span = g.spans.ratio
    pools = g.evidence.pools(span[0], span[1], s.plan.operation)
    percentage = s.percentage
    if percentage is None:
        percentage = s.plan.phases[s.phase_index].percentage
    expected = percentage / 100.0
    at = Look(look.scope, look.window, span, look.threshold, look.alpha, look.min_samples)
    return check_sample_ratio(pools[CANDIDATE], pools[LEGACY], expected, at)


# --- 5. severity ------------------------------------------------------------------------------


def severity_of(checked: Checked) -> Severity:
    """The matrix's level, raised by each failed check's action (abort P0, rollback P1,
    hold P2)."""
    levels = [level for level, _ in checked.matrix[:1]]
    levels += [
        GATE_SEVERITY[c.action]
        for c in checked.gates
        if c.result is Result.FAIL and c.action is not None
    ]
    return most_severe(*levels)


# --- 6. decide --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    target: int | None
    reasons: tuple[str, ...]
    """Said before the failed checks' reasons."""
    awaiting_approval: bool = False


def decide(s: Situation, severity: Severity, gates: Sequence[Check]) -> Decision:
    plan, idx = s.plan, s.phase_index
    if severity is Severity.P0:
        keep = plan.matrix.p0_keep
        what = (
            f"every feature off but {', '.join(keep)}, which stay on"
            if keep
            else "percentage 0, master switch off"
        )
        return Decision(Action.ROLLBACK_TOTAL, -1, (f"P0: immediate total rollback ({what})",))
    if severity is Severity.P1:
        target = idx - 1
        where = f"phase {plan.phases[target].name!r}" if target >= 0 else "0% (before the plan)"
        return Decision(Action.ROLLBACK_PARTIAL, target, (f"P1: rolling back to {where}",))
    if severity is Severity.P2:
        return Decision(Action.HOLD, None, ("P2: holding and alerting",))
    if s.status != "running":
        return Decision(
            Action.HOLD, None, (f"{s.status}: not advancing; 'switchover resume' to continue",)
        )
    phase = plan.phases[idx]
    elapsed = s.now - s.phase_started
    if elapsed < phase.duration:
        return Decision(
            Action.CONTINUE,
            None,
            (
                f"in {phase.name} ({phase.percentage}%) for "
                f"{human_duration(max(0.0, elapsed))} of {human_duration(phase.duration)}",
            ),
        )
    # the sample ratio guardrail holds when it fails; too few calls to tell is no reason
    inconclusive = [
        c for c in gates if c.result is Result.INCONCLUSIVE and not c.name.startswith(SRM_NAME)
    ]
    if inconclusive:
        return Decision(
            Action.HOLD,
            None,
            (
                f"inconclusive: {len(inconclusive)} gate(s) without enough evidence",
                *(c.reason for c in inconclusive),
            ),
        )
    passed = f"every gate of {phase.name} passed after {human_duration(elapsed)}"
    if idx == len(plan.phases) - 1:
        if elapsed < phase.duration + plan.bake:
            return Decision(
                Action.CONTINUE,
                None,
                (
                    f"{passed}; baking at {phase.percentage}% for "
                    f"{human_duration(elapsed - phase.duration)} of "
                    f"{human_duration(plan.bake)}: guardrails and the decision matrix still "
                    "judge and can roll back",
                ),
            )
        baked = f" and {human_duration(plan.bake)} of baking" if plan.bake else ""
        return Decision(Action.COMPLETE, None, (f"{passed}{baked}: rollout complete",))
    nxt = plan.phases[idx + 1]
    if nxt.requires_approval and not s.approved:
        return Decision(
            Action.HOLD,
            None,
            (
                f"{passed}; waiting for approval to enter {nxt.name!r} "
                f"({nxt.percentage}%): switchover approve",
            ),
            awaiting_approval=True,
        )
    return Decision(
        Action.ADVANCE, idx + 1, (f"{passed}: advancing to {nxt.name} ({nxt.percentage}%)",)
    )


def looked_at(checked: Checked) -> str:
    """What a ``continue`` verdict says it checked: each guardrail and gate with its
    result, and the decision matrix."""
    parts = [f"{c.name} ({c.result.value})" for c in checked.gates]
    parts.append("decision matrix (no row exceeded)" if not checked.matrix else "decision matrix")
    return "looked at: " + "; ".join(parts)


# --- the judgement ----------------------------------------------------------------------------


def start(s: Situation) -> Verdict:
    """Before the first phase: start it, unless stopped or waiting for approval."""
    plan, idx = s.plan, s.phase_index
    first = plan.phases[0]
    if s.status != "running":
        return Verdict(
            Action.HOLD,
            Severity.P3,
            idx,
            None,
            (
                f"{s.status} before the first phase; "
                f"'switchover resume' starts {first.name!r} again",
            ),
        )
    if first.requires_approval and not s.approved:
        return Verdict(
            Action.HOLD,
            Severity.P3,
            idx,
            None,
            (f"waiting for approval to start phase {first.name!r}",),
            awaiting_approval=True,
        )
    return Verdict(
        Action.START,
        Severity.P3,
        idx,
        0,
        (f"plan {plan.name!r} starts: phase {first.name!r} at {first.percentage}%",),
    )


def judge(s: Situation, evidence: Evidence | MinuteReader) -> Verdict:
    if s.phase_index < 0:
        return start(s)
    gathered = gather(s, as_evidence(evidence))
    checked = run_checks(s, gathered)
    severity = severity_of(checked)
    decision = decide(s, severity, checked.gates)
    failed = [c for c in checked.gates if c.result is Result.FAIL]
    reasons = (
        *decision.reasons,
        *(c.reason for _, c in checked.matrix),
        *(c.reason for c in failed),
    )
    if decision.action is Action.CONTINUE:
        reasons = (*reasons, looked_at(checked))
    metrics: tuple[Check, ...] = ()
    if decision.action is not Action.CONTINUE:
        # the per-metric table is kept for verdicts that change or stop something
        sides = gathered.phase(s.plan.operation)
        metrics = tuple(
            compare_metrics(s.plan, sides.candidate, sides.legacy, gathered.spans.phase)
        )
    return Verdict(
        decision.action,
        severity,
        s.phase_index,
        decision.target,
        reasons,
        tuple(c for _, c in checked.matrix) + tuple(checked.gates),
        metrics,
        gathered.spans.phase,
        decision.awaiting_approval,
    )


def minutes_by_side(
    candidate: Sequence[MinuteStats], legacy: Sequence[MinuteStats]
) -> MinuteReader:
    """Evidence from two lists of minutes (every operation alike): for tests and tools."""

    def read(start: int, end: int, operation: str | None) -> Mapping[str, Sequence[MinuteStats]]:
        return {
            CANDIDATE: [m for m in candidate if start <= m.minute < end],
            LEGACY: [m for m in legacy if start <= m.minute < end],
        }

    return read

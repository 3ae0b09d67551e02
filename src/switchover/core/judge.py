"""The controller's judgement of one interval: gates, guardrails, the decision matrix.

Pure: the plan, where the rollout stands and the per-minute evidence go in, a
:class:`Verdict` comes out. "Worse" always means *significantly* worse at the plan's
confidence (98 % by default): a gate fails only when a test says so; a gate passes
only with at least ``min_samples`` calls; anything between is inconclusive, and an
inconclusive phase never advances.

The order of a judgement (seed 001's decision matrix first, as an incident would be):

1. P0: the candidate's error rate or p95 significantly above the P0 row, or a failed
   guardrail whose action is ``abort``: total rollback (percentage 0, master off).
2. P1: above the P1 row, or a failed gate or guardrail (action ``rollback``): back to
   the previous phase.
3. P2: above the P2 row, or a failed ``hold`` guardrail: hold and alert.
4. P3: wait for the minimum duration; then advance when every gate and guardrail
   passes, hold when one is inconclusive, wait when the next phase needs approval.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from switchover.core import stats
from switchover.core.plan import LATENCY_METRICS, RATE_RATIOS, RATIO_METRICS, Gate, Plan
from switchover.core.rollup import Rollup
from switchover.core.sketch import LatencySketch

MIN_POINTS = 5
"""Points each side needs in a per-minute series before Mann-Whitney is asked."""
MIN_POINT_CALLS = 10
"""Calls behind one point of a latency series; sparse minutes are merged until then."""


class Action(StrEnum):
    START = "start"
    CONTINUE = "continue"
    ADVANCE = "advance"
    COMPLETE = "complete"
    HOLD = "hold"
    ROLLBACK_PARTIAL = "rollback_partial"
    ROLLBACK_TOTAL = "rollback_total"


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


@dataclass(slots=True)
class MinuteStats:
    """One minute of one side, with what every test needs computed once."""

    minute: int
    calls: int
    errors: int
    fallbacks: int
    total_failures: int
    p50: float | None
    p95: float | None
    p99: float | None
    outcomes: dict[str, float]
    sketch: LatencySketch
    _above: dict[float, int] = field(default_factory=dict)

    def above(self, threshold: float) -> int:
        cached = self._above.get(threshold)
        if cached is None:
            cached = self._above[threshold] = self.sketch.count_above(threshold)
        return cached

    def quantile(self, metric: str) -> float | None:
        return self.p50 if metric == "p50" else self.p95 if metric == "p95" else self.p99


def minute_stats(minute: int, rollup: Rollup) -> MinuteStats:
    p50, p95, p99 = rollup.sketch.quantiles((0.5, 0.95, 0.99))
    return MinuteStats(
        minute=minute,
        calls=rollup.count,
        errors=rollup.errors,
        fallbacks=rollup.fallbacks,
        total_failures=rollup.total_failures,
        p50=p50,
        p95=p95,
        p99=p99,
        outcomes=dict(rollup.outcomes),
        sketch=rollup.sketch,
    )


class Pool:
    """A side's minutes over a window, summed lazily."""

    __slots__ = ("calls", "errors", "fallbacks", "minutes", "total_failures")

    def __init__(self, minutes: Sequence[MinuteStats]) -> None:
        self.minutes = minutes
        self.calls = sum(m.calls for m in minutes)
        self.errors = sum(m.errors for m in minutes)
        self.fallbacks = sum(m.fallbacks for m in minutes)
        self.total_failures = sum(m.total_failures for m in minutes)

    def count(self, metric: str) -> int:
        if metric == "error_rate":
            return self.errors
        if metric == "fallback_rate":
            return self.fallbacks
        if metric == "total_failure_rate":
            return self.total_failures
        name = metric.split(".", 1)[1]
        total = sum(m.outcomes.get(name, 0.0) for m in self.minutes)
        return min(self.calls, max(0, round(total)))

    def rate(self, metric: str) -> float | None:
        return self.count(metric) / self.calls if self.calls else None

    def above(self, threshold: float) -> int:
        return sum(m.above(threshold) for m in self.minutes)

    def latency_series(self, metric: str) -> list[float]:
        """Per-minute quantiles; minutes with few calls are merged into one point."""
        out: list[float] = []
        pending: LatencySketch | None = None
        for m in self.minutes:
            if m.calls == 0:
                continue
            if pending is None and m.calls >= MIN_POINT_CALLS:
                value = m.quantile(metric)
                if value is not None:
                    out.append(value)
                continue
            if pending is None:
                pending = LatencySketch()
            pending.merge(m.sketch)
            if pending.count >= MIN_POINT_CALLS:
                value = pending.quantile(LATENCY_METRICS[metric])
                if value is not None:
                    out.append(value)
                pending = None
        return out


Evidence = Callable[[int, int, str | None], Mapping[str, Sequence[MinuteStats]]]
"""(first minute, end minute exclusive, operation or None) -> minutes per side."""


@dataclass(frozen=True, slots=True)
class Check:
    """One gate, guardrail, matrix row or metric, judged on one window."""

    name: str
    scope: str
    """``gate``, ``guardrail``, ``matrix`` or ``metric``."""
    window: str
    """``phase`` (the gates' window) or ``recent`` (the spike window)."""
    result: Result
    classification: Classification
    candidate: float | None
    legacy: float | None
    effect: float | None
    p_value: float | None
    samples: tuple[int, int]
    """(candidate calls, legacy calls)."""
    reason: str
    action: str = "rollback"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scope": self.scope,
            "window": self.window,
            "result": self.result.value,
            "classification": self.classification.value,
            "candidate": self.candidate,
            "legacy": self.legacy,
            "effect": _finite(self.effect),
            "p_value": self.p_value,
            "samples": {"candidate": self.samples[0], "legacy": self.samples[1]},
            "reason": self.reason,
            "action": self.action,
        }


def _finite(x: float | None) -> float | str | None:
    """JSON has no infinity (PostgreSQL refuses it): a rate over a zero rate is "inf"."""
    if x is None or math.isfinite(x):
        return x
    return "inf" if x > 0 else "-inf"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.2f}%"


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f} ms"


def _p(x: float | None) -> str:
    return "" if x is None else f", p={x:.3g}"


def _check(
    gate: Gate, scope: str, window: str, result: Result, cls: Classification, **kw: Any
) -> Check:
    return Check(
        name=gate.text,
        scope=scope,
        window=window,
        result=result,
        classification=cls,
        action=gate.action,
        **kw,
    )


def _decide(
    gate: Gate,
    scope: str,
    window: str,
    *,
    breaks: bool,
    p_value: float | None,
    alpha: float,
    few: bool,
    shortfall: str,
    shown: str,
    worse: Classification,
    test: str,
    candidate: float | None,
    legacy: float | None,
    effect: float | None,
    samples: tuple[int, int],
) -> Check:
    """Fail when beyond the value and significant; else too few samples, not significant
    yet (both inconclusive), or pass. One ladder for absolute and relative gates."""
    kw: dict[str, Any] = {
        "candidate": candidate,
        "legacy": legacy,
        "effect": effect,
        "p_value": p_value,
        "samples": samples,
    }
    detail = f" ({test}{_p(p_value)})" if test else _p(p_value)
    if breaks and p_value is not None and p_value < alpha:
        return _check(
            gate,
            scope,
            window,
            Result.FAIL,
            worse,
            **kw,
            reason=f"{gate.text} failed: {shown}, significant{detail}",
        )
    if few:
        return _check(
            gate,
            scope,
            window,
            Result.INCONCLUSIVE,
            Classification.NODATA,
            **kw,
            reason=f"{gate.text}: too few samples ({shortfall})",
        )
    if breaks:
        return _check(
            gate,
            scope,
            window,
            Result.INCONCLUSIVE,
            Classification.PASS,
            **kw,
            reason=f"{gate.text}: {shown}, not significant yet{detail}",
        )
    kw["p_value"] = None
    return _check(
        gate,
        scope,
        window,
        Result.PASS,
        Classification.PASS,
        **kw,
        reason=f"{gate.text} passed: {shown}",
    )


def check_absolute(
    gate: Gate, cand: Pool, plan: Plan, *, scope: str = "gate", window: str = "phase"
) -> Check:
    """A candidate rate or latency quantile against a fixed threshold."""
    n, alpha, kind = cand.calls, plan.alpha, gate.kind
    if kind == "latency":
        q = LATENCY_METRICS[gate.metric]
        tail = 1.0 - q
        k = cand.above(gate.value)
        observed_tail = k / n if n else None
        value = _median([m.quantile(gate.metric) for m in cand.minutes if m.calls])
        breaks = observed_tail is not None and observed_tail > tail
        p_value = stats.binomial_above(k, n, tail) if breaks else None
        shown = (
            f"{gate.metric} {_ms(value)}: {k} of {n} calls slower than {_ms(gate.value)} "
            f"({_pct(observed_tail)}, allowed {_pct(tail)})"
        )
        effect = observed_tail / tail if observed_tail is not None else None
        observed = value
    else:
        k = cand.count(gate.metric)
        observed = k / n if n else None
        lower_better = gate.lower_is_better
        if observed is None:
            breaks = False
        elif lower_better:
            breaks = observed > gate.value or (gate.op == "<" and observed == gate.value)
        else:
            breaks = observed < gate.value or (gate.op == ">" and observed == gate.value)
        if breaks:
            p_value = (
                stats.binomial_above(k, n, gate.value)
                if lower_better
                else stats.binomial_below(k, n, gate.value)
            )
        else:
            p_value = None
        shown = f"{gate.metric} {_pct(observed)} ({k} of {n} calls), threshold {_pct(gate.value)}"
        effect = observed / gate.value if observed is not None and gate.value else None
    if n == 0:
        return _check(
            gate,
            scope,
            window,
            Result.INCONCLUSIVE,
            Classification.NODATA,
            candidate=None,
            legacy=None,
            effect=None,
            p_value=None,
            samples=(0, 0),
            reason=f"{gate.text}: no candidate traffic in the window",
        )
    return _decide(
        gate,
        scope,
        window,
        breaks=breaks,
        p_value=p_value,
        alpha=alpha,
        few=n < plan.min_samples,
        shortfall=f"{n} of {plan.min_samples} calls",
        shown=shown,
        worse=Classification.HIGH if gate.lower_is_better else Classification.LOW,
        test="",
        candidate=observed,
        legacy=None,
        effect=effect,
        samples=(n, 0),
    )


def _median(values: Sequence[float | None]) -> float | None:
    clean = [v for v in values if v is not None]
    return statistics.median(clean) if clean else None


def check_relative(
    gate: Gate,
    cand: Pool,
    legacy: Pool,
    plan: Plan,
    *,
    scope: str = "gate",
    window: str = "phase",
) -> Check:
    """The candidate against legacy on the same window."""
    kind, alpha = gate.kind, plan.alpha
    samples = (cand.calls, legacy.calls)
    if cand.calls == 0 or legacy.calls == 0:
        side = "candidate" if cand.calls == 0 else "legacy"
        return _check(
            gate,
            scope,
            window,
            Result.INCONCLUSIVE,
            Classification.NODATA,
            candidate=None,
            legacy=None,
            effect=None,
            p_value=None,
            samples=samples,
            reason=f"{gate.text}: no {side} traffic in the window",
        )
    if kind == "latency_ratio":
        metric = RATIO_METRICS[gate.metric]
        c_series, l_series = cand.latency_series(metric), legacy.latency_series(metric)
        c_med, l_med = _median(c_series), _median(l_series)
        effect = c_med / l_med if c_med is not None and l_med else None
        enough = len(c_series) >= MIN_POINTS and len(l_series) >= MIN_POINTS
        breaks = effect is not None and (
            effect > gate.value or (gate.op == "<" and effect == gate.value)
        )
        # H0: candidate <= limit x legacy, so the test is against legacy scaled by the limit
        scaled = [gate.value * x for x in l_series]
        p_value = (
            stats.mann_whitney(c_series, scaled, alternative="greater")
            if breaks and enough
            else None
        )
        shown = (
            f"per-minute {metric} {_ms(c_med)} vs legacy {_ms(l_med)} = {effect:.2f}x"
            if effect is not None
            else f"per-minute {metric} n/a"
        )
        c_value, l_value = c_med, l_med
        few = not enough or min(samples) < plan.min_samples
        shortfall = (
            f"{len(c_series)}/{len(l_series)} of {MIN_POINTS} points"
            if not enough
            else f"{min(samples)} of {plan.min_samples} calls"
        )
        test = "Mann-Whitney against the limit"
    else:
        if kind == "rate_ratio":
            metric = RATE_RATIOS[gate.metric]
        else:
            metric = "outcome." + gate.metric.split(".", 1)[1]
        k1, k0 = cand.count(metric), legacy.count(metric)
        c_value, l_value = k1 / cand.calls, k0 / legacy.calls
        if kind == "rate_ratio":
            effect = c_value / l_value if l_value else (1.0 if c_value == 0 else float("inf"))
            breaks = effect > gate.value or (gate.op == "<" and effect == gate.value)
            shown = f"{metric} {_pct(c_value)} vs legacy {_pct(l_value)}"
            p_value = (
                stats.ratio_above(k1, cand.calls, k0, legacy.calls, gate.value) if breaks else None
            )
        else:
            effect = l_value - c_value
            breaks = effect > gate.value or (gate.op == "<" and effect == gate.value)
            shown = f"{metric} {_pct(c_value)} vs legacy {_pct(l_value)} (drop {_pct(effect)})"
            p_value = (
                stats.difference_above(k0, legacy.calls, k1, cand.calls, gate.value)
                if breaks
                else None
            )
        few = min(samples) < plan.min_samples
        shortfall = f"{min(samples)} of {plan.min_samples} calls"
        test = "two-proportion test against the limit"
    return _decide(
        gate,
        scope,
        window,
        breaks=breaks,
        p_value=p_value,
        alpha=alpha,
        few=few,
        shortfall=shortfall,
        shown=shown,
        worse=Classification.LOW if kind == "outcome_drop" else Classification.HIGH,
        test=test,
        candidate=c_value,
        legacy=l_value,
        effect=effect,
        samples=samples,
    )


def check_gate(
    gate: Gate, cand: Pool, legacy: Pool, plan: Plan, *, scope: str, window: str
) -> Check:
    if gate.kind in ("rate", "latency", "outcome"):
        return check_absolute(gate, cand, plan, scope=scope, window=window)
    return check_relative(gate, cand, legacy, plan, scope=scope, window=window)


def matrix_checks(plan: Plan, cand: Pool, window: str) -> list[tuple[str, Check]]:
    """Seed 001's matrix rows that the candidate significantly exceeds, most severe first."""
    out: list[tuple[str, Check]] = []
    for level, row in (("P0", plan.matrix.p0), ("P1", plan.matrix.p1), ("P2", plan.matrix.p2)):
        for gate in (
            Gate(
                "error_rate",
                "<=",
                row.error_rate,
                plan.operation,
                "rollback",
                f"{level}: error_rate <= {row.error_rate * 100:g}%",
            ),
            Gate(
                "p95",
                "<=",
                row.p95_ms,
                plan.operation,
                "rollback",
                f"{level}: p95 <= {row.p95_ms:g}ms",
            ),
        ):
            check = check_absolute(gate, cand, plan, scope="matrix", window=window)
            if check.result is Result.FAIL:
                out.append((level, check))
        if out:
            break
    return out


def compare_metrics(plan: Plan, cand: Pool, legacy: Pool) -> list[Check]:
    """Kayenta's table: every metric of the candidate classified against legacy."""
    alpha, tol = plan.alpha, plan.tolerance
    samples = (cand.calls, legacy.calls)
    rows: list[Check] = []
    names = ["error_rate", "fallback_rate"]
    outcome_names = sorted({k for pool in (cand, legacy) for m in pool.minutes for k in m.outcomes})
    names += [f"outcome.{k}" for k in outcome_names]
    few = min(samples) < plan.min_samples
    for metric in names:
        if cand.calls == 0 or legacy.calls == 0:
            rows.append(
                _metric(
                    metric,
                    Classification.NODATA,
                    None,
                    None,
                    None,
                    None,
                    samples,
                    "no traffic on one side",
                )
            )
            continue
        k1, k0 = cand.count(metric), legacy.count(metric)
        c, lg = k1 / cand.calls, k0 / legacy.calls
        effect = c / lg if lg else (1.0 if c == 0 else float("inf"))
        cls, p_value = Classification.PASS, None
        if effect > 1 + tol:
            p_value = stats.two_proportions(k1, cand.calls, k0, legacy.calls, alternative="greater")
            cls = Classification.HIGH if p_value < alpha else cls
        elif effect < 1 / (1 + tol):
            p_value = stats.two_proportions(k1, cand.calls, k0, legacy.calls, alternative="less")
            cls = Classification.LOW if p_value < alpha else cls
        if few and cls is Classification.PASS:
            cls = Classification.NODATA
        rows.append(
            _metric(
                metric,
                cls,
                c,
                lg,
                effect,
                p_value,
                samples,
                f"{metric} {_pct(c)} vs legacy {_pct(lg)}{_p(p_value)}",
            )
        )
    for metric in ("p50", "p95", "p99"):
        cs, ls = cand.latency_series(metric), legacy.latency_series(metric)
        c_med, l_med = _median(cs), _median(ls)
        if c_med is None or l_med is None or len(cs) < MIN_POINTS or len(ls) < MIN_POINTS:
            rows.append(
                _metric(
                    metric,
                    Classification.NODATA,
                    c_med,
                    l_med,
                    None,
                    None,
                    samples,
                    f"{metric}: {len(cs)}/{len(ls)} per-minute points, need {MIN_POINTS}",
                )
            )
            continue
        effect = c_med / l_med if l_med else None
        cls, p_value = Classification.PASS, None
        if effect is not None and (effect > 1 + tol or effect < 1 / (1 + tol)):
            p_value = stats.mann_whitney(cs, ls)
            if p_value < alpha:
                cls = Classification.HIGH if effect > 1 else Classification.LOW
        rows.append(
            _metric(
                metric,
                cls,
                c_med,
                l_med,
                effect,
                p_value,
                samples,
                f"{metric} {_ms(c_med)} vs legacy {_ms(l_med)}{_p(p_value)}",
            )
        )
    return rows


def _metric(
    name: str,
    cls: Classification,
    c: float | None,
    lg: float | None,
    effect: float | None,
    p_value: float | None,
    samples: tuple[int, int],
    reason: str,
) -> Check:
    result = {
        Classification.PASS: Result.PASS,
        Classification.NODATA: Result.INCONCLUSIVE,
    }.get(cls, Result.FAIL)
    return Check(
        name=name,
        scope="metric",
        window="phase",
        result=result,
        classification=cls,
        candidate=c,
        legacy=lg,
        effect=effect,
        p_value=p_value,
        samples=samples,
        reason=reason,
        action="none",
    )


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


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    severity: str
    phase_index: int
    target_index: int | None
    """The phase the action moves to: -1 means before the first (0 %, features off)."""
    reasons: tuple[str, ...]
    checks: tuple[Check, ...] = ()
    metrics: tuple[Check, ...] = ()
    window: tuple[int, int] = (0, 0)
    """The gates' window, in minutes since the epoch [first, end)."""
    awaiting_approval: bool = False

    def summary(self) -> str:
        return self.reasons[0] if self.reasons else self.action.value

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "severity": self.severity,
            "phase_index": self.phase_index,
            "target_index": self.target_index,
            "reasons": list(self.reasons),
            "checks": [c.to_dict() for c in self.checks],
            "metrics": [c.to_dict() for c in self.metrics],
            "window": {"from_minute": self.window[0], "to_minute": self.window[1]},
            "awaiting_approval": self.awaiting_approval,
        }


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


def _windows(s: Situation) -> tuple[tuple[int, int], tuple[int, int]]:
    end = int(s.now // 60)
    start = -(-int(s.phase_started) // 60)
    phase = (max(start, end - int(s.plan.window // 60)), end)
    recent = (max(start, end - int(s.plan.recent // 60)), end)
    return phase, recent


def judge(s: Situation, evidence: Evidence) -> Verdict:
    plan, idx = s.plan, s.phase_index
    last = len(plan.phases) - 1
    if idx < 0:
        first = plan.phases[0]
        if s.status != "running":
            return Verdict(
                Action.HOLD,
                "P3",
                idx,
                None,
                (
                    f"{s.status} before the first phase; 'switchover resume' starts "
                    f"{first.name!r} again",
                ),
            )
        if first.requires_approval and not s.approved:
            return Verdict(
                Action.HOLD,
                "P3",
                idx,
                None,
                (f"waiting for approval to start phase {first.name!r}",),
                awaiting_approval=True,
            )
        return Verdict(
            Action.START,
            "P3",
            idx,
            0,
            (f"plan {plan.name!r} starts: phase {first.name!r} at {first.percentage}%",),
        )
    phase = plan.phases[idx]
    (w0, w1), (r0, r1) = _windows(s)
    sides = evidence(w0, w1, plan.operation)
    cand, legacy = Pool(sides.get("candidate", ())), Pool(sides.get("legacy", ()))
    recent_sides = evidence(r0, r1, plan.operation) if (r0, r1) != (w0, w1) else sides
    r_cand = Pool(recent_sides.get("candidate", ()))
    r_legacy = Pool(recent_sides.get("legacy", ()))

    checks: list[Check] = []
    matrix = matrix_checks(plan, cand, "phase") or matrix_checks(plan, r_cand, "recent")
    severity = matrix[0][0] if matrix else "P3"
    checks.extend(c for _, c in matrix)

    # At 100 % legacy serves nothing: relative gates compare with legacy's last window
    # before the phase began (its baseline), said so in the reasons.
    full = phase.percentage >= 100
    phase_start = -(-int(s.phase_started) // 60)
    baseline_bounds = (phase_start - int(plan.window // 60), phase_start)

    def baseline(operation: str | None) -> Pool:
        return Pool(evidence(baseline_bounds[0], baseline_bounds[1], operation).get("legacy", ()))

    if full and legacy.calls == 0:
        legacy = baseline(plan.operation)

    def pools(gate: Gate, window: str) -> tuple[Pool, Pool]:
        if gate.operation is None or gate.operation == plan.operation:
            return (cand, legacy) if window == "phase" else (r_cand, r_legacy)
        bounds = (w0, w1) if window == "phase" else (r0, r1)
        by_side = evidence(bounds[0], bounds[1], gate.operation)
        c_pool, l_pool = Pool(by_side.get("candidate", ())), Pool(by_side.get("legacy", ()))
        if full and window == "phase" and l_pool.calls == 0:
            l_pool = baseline(gate.operation)
        return c_pool, l_pool

    gate_checks: list[Check] = []
    for gate in plan.guardrails:
        c_pool, l_pool = pools(gate, "phase")
        check = check_gate(gate, c_pool, l_pool, plan, scope="guardrail", window="phase")
        if check.result is not Result.FAIL and gate.kind in ("rate", "latency", "outcome"):
            rc, rl = pools(gate, "recent")
            spike = check_gate(gate, rc, rl, plan, scope="guardrail", window="recent")
            if spike.result is Result.FAIL:
                check = spike
        gate_checks.append(check)
    for gate in phase.gates:
        c_pool, l_pool = pools(gate, "phase")
        gate_checks.append(check_gate(gate, c_pool, l_pool, plan, scope="gate", window="phase"))
    checks.extend(gate_checks)
    metrics_table: list[Check] | None = None

    def metrics() -> tuple[Check, ...]:
        nonlocal metrics_table
        if metrics_table is None:
            metrics_table = compare_metrics(plan, cand, legacy)
        return tuple(metrics_table)

    failed = [c for c in gate_checks if c.result is Result.FAIL]
    if any(c.action == "abort" for c in failed):
        severity = "P0"
    elif failed and any(c.action == "rollback" for c in failed) and severity not in ("P0",):
        severity = "P1"
    elif failed and severity == "P3":
        severity = "P2"
    reasons = [c.reason for _, c in matrix] + [c.reason for c in failed]

    def verdict(
        action: Action, target: int | None, extra: Sequence[str] = (), awaiting: bool = False
    ) -> Verdict:
        # the per-metric table costs tests: it is kept for verdicts that change or stop
        # something, not for every "continue"
        table = () if action is Action.CONTINUE else metrics()
        return Verdict(
            action,
            severity,
            idx,
            target,
            tuple(list(extra) + reasons),
            tuple(checks),
            table,
            (w0, w1),
            awaiting,
        )

    if severity == "P0":
        return verdict(
            Action.ROLLBACK_TOTAL,
            -1,
            ["P0: immediate total rollback (percentage 0, master switch off)"],
        )
    if severity == "P1":
        target = idx - 1
        where = f"phase {plan.phases[target].name!r}" if target >= 0 else "0% (before the plan)"
        return verdict(Action.ROLLBACK_PARTIAL, target, [f"P1: rolling back to {where}"])
    if severity == "P2":
        return verdict(Action.HOLD, None, ["P2: holding and alerting"])
    if s.status != "running":
        return verdict(
            Action.HOLD, None, [f"{s.status}: not advancing; 'switchover resume' to continue"]
        )

    elapsed = s.now - s.phase_started
    inconclusive = [c for c in gate_checks if c.result is Result.INCONCLUSIVE]
    if elapsed < phase.duration:
        note = (
            f"in {phase.name} ({phase.percentage}%) for {human_duration(max(0.0, elapsed))} of "
            f"{human_duration(phase.duration)}"
        )
        return verdict(Action.CONTINUE, None, [note])
    if inconclusive:
        return verdict(
            Action.HOLD,
            None,
            [f"inconclusive: {len(inconclusive)} gate(s) without enough evidence"]
            + [c.reason for c in inconclusive],
        )
    passed = f"every gate of {phase.name} passed after {human_duration(elapsed)}"
    if idx == last:
        return verdict(Action.COMPLETE, None, [f"{passed}: rollout complete"])
    nxt = plan.phases[idx + 1]
    if nxt.requires_approval and not s.approved:
        return verdict(
            Action.HOLD,
            None,
            [
                f"{passed}; waiting for approval to enter {nxt.name!r} "
                f"({nxt.percentage}%): switchover approve"
            ],
            awaiting=True,
        )
    return verdict(
        Action.ADVANCE, idx + 1, [f"{passed}: advancing to {nxt.name} ({nxt.percentage}%)"]
    )

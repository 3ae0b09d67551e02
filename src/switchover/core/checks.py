"""One gate, guardrail or matrix row, judged on one span of pooled evidence.

Every check follows one ladder:

- **fail**: at least ``min_samples`` calls (each side's, for a relative gate) and an
  always-valid test (:mod:`switchover.core.sequential`) whose evidence reaches the bar
  the plan's budget sets for this span;
- **inconclusive**: too few calls, no traffic, or the pooled value beyond the limit
  without that evidence yet;
- **pass**: enough calls and the pooled value within the limit.

The text of a check shows the pooled figures the test used: the rate as ``k of n
calls``, the pooled quantile of every call in the span (one sketch), the bounds that were
compared, and the always-valid p-value adjusted for every look (fail iff ``p <= alpha``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from switchover.core import sequential as seq
from switchover.core.evidence import Pool
from switchover.core.plan import (
    LATENCY_METRICS,
    RATE_DIFFS,
    RATE_RATIOS,
    RATIO_METRICS,
    TTFB_METRICS,
    TTFB_RATIO_METRICS,
    Gate,
    GateAction,
    Matrix,
    Plan,
)
from switchover.core.sketch import LatencySketch, bin_value
from switchover.core.verdict import (
    PHASE,
    Check,
    Classification,
    Result,
    Scope,
    Severity,
)

WINDOWED_KINDS = ("rate", "outcome", "latency", "ttfb", "rate_ratio")
"""Gate kinds also checked on windows that end now: their tests read counts only, which
a window of minutes adds up cheaply (latency ratios and outcome drops read the pooled
sketch or two bounds, and stay on the evidence since the phase began)."""


def _quantile_of(metric: str) -> float:
    """``p95`` or ``ttfb_p95``: 0.95."""
    return LATENCY_METRICS[TTFB_METRICS.get(metric, metric)]


@dataclass(frozen=True, slots=True)
class Look:
    """Where a check looks and what it takes to fail there."""

    scope: Scope
    window: str
    """:data:`~switchover.core.verdict.PHASE` or :data:`~switchover.core.verdict.RECENT`."""
    span: tuple[int, int]
    threshold: float
    """The log e-value a test must reach (see :class:`~switchover.core.sequential.Budget`)."""
    alpha: float
    min_samples: int
    baseline: bool = False
    """Legacy's pool is its baseline from before a 100 % phase, not the same minutes."""

    def where(self) -> str:
        minutes = self.span[1] - self.span[0]
        if self.window == PHASE:
            return "since the phase began"
        return f"in the last {minutes} minute{'s' if minutes != 1 else ''}"


# --- formatting ---------------------------------------------------------------------------


def pct(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x != 0 and abs(x) < 0.001:
        return f"{x * 100:.3f}%"
    return f"{x * 100:.2f}%"


def ms(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:,.0f} ms"


def ratio(x: float | None) -> str:
    if x is None:
        return "n/a"
    return "inf" if math.isinf(x) else f"{x:.2f}x"


def p_text(p: float | None) -> str:
    return "" if p is None else f"always-valid p={p:.3g}"


def _counted(k: int, n: int) -> str:
    return f"{k:,} of {n:,} calls"


# --- the ladder ---------------------------------------------------------------------------


def _check(gate: Gate, look: Look, **kw: Any) -> Check:
    kw.setdefault("threshold", look.threshold)
    return Check(
        name=gate.text,
        scope=look.scope,
        window=look.window,
        action=gate.action,
        span=look.span,
        **kw,
    )


def _ladder(
    gate: Gate,
    look: Look,
    *,
    enough: tuple[int, int],
    fails: bool,
    breaks: bool,
    shown: str,
    evidence: str,
    worse: Classification,
    **kw: Any,
) -> Check:
    """Fail, too few samples, not significant yet, or pass: one ladder for every kind.

    ``enough`` is (calls, needed); ``shown`` the pooled figures; ``evidence`` what the
    test found, for a failure.
    """
    calls, needed = enough
    if fails and calls >= needed:
        return _check(
            gate,
            look,
            result=Result.FAIL,
            classification=worse,
            reason=f"{gate.text} failed: {shown}; {evidence}",
            **kw,
        )
    if calls < needed:
        return _check(
            gate,
            look,
            result=Result.INCONCLUSIVE,
            classification=Classification.NODATA,
            reason=f"{gate.text}: too few samples ({calls:,} of {needed:,} calls; {shown})",
            **kw,
        )
    if breaks:
        return _check(
            gate,
            look,
            result=Result.INCONCLUSIVE,
            classification=Classification.PASS,
            reason=f"{gate.text}: {shown}, not significant yet",
            **kw,
        )
    return _check(
        gate,
        look,
        result=Result.PASS,
        classification=Classification.PASS,
        reason=f"{gate.text} passed: {shown}",
        **kw,
    )


def _no_traffic(gate: Gate, look: Look, side: str, samples: tuple[int, int]) -> Check:
    return _check(
        gate,
        look,
        result=Result.INCONCLUSIVE,
        classification=Classification.NODATA,
        candidate=None,
        legacy=None,
        effect=None,
        p_value=None,
        samples=samples,
        reason=f"{gate.text}: no {side} traffic {look.where()}",
    )


def _beyond(gate: Gate, value: float, limit: float) -> bool:
    """The pooled value is on the failing side of the limit."""
    if gate.lower_is_better:
        return value > limit or (gate.op == "<" and value == limit)
    return value < limit or (gate.op == ">" and value == limit)


# --- absolute gates -------------------------------------------------------------------------


def check_rate(gate: Gate, cand: Pool, look: Look) -> Check:
    """A rate (``error_rate``, ``outcome.NAME``) against a fixed value: the calls counted
    among all the candidate's calls of the span (:func:`.sequential.binomial_log_e`)."""
    n = cand.calls
    if n == 0:
        return _no_traffic(gate, look, "candidate", (0, 0))
    metric = gate.metric
    k = cand.count(metric)
    observed = k / n
    worse = seq.ABOVE if gate.lower_is_better else seq.BELOW
    log_e = seq.binomial_log_e(k, n, gate.value, worse) if n >= look.min_samples else 0.0
    p = seq.adjusted_p(log_e, look.threshold, look.alpha)
    side = "above" if gate.lower_is_better else "below"
    return _ladder(
        gate,
        look,
        enough=(n, look.min_samples),
        fails=log_e >= look.threshold,
        breaks=_beyond(gate, observed, gate.value),
        shown=(
            f"{metric} {pct(observed)} ({_counted(k, n)} {look.where()}), limit {pct(gate.value)}"
        ),
        evidence=f"{side} the limit with every look counted ({p_text(p)})",
        worse=Classification.HIGH if gate.lower_is_better else Classification.LOW,
        candidate=observed,
        legacy=None,
        effect=observed / gate.value if gate.value else None,
        p_value=p,
        samples=(n, 0),
        method="mixture SPRT on the calls counted",
        log_e=log_e,
    )


def check_latency(gate: Gate, cand: Pool, look: Look) -> Check:
    """A latency quantile against a fixed value: ``p95 < 800ms`` holds exactly when at
    most 5 % of calls are slower than 800 ms, so the test counts the slower calls.

    ``ttfb_p95 < 500ms`` is the same test on the streams' time to first chunk
    (``cand`` is then :attr:`Pool.ttfb`)."""
    n = cand.calls
    if n == 0:
        return _no_traffic(gate, look, "candidate", (0, 0))
    q = _quantile_of(gate.metric)
    tail = 1.0 - q
    k = cand.above(gate.value)
    observed_tail = k / n
    log_e = seq.binomial_log_e(k, n, tail) if n >= look.min_samples else 0.0
    fails = log_e >= look.threshold and n >= look.min_samples
    # the pooled quantile is for the text: a window's sketch is merged only when it fails
    value = cand.quantile(q) if look.window == PHASE or fails else None
    p = seq.adjusted_p(log_e, look.threshold, look.alpha)
    pooled = f"{gate.metric} {ms(value)}: " if value is not None else ""
    return _ladder(
        gate,
        look,
        enough=(n, look.min_samples),
        fails=fails,
        breaks=observed_tail > tail,
        shown=(
            f"{pooled}{_counted(k, n)} slower than {ms(gate.value)} {look.where()} "
            f"({pct(observed_tail)}, allowed {pct(tail)})"
        ),
        evidence=f"more than {pct(tail)} with every look counted ({p_text(p)})",
        worse=Classification.HIGH,
        candidate=value,
        legacy=None,
        effect=observed_tail / tail,
        p_value=p,
        samples=(n, 0),
        method="mixture SPRT on the calls slower than the limit",
        log_e=log_e,
    )


# --- relative gates -------------------------------------------------------------------------


def _legacy_words(look: Look) -> str:
    return "legacy's baseline before the phase" if look.baseline else "legacy"


def check_rate_ratio(gate: Gate, cand: Pool, legacy: Pool, look: Look) -> Check:
    """``error_ratio <= 1.5``: the candidate's rate against the limit times legacy's.

    On the same minutes, a mixture SPRT on the failures (:func:`.sequential.ratio_log_e`).
    Against a baseline taken before a 100 % phase: legacy's rate has an upper bound
    (half the budget), and the candidate's rate is tested against the limit times it.
    """
    samples = (cand.calls, legacy.calls)
    if cand.calls == 0 or legacy.calls == 0:
        return _no_traffic(gate, look, "candidate" if cand.calls == 0 else "legacy", samples)
    metric = RATE_RATIOS[gate.metric]
    k1, k0 = cand.count(metric), legacy.count(metric)
    c, lg = k1 / cand.calls, k0 / legacy.calls
    effect = c / lg if lg else (1.0 if c == 0 else math.inf)
    breaks = effect > gate.value or (gate.op == "<" and effect == gate.value)
    enough = min(samples) >= look.min_samples
    log_e, bound, threshold = 0.0, None, look.threshold
    if look.baseline:
        threshold = seq.halved(look.threshold)
        if breaks and enough:
            bound = seq.rate_bounds(k0, legacy.calls, threshold)[1]
            log_e = seq.binomial_log_e(k1, cand.calls, min(1.0, gate.value * bound))
        method = "confidence sequence on legacy's baseline, mixture SPRT on the candidate"
    else:
        if breaks and enough:
            share = cand.calls / (cand.calls + legacy.calls)
            log_e = seq.ratio_log_e(k1, k0, share, gate.value)
        method = "mixture SPRT on which side each failure came from"
    p = seq.adjusted_p(log_e, threshold, look.alpha)
    shown = (
        f"{metric} {pct(c)} ({_counted(k1, cand.calls)}) vs {_legacy_words(look)} {pct(lg)} "
        f"({_counted(k0, legacy.calls)}) {look.where()} = {ratio(effect)}, limit {gate.value:g}x"
    )
    evidence = f"above the limit with every look counted ({p_text(p)})"
    if bound is not None:
        evidence = (
            f"legacy's rate is at most {pct(bound)}, and the candidate's is above "
            f"{gate.value:g} x that with every look counted ({p_text(p)})"
        )
    return _ladder(
        gate,
        look,
        enough=(min(samples), look.min_samples),
        fails=log_e >= threshold,
        breaks=breaks,
        shown=shown,
        evidence=evidence,
        worse=Classification.HIGH,
        candidate=c,
        legacy=lg,
        effect=effect,
        p_value=p,
        samples=samples,
        method=method,
        log_e=log_e,
        bound=bound,
        threshold=threshold,
    )


def check_latency_ratio(gate: Gate, cand: Pool, legacy: Pool, look: Look) -> Check:
    """``p95_ratio <= 1.2``: the candidate's quantile against the limit times legacy's.

    Two confidence sequences, each with half the budget: legacy's p95 is below ``U``, and
    more than 5 % of the candidate's calls are slower than ``limit x U`` (so its p95 is
    above that). Both hold at every look, whatever the shapes of the two distributions.
    ``ttfb_p95_ratio <= 1.2`` is the same on both sides' :attr:`Pool.ttfb`.
    """
    samples = (cand.calls, legacy.calls)
    if cand.calls == 0 or legacy.calls == 0:
        return _no_traffic(gate, look, "candidate" if cand.calls == 0 else "legacy", samples)
    metric = RATIO_METRICS.get(gate.metric) or TTFB_RATIO_METRICS[gate.metric]
    q = _quantile_of(metric)
    c_q, l_q = cand.quantile(q), legacy.quantile(q)
    effect = c_q / l_q if c_q is not None and l_q else None
    breaks = effect is not None and (
        effect > gate.value or (gate.op == "<" and effect == gate.value)
    )
    enough = min(samples) >= look.min_samples
    threshold = seq.halved(look.threshold)
    log_e, legacy_upper, cand_lower, k = 0.0, None, None, 0
    if breaks and enough:
        # the bounds can only cross when the pooled quantiles do: computed only then
        legacy_upper = seq.quantile_upper_bound(legacy.sketch, q, threshold)
        if math.isfinite(legacy_upper):
            k = cand.above(gate.value * legacy_upper)
            log_e = seq.binomial_log_e(k, cand.calls, 1.0 - q)
    fails = log_e >= threshold
    if fails:
        cand_lower = seq.quantile_lower_bound(cand.sketch, q, threshold)
    p = seq.adjusted_p(log_e, threshold, look.alpha)
    shown = (
        f"{metric} {ms(c_q)} ({cand.calls:,} calls) vs {_legacy_words(look)} {ms(l_q)} "
        f"({legacy.calls:,} calls) {look.where()} = {ratio(effect)}, limit {gate.value:g}x"
    )
    evidence = ""
    if legacy_upper is not None and math.isfinite(legacy_upper):
        evidence = (
            f"with every look counted legacy's {metric} is below {ms(legacy_upper)} and "
            f"{_counted(k, cand.calls)} of the candidate are slower than {gate.value:g} x "
            f"that ({ms(gate.value * legacy_upper)}): its {metric} is above "
            f"{ms(cand_lower if cand_lower else gate.value * legacy_upper)} ({p_text(p)})"
        )
    return _ladder(
        gate,
        look,
        enough=(min(samples), look.min_samples),
        fails=fails,
        breaks=breaks,
        shown=shown,
        evidence=evidence,
        worse=Classification.HIGH,
        candidate=c_q,
        legacy=l_q,
        effect=effect,
        p_value=p,
        samples=samples,
        method="confidence sequences on both quantiles",
        log_e=log_e,
        threshold=threshold,
        bound=cand_lower / legacy_upper if cand_lower and legacy_upper else None,
    )


def check_outcome_drop(gate: Gate, cand: Pool, legacy: Pool, look: Look) -> Check:
    """``outcome_drop.booked <= 2%``: legacy's share minus the candidate's, against a
    margin in points. Fails when legacy's lower bound exceeds the candidate's upper bound
    by more than the margin (two confidence sequences, half the budget each)."""
    return _share_gap(gate, cand, legacy, look, "outcome." + gate.metric.split(".", 1)[1], False)


def check_rate_diff(gate: Gate, cand: Pool, legacy: Pool, look: Look) -> Check:
    """``error_diff <= 1%``: the candidate's rate minus legacy's, against a margin in
    points. Fails when the candidate's lower bound exceeds legacy's upper bound by more
    than the margin (two confidence sequences, half the budget each)."""
    return _share_gap(gate, cand, legacy, look, RATE_DIFFS[gate.metric], True)


def _share_gap(
    gate: Gate, cand: Pool, legacy: Pool, look: Look, metric: str, higher_is_worse: bool
) -> Check:
    """A margin in points between the two sides' shares of ``metric``: the candidate's
    above legacy's (``higher_is_worse``: error and fallback rates) or below it (outcomes)."""
    samples = (cand.calls, legacy.calls)
    if cand.calls == 0 or legacy.calls == 0:
        return _no_traffic(gate, look, "candidate" if cand.calls == 0 else "legacy", samples)
    k1, k0 = cand.count(metric), legacy.count(metric)
    c, lg = k1 / cand.calls, k0 / legacy.calls
    effect = c - lg if higher_is_worse else lg - c
    breaks = effect > gate.value or (gate.op == "<" and effect == gate.value)
    enough = min(samples) >= look.min_samples
    threshold = seq.halved(look.threshold)
    gap = None
    if breaks and enough:
        cand_lower, cand_upper = seq.rate_bounds(k1, cand.calls, threshold)
        legacy_lower, legacy_upper = seq.rate_bounds(k0, legacy.calls, threshold)
        gap = cand_lower - legacy_upper if higher_is_worse else legacy_lower - cand_upper
    fails = gap is not None and gap > gate.value
    sides = (
        f"{metric} {pct(c)} ({_counted(k1, cand.calls)}) vs {_legacy_words(look)} "
        f"{pct(lg)} ({_counted(k0, legacy.calls)}) {look.where()}: "
    )
    if higher_is_worse:
        shown = f"{sides}{pct(effect)} more, margin {pct(gate.value)}"
        evidence = f"with every look counted the candidate's is at least {pct(gap)} more"
    else:
        shown = f"{sides}a drop of {pct(effect)}, margin {pct(gate.value)}"
        evidence = f"with every look counted the drop is at least {pct(gap)}"
    return _ladder(
        gate,
        look,
        enough=(min(samples), look.min_samples),
        fails=fails,
        breaks=breaks,
        shown=shown,
        evidence=evidence,
        worse=Classification.HIGH if higher_is_worse else Classification.LOW,
        candidate=c,
        legacy=lg,
        effect=effect,
        p_value=None,
        samples=samples,
        method=f"confidence sequences on both {'rates' if higher_is_worse else 'shares'}",
        log_e=None,
        threshold=threshold,
        bound=gap,
    )


# --- mean latency ------------------------------------------------------------------------

MEAN_TUNED_CALLS = 10_000
"""The calls the mean's confidence sequence is tightest at (its mixture's width, fixed in
advance: it must not depend on the data)."""


def _mean_and_sd(sketch: LatencySketch) -> tuple[float, float]:
    """The exact mean (rollups keep the sum of latencies) and a standard deviation
    estimated from the sketch's bins (each value within 1 %: the sum of squares is not
    stored)."""
    n = sketch.count
    mean = sketch.sum / n
    second = sum(c * bin_value(k) ** 2 for k, c in sketch.bins.items()) / n
    return mean, math.sqrt(max(0.0, second - mean * mean))


def mean_radius(sd: float, n: int, log_threshold: float) -> float:
    """Half the width of an asymptotic confidence sequence for a mean, after ``n`` calls
    (Waudby-Smith, Arnold, Wu, Wang, Ramdas: the normal mixture boundary with the sample
    standard deviation): ``sd * sqrt(2 (n r2 + 1) / (n**2 r2) * log(sqrt(n r2 + 1) / a))``
    with ``log(1/a) = log_threshold``, ``r2`` tuned for :data:`MEAN_TUNED_CALLS`."""
    if n <= 0:
        return math.inf
    two_log = 2.0 * log_threshold
    r2 = (two_log + math.log(two_log + 1.0)) / MEAN_TUNED_CALLS
    v = n * r2 + 1.0
    return sd * math.sqrt(2.0 * v / (n * n * r2) * (log_threshold + 0.5 * math.log(v)))


def check_mean_ratio(gate: Gate, cand: Pool, legacy: Pool, look: Look) -> Check:
    """``mean_ratio <= 1.2``: the candidate's mean latency against the limit times legacy's.

    Two confidence sequences for the means, half the budget each: the candidate's mean is
    above ``L`` and legacy's below ``U``, at every look; fails when ``L > limit x U``.
    """
    samples = (cand.calls, legacy.calls)
    c_sk, l_sk = cand.sketch, legacy.sketch
    if c_sk.count == 0 or l_sk.count == 0:
        return _no_traffic(gate, look, "candidate" if c_sk.count == 0 else "legacy", samples)
    (c_mean, c_sd), (l_mean, l_sd) = _mean_and_sd(c_sk), _mean_and_sd(l_sk)
    effect = c_mean / l_mean if l_mean > 0 else (1.0 if c_mean == 0 else math.inf)
    breaks = effect > gate.value or (gate.op == "<" and effect == gate.value)
    enough = min(samples) >= look.min_samples
    threshold = seq.halved(look.threshold)
    lower = upper = None
    if breaks and enough:
        lower = max(0.0, c_mean - mean_radius(c_sd, c_sk.count, threshold))
        upper = l_mean + mean_radius(l_sd, l_sk.count, threshold)
    fails = lower is not None and upper is not None and lower > gate.value * upper
    shown = (
        f"mean {ms(c_mean)} ({cand.calls:,} calls) vs {_legacy_words(look)} {ms(l_mean)} "
        f"({legacy.calls:,} calls) {look.where()} = {ratio(effect)}, limit {gate.value:g}x"
    )
    evidence = ""
    if lower is not None and upper is not None:
        evidence = (
            f"with every look counted legacy's mean is below {ms(upper)} and the "
            f"candidate's above {ms(lower)}, more than {gate.value:g} x that"
        )
    return _ladder(
        gate,
        look,
        enough=(min(samples), look.min_samples),
        fails=fails,
        breaks=breaks,
        shown=shown,
        evidence=evidence,
        worse=Classification.HIGH,
        candidate=c_mean,
        legacy=l_mean,
        effect=effect,
        p_value=None,
        samples=samples,
        method="asymptotic confidence sequences on both means",
        log_e=None,
        threshold=threshold,
        bound=lower / upper if lower is not None and upper else None,
    )


# --- scores ---------------------------------------------------------------------------------


def _score_name(gate: Gate) -> str:
    return gate.metric.split(".", 1)[1]


def check_score(gate: Gate, cand: Pool, look: Look) -> Check:
    """``score.csat >= 4.5``: the candidate's mean score over its scored calls, against a
    fixed value. An asymptotic confidence sequence for the mean (:func:`mean_radius`);
    fails when the whole sequence is on the wrong side of the limit."""
    stats = cand.score(_score_name(gate))
    if stats.n == 0 or stats.mean is None:
        return _no_traffic(gate, look, "scored candidate", (0, 0))
    mean, n = stats.mean, stats.n
    breaks = _beyond(gate, mean, gate.value)
    enough = n >= look.min_samples
    bound = None
    if breaks and enough:
        radius = mean_radius(stats.sd, n, look.threshold)
        bound = mean - radius if gate.lower_is_better else mean + radius
    fails = bound is not None and _beyond(gate, bound, gate.value)
    side = "above" if gate.lower_is_better else "below"
    return _ladder(
        gate,
        look,
        enough=(n, look.min_samples),
        fails=fails,
        breaks=breaks,
        shown=(
            f"{gate.metric} mean {mean:.3g} (sd {stats.sd:.3g}, {n:,} scored calls "
            f"{look.where()}), limit {gate.value:g}"
        ),
        evidence=f"with every look counted the mean is {side} {bound:.3g}"
        if bound is not None
        else "",
        worse=Classification.HIGH if gate.lower_is_better else Classification.LOW,
        candidate=mean,
        legacy=None,
        effect=mean - gate.value,
        p_value=None,
        samples=(n, 0),
        method="asymptotic confidence sequence on the mean score",
        log_e=None,
        bound=bound,
    )


def check_score_drop(gate: Gate, cand: Pool, legacy: Pool, look: Look) -> Check:
    """``score_drop.csat <= 0.2``: legacy's mean score minus the candidate's, against a
    margin in the score's units. Two confidence sequences, half the budget each; fails
    when legacy's lower bound is above the candidate's upper bound by more than the
    margin."""
    name = _score_name(gate)
    c, lg = cand.score(name), legacy.score(name)
    samples = (c.n, lg.n)
    if c.mean is None or lg.mean is None:
        side = "scored candidate" if c.mean is None else "scored legacy"
        return _no_traffic(gate, look, side, samples)
    drop = lg.mean - c.mean
    breaks = drop > gate.value or (gate.op == "<" and drop == gate.value)
    enough = min(samples) >= look.min_samples
    threshold = seq.halved(look.threshold)
    gap = None
    if breaks and enough:
        gap = (lg.mean - mean_radius(lg.sd, lg.n, threshold)) - (
            c.mean + mean_radius(c.sd, c.n, threshold)
        )
    fails = gap is not None and gap > gate.value
    return _ladder(
        gate,
        look,
        enough=(min(samples), look.min_samples),
        fails=fails,
        breaks=breaks,
        shown=(
            f"score.{name} mean {c.mean:.3g} ({c.n:,} scored calls) vs {_legacy_words(look)} "
            f"{lg.mean:.3g} ({lg.n:,}) {look.where()}: a drop of {drop:.3g}, margin "
            f"{gate.value:g}"
        ),
        evidence=f"with every look counted the drop is at least {gap:.3g}"
        if gap is not None
        else "",
        worse=Classification.LOW,
        candidate=c.mean,
        legacy=lg.mean,
        effect=drop,
        p_value=None,
        samples=samples,
        method="asymptotic confidence sequences on both mean scores",
        log_e=None,
        threshold=threshold,
        bound=gap,
    )


# --- counts per hour -----------------------------------------------------------------------


def poisson_log_e(k: float, mean0: float, worse: str = seq.ABOVE) -> float:
    """log e-value against "the events come at most ``mean0`` in this time" (or at least).

    ``k`` events where a Poisson process at the limit expects ``mean0``. The alternatives
    are the limit's rate times ``e**d`` (``e**-d`` below) for ``d`` in
    :data:`~switchover.core.sequential.GRID`, weighted alike; each likelihood ratio,
    ``exp(k d - mean0 (e**d - 1))``, is a supermartingale in time for every rate on the
    null's side, so the mixture is too (Ville's inequality holds at every look).
    """
    if mean0 <= 0.0:
        return 0.0
    if worse == seq.ABOVE and k <= mean0:
        return 0.0
    if worse == seq.BELOW and k >= mean0:
        return 0.0
    sign = 1.0 if worse == seq.ABOVE else -1.0
    logs = [sign * d * k - mean0 * math.expm1(sign * d) for d in seq.GRID]
    top = max(logs)
    return top + math.log(sum(math.exp(x - top) for x in logs)) - seq.LOG_GRID


def check_count(gate: Gate, cand: Pool, look: Look) -> Check:
    """``outcome.tool_call_failure < 50/h``: the candidate's count per hour of the span,
    against the limit (:func:`poisson_log_e` on the count against limit x hours)."""
    n = cand.calls
    if n == 0:
        return _no_traffic(gate, look, "candidate", (0, 0))
    minutes = max(1, look.span[1] - look.span[0])
    hours = minutes / 60.0
    k = cand.count(gate.metric)
    observed = k / hours
    worse = seq.ABOVE if gate.lower_is_better else seq.BELOW
    # the span's last minute is the one in progress: counted whole against a ceiling
    # (more time, less evidence), left out against a floor (fewer events expected)
    tested = hours if gate.lower_is_better else (minutes - 1) / 60.0
    enough = n >= look.min_samples
    log_e = poisson_log_e(k, gate.value * tested, worse) if enough else 0.0
    p = seq.adjusted_p(log_e, look.threshold, look.alpha)
    side = "above" if gate.lower_is_better else "below"
    return _ladder(
        gate,
        look,
        enough=(n, look.min_samples),
        fails=log_e >= look.threshold,
        breaks=_beyond(gate, observed, gate.value),
        shown=(
            f"{gate.metric} {observed:,.1f}/h ({k:,} in {hours:,.2f} h, {n:,} calls "
            f"{look.where()}), limit {gate.value:g}/h"
        ),
        evidence=f"{side} the limit with every look counted ({p_text(p)})",
        worse=Classification.HIGH if gate.lower_is_better else Classification.LOW,
        candidate=observed,
        legacy=None,
        effect=observed / gate.value,
        p_value=p,
        samples=(n, 0),
        method="mixture SPRT on the count (Poisson)",
        log_e=log_e,
    )


# --- sample ratio ----------------------------------------------------------------------------

SRM_NAME = "sample ratio"
SRM_TOLERANCE = 0.1
"""How far the candidate's share may drift from the percentage before the guardrail may
hold: a tenth of the smaller side's share (10 % -> 9 to 11 %; 90 % -> 89 to 91 %). Calls
are bucketed by a key, not one by one, so a key with many calls moves the share a little
without anything being wrong."""


def srm_band(expected: float) -> tuple[float, float]:
    margin = SRM_TOLERANCE * min(expected, 1.0 - expected)
    return max(0.0, expected - margin), min(1.0, expected + margin)


def check_sample_ratio(cand: Pool, legacy: Pool, expected: float, look: Look) -> Check:
    """The candidate's share of every call of the span against the phase's percentage:
    a sample ratio mismatch means the two sides' calls are not comparable (a side loses
    records, crashes before recording, or a router ignores the percentage), so every
    comparison is suspect. Two one-sided mixture tests (the share above the band's top,
    below its bottom), half the budget each; a failure holds."""
    low, high = srm_band(expected)
    gate = Gate(
        metric="sample_ratio",
        op="<=",
        value=expected,
        action=GateAction.HOLD,
        text=f"{SRM_NAME} (candidate share {pct(expected)})",
    )
    n, k = cand.calls + legacy.calls, cand.calls
    if n == 0:
        return _no_traffic(gate, look, "", (0, 0))
    share = k / n
    threshold = seq.halved(look.threshold)
    enough = n >= look.min_samples
    log_e = 0.0
    if enough:
        log_e = max(
            seq.binomial_log_e(k, n, high, seq.ABOVE), seq.binomial_log_e(k, n, low, seq.BELOW)
        )
    p = seq.adjusted_p(log_e, threshold, look.alpha)
    return _ladder(
        gate,
        look,
        enough=(n, look.min_samples),
        fails=log_e >= threshold,
        breaks=not low <= share <= high,
        shown=(
            f"the candidate served {pct(share)} of calls ({_counted(k, n)} {look.where()}), "
            f"expected {pct(expected)} (from {pct(low)} to {pct(high)})"
        ),
        evidence=(
            f"a sample ratio mismatch with every look counted ({p_text(p)}): the sides' "
            "calls are not comparable; check that both sides record every call and that "
            "every router uses the migration's percentage"
        ),
        worse=Classification.HIGH if share > high else Classification.LOW,
        candidate=share,
        legacy=1.0 - share,
        effect=share - expected,
        p_value=p,
        samples=(k, n - k),
        method="mixture SPRT on the candidate's share of calls (binomial), both ways",
        log_e=log_e,
        threshold=threshold,
    )


# --- the plan's history ----------------------------------------------------------------------


def check_rollbacks(gate: Gate, rollbacks: int, look: Look) -> Check:
    """``rollbacks <= 2``: how many rollbacks the plan has had since it was applied (the
    controller counts them). A count, not an estimate: no test and no minimum sample."""
    fails = _beyond(gate, float(rollbacks), gate.value)
    shown = f"{rollbacks:,} rollback{'s' if rollbacks != 1 else ''} since the plan was applied"
    return _check(
        gate,
        look,
        result=Result.FAIL if fails else Result.PASS,
        classification=Classification.HIGH if fails else Classification.PASS,
        reason=(
            f"{gate.text} failed: {shown}, limit {gate.value:g}"
            if fails
            else f"{gate.text} passed: {shown}"
        ),
        candidate=float(rollbacks),
        legacy=None,
        effect=None,
        p_value=None,
        samples=(0, 0),
        method="a count of the plan's rollbacks",
        threshold=None,
    )


def may_fail(gate: Gate, cand: Pool, legacy: Pool, look: Look) -> bool:
    """Whether :func:`check_gate` would fail a gate of a counted kind
    (:data:`WINDOWED_KINDS`), without writing its text: most looks at most windows find
    nothing, and are only this cheap test."""
    n = cand.calls
    if n < look.min_samples:
        return False
    kind = gate.kind
    if kind in ("rate", "outcome"):
        worse = seq.ABOVE if gate.lower_is_better else seq.BELOW
        return seq.binomial_log_e(cand.count(gate.metric), n, gate.value, worse) >= look.threshold
    if kind in ("latency", "ttfb"):
        pool = cand.ttfb if kind == "ttfb" else cand
        if pool.calls < look.min_samples:
            return False
        tail = 1.0 - _quantile_of(gate.metric)
        return seq.binomial_log_e(pool.above(gate.value), pool.calls, tail) >= look.threshold
    if kind == "rate_ratio":
        if legacy.calls < look.min_samples:
            return False
        if look.baseline:
            return True  # two bounds: left to the check itself
        metric = RATE_RATIOS[gate.metric]
        share = n / (n + legacy.calls)
        k1, k0 = cand.count(metric), legacy.count(metric)
        return seq.ratio_log_e(k1, k0, share, gate.value) >= look.threshold
    return True


def check_gate(gate: Gate, cand: Pool, legacy: Pool, look: Look) -> Check:
    """Any gate, by its kind."""
    kind = gate.kind
    if kind in ("rate", "outcome"):
        return check_rate(gate, cand, look)
    if kind == "count":
        return check_count(gate, cand, look)
    if kind == "latency":
        return check_latency(gate, cand, look)
    if kind == "ttfb":
        return check_latency(gate, cand.ttfb, look)
    if kind == "rate_ratio":
        return check_rate_ratio(gate, cand, legacy, look)
    if kind == "latency_ratio":
        return check_latency_ratio(gate, cand, legacy, look)
    if kind == "ttfb_ratio":
        return check_latency_ratio(gate, cand.ttfb, legacy.ttfb, look)
    if kind == "rate_diff":
        return check_rate_diff(gate, cand, legacy, look)
    if kind == "mean_ratio":
        return check_mean_ratio(gate, cand, legacy, look)
    if kind == "score":
        return check_score(gate, cand, look)
    if kind == "score_drop":
        return check_score_drop(gate, cand, legacy, look)
    return check_outcome_drop(gate, cand, legacy, look)


# --- the decision matrix ---------------------------------------------------------------------

MATRIX_TESTS = 2
"""The matrix's error rate and p95, each one test in every phase's budget.

Each metric has three rows (P2, P1, P0, thresholds growing) and a row counts only when
every less severe row of its metric fails too. So whatever the candidate's true rate,
the matrix can be wrong only by failing the least severe row that is in fact met: one
test's chance of error per metric, not three (closed testing of nested hypotheses)."""


@functools.lru_cache(maxsize=256)
def matrix_gates(matrix: Matrix, operation: str | None) -> tuple[tuple[Severity, Gate], ...]:
    """Seed 001's rows as gates, most severe first."""
    out: list[tuple[Severity, Gate]] = []
    for level, row in (
        (Severity.P0, matrix.p0),
        (Severity.P1, matrix.p1),
        (Severity.P2, matrix.p2),
    ):
        out.append(
            (
                level,
                Gate(
                    "error_rate",
                    "<=",
                    row.error_rate,
                    operation,
                    GateAction.ROLLBACK,
                    f"{level.value}: error_rate <= {row.error_rate * 100:g}%",
                ),
            )
        )
        out.append(
            (
                level,
                Gate(
                    "p95",
                    "<=",
                    row.p95_ms,
                    operation,
                    GateAction.ROLLBACK,
                    f"{level.value}: p95 <= {row.p95_ms:g}ms",
                ),
            )
        )
    return tuple(out)


def check_matrix(plan: Plan, cand: Pool, look: Look) -> list[tuple[Severity, Check]]:
    """The rows the candidate is shown to exceed, at the most severe level shown.

    Per metric, from P2 up: a row is tried only when the one below it failed."""
    levels: list[tuple[Severity, Check]] = []
    for metric in ("error_rate", "p95"):
        rows = [
            (lv, g) for lv, g in matrix_gates(plan.matrix, plan.operation) if g.metric == metric
        ]
        reached: tuple[Severity, Check] | None = None
        for level, gate in reversed(rows):  # P2, P1, P0
            if not may_fail(gate, cand, _NO_LEGACY, look):
                break
            check = check_gate(gate, cand, _NO_LEGACY, look)
            if check.result is not Result.FAIL:
                break
            reached = (level, check)
        if reached is not None:
            levels.append(reached)
    if not levels:
        return []
    top = min(level.rank for level, _ in levels)
    return [(level, check) for level, check in levels if level.rank == top]


_NO_LEGACY = Pool.empty()


# --- the per-metric table ------------------------------------------------------------------


def compare_metrics(plan: Plan, cand: Pool, legacy: Pool, span: tuple[int, int]) -> list[Check]:
    """Kayenta's table: every metric of the candidate against legacy, informational.

    Each metric is ``high`` or ``low`` when an always-valid test at the plan's
    confidence (this metric alone) shows it beyond ``tolerance``: rates by which side
    their events came from, quantiles by their confidence sequences.
    """
    tol, alpha = plan.tolerance, plan.alpha
    level = -math.log(alpha)
    samples = (cand.calls, legacy.calls)
    few = min(samples) < plan.min_samples
    rows: list[Check] = []
    names = ["error_rate", "fallback_rate"]
    outcome_names = sorted(set(cand.outcomes) | set(legacy.outcomes))
    names += [f"outcome.{k}" for k in outcome_names]
    if cand.calls == 0 or legacy.calls == 0:
        return [
            _metric(
                m, Classification.NODATA, None, None, None, samples, span, "no traffic on one side"
            )
            for m in [*names, "p50", "p95", "p99"]
        ]
    share = cand.calls / (cand.calls + legacy.calls)
    for metric in names:
        k1, k0 = cand.count(metric), legacy.count(metric)
        c, lg = k1 / cand.calls, k0 / legacy.calls
        effect = c / lg if lg else (1.0 if c == 0 else math.inf)
        cls = Classification.NODATA if few else Classification.PASS
        if not few and seq.ratio_log_e(k1, k0, share, 1 + tol) >= level:
            cls = Classification.HIGH
        elif not few and seq.ratio_log_e(k0, k1, 1 - share, 1 + tol) >= level:
            cls = Classification.LOW
        rows.append(
            _metric(
                metric,
                cls,
                c,
                lg,
                effect,
                samples,
                span,
                f"{metric} {pct(c)} ({_counted(k1, cand.calls)}) vs legacy {pct(lg)} "
                f"({_counted(k0, legacy.calls)})",
            )
        )
    half = seq.halved(level)
    for metric in ("p50", "p95", "p99"):
        q = LATENCY_METRICS[metric]
        c_q, l_q = cand.quantile(q), legacy.quantile(q)
        effect = c_q / l_q if c_q is not None and l_q else None
        cls = Classification.NODATA if few or effect is None else Classification.PASS
        if cls is Classification.PASS and effect is not None and effect > 1 + tol:
            upper = seq.quantile_upper_bound(legacy.sketch, q, half)
            if seq.quantile_lower_bound(cand.sketch, q, half) > (1 + tol) * upper:
                cls = Classification.HIGH
        elif cls is Classification.PASS and effect is not None and effect < 1 / (1 + tol):
            upper = seq.quantile_upper_bound(cand.sketch, q, half)
            if seq.quantile_lower_bound(legacy.sketch, q, half) > (1 + tol) * upper:
                cls = Classification.LOW
        rows.append(
            _metric(
                metric,
                cls,
                c_q,
                l_q,
                effect,
                samples,
                span,
                f"pooled {metric} {ms(c_q)} vs legacy {ms(l_q)}",
            )
        )
    return rows


def _metric(
    name: str,
    cls: Classification,
    c: float | None,
    lg: float | None,
    effect: float | None,
    samples: tuple[int, int],
    span: tuple[int, int],
    reason: str,
) -> Check:
    result = {
        Classification.PASS: Result.PASS,
        Classification.NODATA: Result.INCONCLUSIVE,
    }.get(cls, Result.FAIL)
    return Check(
        name=name,
        scope=Scope.METRIC,
        window=PHASE,
        result=result,
        classification=cls,
        candidate=c,
        legacy=lg,
        effect=effect,
        p_value=None,
        samples=samples,
        reason=reason,
        action=None,
        span=span,
        method="always-valid, this metric alone",
    )

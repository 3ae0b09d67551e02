"""Run the real controller on a virtual clock against synthetic traffic.

The plan, every verdict and every percentage change go through a real store, by the
same services as in production: by default the in-memory store
(:class:`~switchover.store.memory.MemoryStore`), or with ``store="sqlite"`` a temporary
SQLite database; for one seed both give the same verdicts. Only the traffic is
synthetic: each simulated minute, for every operation the plan names
(:func:`plan_operations`), calls arrive (Poisson), the migration's current
percentage splits them (binomial), each side fails at its error rate and answers with
log-normal latencies fitted to its p50 and p95. Rollups are fed straight into the
controller's evidence cache, which is what makes a 14-day plan take seconds.
"""

from __future__ import annotations

import functools
import math
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from switchover.control.controller import Controller, Outcome
from switchover.control.evidence import EvidenceCache
from switchover.control.notify import MemoryNotifier
from switchover.control.plans import PlanService
from switchover.core.clock import ManualClock
from switchover.core.judge import Action
from switchover.core.plan import Plan
from switchover.core.plan_state import PlanStatus
from switchover.core.rollup import Rollup, RollupKey
from switchover.core.scores import counter_names
from switchover.core.sketch import _MULTIPLIER, _OFFSET, LatencySketch, bin_value
from switchover.errors import ValidationError
from switchover.rollout.service import RolloutService
from switchover.store.engine import create_store_engine
from switchover.store.memory import MemoryStore
from switchover.store.ports import Repository
from switchover.store.repository import Store
from switchover.store.schema import upgrade

MIGRATION = "simulated"
OPERATION = "call"
Z95 = 1.6448536269514722


@contextmanager
def _memory_store() -> Iterator[Repository]:
    yield MemoryStore()


@contextmanager
def _sqlite_store() -> Iterator[Repository]:
    with tempfile.TemporaryDirectory(prefix="switchover-sim-") as tmp:
        engine = create_store_engine(f"sqlite:///{Path(tmp) / 'sim.db'}")
        upgrade(engine)
        store = Store(engine)
        try:
            yield store
        finally:
            store.dispose()


STORES: dict[str, Callable[[], AbstractContextManager[Repository]]] = {
    "memory": _memory_store,
    "sqlite": _sqlite_store,
}
"""The stores a simulation can run on, by name."""


@dataclass(frozen=True, slots=True)
class SideModel:
    p95_ms: float
    p50_ms: float | None = None
    error_rate: float = 0.0
    outcomes: tuple[tuple[str, float], ...] = ()
    """(name, probability per call), e.g. (("cache_hit", 0.85),)."""
    ttfb_p95_ms: float | None = None
    """Every call is a stream whose time to first chunk has this p95 (None: no streams)."""
    ttfb_p50_ms: float | None = None
    scores: tuple[tuple[str, float, float], ...] = ()
    """(name, mean, standard deviation) of a score every call carries, e.g. a 1-5 rating."""
    recorded: float = 1.0
    """The share of this side's calls that reach the store (below 1: a side that loses
    records, what the sample ratio guardrail catches)."""

    def lognormal(self) -> tuple[float, float]:
        return _lognormal(self.p95_ms, self.p50_ms)

    def ttfb_lognormal(self) -> tuple[float, float] | None:
        if self.ttfb_p95_ms is None:
            return None
        return _lognormal(self.ttfb_p95_ms, self.ttfb_p50_ms)


def _lognormal(p95_ms: float, p50_ms: float | None) -> tuple[float, float]:
    p50 = p50_ms if p50_ms is not None else p95_ms / 2
    p50 = min(p50, p95_ms)
    sigma = max(1e-6, math.log(p95_ms / p50) / Z95)
    return math.log(p50), sigma


@dataclass(frozen=True, slots=True)
class Change:
    """From ``at`` seconds into the run, the candidate behaves as ``candidate``."""

    at: float
    candidate: SideModel


@dataclass(frozen=True, slots=True)
class OperationTraffic:
    """One operation's own traffic, where it differs from :class:`Traffic`'s default."""

    name: str
    rate: float
    legacy: SideModel
    candidate: SideModel
    changes: tuple[Change, ...] = ()


@dataclass(frozen=True, slots=True)
class Traffic:
    """Every operation the plan names (its ``operation``, each gate's ``on OP``; ``call``
    when it names none) gets ``rate`` calls per second of these sides, unless
    ``operations`` gives it its own; an operation given there and not named by the plan
    is generated too."""

    rate: float
    """Calls per second of each operation, both sides together."""
    legacy: SideModel
    candidate: SideModel
    changes: tuple[Change, ...] = ()
    operations: tuple[OperationTraffic, ...] = ()

    def per_operation(self, plan: Plan) -> list[OperationTraffic]:
        own = {o.name: o for o in self.operations}
        names = plan_operations(plan)
        names += [n for n in own if n not in names]
        return [
            own.get(n) or OperationTraffic(n, self.rate, self.legacy, self.candidate, self.changes)
            for n in names
        ]


def plan_operations(plan: Plan) -> list[str]:
    """The operations a plan's judgement reads, in the order it names them (``call``
    when it names none, as every operation together)."""
    names: list[str] = []
    gates = [*plan.guardrails, *(g for p in plan.phases for g in p.gates)]
    for op in (plan.operation, *(g.operation for g in gates)):
        if op is not None and op not in names:
            names.append(op)
    if plan.operation is None and OPERATION not in names:
        names.insert(0, OPERATION)
    return names


@dataclass(frozen=True, slots=True)
class Event:
    at: float
    """Seconds since the simulation began."""
    action: str
    severity: str
    phase: str
    percentage: int
    summary: str
    candidate_calls: int = 0
    """Calls the candidate had served since the simulation began, when this happened."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "at_seconds": self.at,
            "at": _fmt(self.at),
            "action": self.action,
            "severity": self.severity,
            "phase": self.phase,
            "percentage": self.percentage,
            "summary": self.summary,
            "candidate_calls": self.candidate_calls,
        }


@dataclass
class SimulationResult:
    state: str
    """``completed``, ``rolled_back`` or ``holding``."""
    timeline: list[Event]
    simulated_seconds: float
    wall_seconds: float
    verdicts: int
    calls: int
    final_percentage: int
    final_phase: str
    notifications: int
    status: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    candidate_calls: int = 0
    changed_at_calls: tuple[int, ...] = ()
    """For each of the traffic's changes that happened: the candidate's calls until then."""

    @property
    def days_per_second(self) -> float:
        return (self.simulated_seconds / 86400) / max(self.wall_seconds, 1e-9)

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "plan_status": self.status,
            "final_phase": self.final_phase,
            "final_percentage": self.final_percentage,
            "simulated_seconds": self.simulated_seconds,
            "simulated": _fmt(self.simulated_seconds),
            "wall_seconds": round(self.wall_seconds, 3),
            "verdicts": self.verdicts,
            "calls": self.calls,
            "candidate_calls": self.candidate_calls,
            "notifications": self.notifications,
            "timeline": [e.to_dict() for e in self.timeline],
        }


def _gist(text: str) -> str:
    """A hold's reasons without their numbers: the same hold, an interval later."""
    return re.sub(r"[\d.,]+", "#", text)


def _fmt(seconds: float) -> str:
    seconds = int(seconds)
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{d}d {h:02d}:{m:02d}:{s:02d}"


@functools.lru_cache(maxsize=64)
def _latency_bins(mu: float, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sketch bins a log-normal latency falls in: keys, probabilities, values.

    A sketch keeps only how many calls fell in each bin, so drawing those counts from a
    multinomial is drawing the calls themselves, at a cost per bin, not per call.
    """
    from scipy.special import ndtr

    lo, hi = math.exp(mu - 9 * sigma), math.exp(mu + 9 * sigma)
    first = math.ceil(math.log2(lo) * _MULTIPLIER + _OFFSET)
    last = math.ceil(math.log2(hi) * _MULTIPLIER + _OFFSET)
    keys = np.arange(first, last + 1, dtype=np.int64)
    upper = (keys - _OFFSET) / _MULTIPLIER * math.log(2)  # log of each bin's upper edge
    cdf = ndtr((np.concatenate(([upper[0] - 1 / _MULTIPLIER * math.log(2)], upper)) - mu) / sigma)
    probs = np.diff(cdf)
    probs[0] += cdf[0]
    probs[-1] += 1.0 - cdf[-1]
    probs = np.clip(probs, 0.0, None)
    probs /= probs.sum()
    values = np.array([bin_value(int(k)) for k in keys])
    return keys, probs, values


def _draw(
    rng: np.random.Generator, sk: LatencySketch, lognormal: tuple[float, float], n: int
) -> None:
    keys, probs, values = _latency_bins(*lognormal)
    counts = rng.multinomial(n, probs)
    hit = np.flatnonzero(counts)
    sk.bins = dict(zip(keys[hit].tolist(), counts[hit].tolist(), strict=True))
    sk.count = n
    sk.sum = float(counts[hit] @ values[hit])
    sk.min = float(values[hit[0]])
    sk.max = float(values[hit[-1]])


def _side_rollup(rng: np.random.Generator, model: SideModel, n: int, *, candidate: bool) -> Rollup:
    r = Rollup()
    if n <= 0:
        return r
    _draw(rng, r.sketch, model.lognormal(), n)
    ttfb = model.ttfb_lognormal()
    if ttfb is not None:
        _draw(rng, r.first_chunk, ttfb, n)
    r.count = n
    errors = int(rng.binomial(n, model.error_rate)) if model.error_rate > 0 else 0
    if errors:
        r.errors = errors
        r.error_types = {"SimulatedError": errors}
        if candidate:
            r.fallbacks = errors
    for name, p in model.outcomes:
        hits = int(rng.binomial(n, p))
        if hits:
            r.outcomes[name] = float(hits)
    for name, mean, sd in model.scores:
        r.outcomes.update(_score_sums(rng, name, mean, sd, n))
    return r


def _score_sums(
    rng: np.random.Generator, name: str, mean: float, sd: float, n: int
) -> dict[str, float]:
    """The counters of ``n`` normal scores, drawn as their sufficient statistics: the
    sample mean is normal, the sample variance a scaled chi-square, independent."""
    n_name, sum_name, sq_name = counter_names(name)
    sample_mean = float(rng.normal(mean, sd / math.sqrt(n)))
    spread = float(sd * sd * rng.chisquare(n - 1)) if n > 1 else 0.0
    return {
        n_name: float(n),
        sum_name: n * sample_mean,
        sq_name: spread + n * sample_mean * sample_mean,
    }


class Simulation:
    def __init__(
        self,
        plan: Plan,
        source: str,
        traffic: Traffic,
        *,
        seed: int = 0,
        max_seconds: float | None = None,
        start: datetime | None = None,
        on_event: Callable[[Event], None] | None = None,
        stop_on_rollback: bool = True,
        store: str = "memory",
    ) -> None:
        if store not in STORES:
            raise ValidationError(
                f"simulation store {store!r} is unknown; use one of: {', '.join(STORES)}",
                field="store",
            )
        self.store = store
        self.plan = plan
        self.source = source
        self.traffic = traffic
        self.rng = np.random.default_rng(seed)
        self.max_seconds = (
            max_seconds or max(plan.total_duration() * 1.5, 3600.0) + plan.interval * 3
        )
        self.start = start or datetime(2026, 1, 5, tzinfo=UTC)
        self.on_event = on_event
        self.stop_on_rollback = stop_on_rollback

    def run(self) -> SimulationResult:
        wall = time.perf_counter()
        with STORES[self.store]() as store:
            return self._run(store, wall)

    def _run(self, store: Repository, wall: float) -> SimulationResult:
        plan, traffic = self.plan, self.traffic
        clock = ManualClock(self.start)
        rollout = RolloutService(store, clock)
        rollout.create(
            MIGRATION,
            features=plan.features(),
            stickiness="user_id",
            actor="simulator",
            reason="simulation",
        )
        PlanService(store, clock).apply(MIGRATION, self.source, "simulation", actor="simulator")
        cache = EvidenceCache(None)
        notifier = MemoryNotifier()
        controller = Controller(store, clock, notifier=notifier, cache=cache, settle=0.0, env={})
        timeline: list[Event] = []
        percentage, enabled = 0, True
        phase_name = "(not started)"
        verdicts = calls = cand_calls = 0
        operations = traffic.per_operation(plan)
        changed_at: list[int] = []
        first_changes = sorted(operations[0].changes, key=lambda c: c.at)
        start_ts = self.start.timestamp()
        elapsed = 0.0
        state = "holding"
        final_status = PlanStatus.RUNNING.value
        step = 60.0
        interval = plan.interval
        next_judge = 0.0
        while elapsed < self.max_seconds:
            if next_judge <= elapsed:
                outcomes: Sequence[Outcome] = controller.tick()
                next_judge = elapsed + interval
                for o in outcomes:
                    verdicts += 1
                    v = o.verdict
                    if o.migration_after is not None:
                        percentage = o.migration_after.percentage
                        enabled = o.migration_after.enabled
                    phase_name = o.state.phase_name
                    final_status = o.state.status.value
                    if v.action not in (Action.CONTINUE,) and not (
                        v.action is Action.HOLD
                        and timeline
                        and timeline[-1].action == "hold"
                        and _gist(timeline[-1].summary) == _gist("; ".join(v.reasons[:2]))
                    ):
                        event = Event(
                            elapsed,
                            v.action.value,
                            v.severity.value,
                            phase_name,
                            percentage if enabled else 0,
                            "; ".join(v.reasons[:2]),
                            cand_calls,
                        )
                        timeline.append(event)
                        if self.on_event is not None:
                            self.on_event(event)
                    if v.action is Action.COMPLETE:
                        state = "completed"
                    elif v.action in (Action.ROLLBACK_PARTIAL, Action.ROLLBACK_TOTAL):
                        state = "rolled_back"
                if state == "completed" or (state == "rolled_back" and self.stop_on_rollback):
                    break
            for i, change in enumerate(first_changes):
                if change.at <= elapsed and len(changed_at) <= i:
                    changed_at.append(cand_calls)
            share = percentage / 100 if enabled else 0.0
            minute = int((start_ts + elapsed) // 60)
            for op in operations:
                candidate = op.candidate
                for change in sorted(op.changes, key=lambda c: c.at):
                    if change.at <= elapsed:
                        candidate = change.candidate
                lam = op.rate * 60
                n = int(self.rng.poisson(lam)) if lam > 0 else 0
                n_cand = int(self.rng.binomial(n, share)) if n and share else 0
                for side, count, model in (
                    ("legacy", n - n_cand, op.legacy),
                    ("candidate", n_cand, candidate),
                ):
                    if count and model.recorded < 1.0:
                        count = int(self.rng.binomial(count, model.recorded))
                    if count:
                        cache.add(
                            RollupKey(minute, MIGRATION, op.name, side),
                            _side_rollup(self.rng, model, count, candidate=side == "candidate"),
                        )
                calls += n
                cand_calls += n_cand
            clock.advance(step)
            elapsed += step
        return SimulationResult(
            state=state,
            timeline=timeline,
            simulated_seconds=elapsed,
            wall_seconds=time.perf_counter() - wall,
            verdicts=verdicts,
            calls=calls,
            final_percentage=percentage if enabled else 0,
            final_phase=phase_name,
            notifications=len(notifier.sent),
            status=final_status,
            candidate_calls=cand_calls,
            changed_at_calls=tuple(changed_at),
        )


def simulate(plan: Plan, source: str, traffic: Traffic, **kw: Any) -> SimulationResult:
    return Simulation(plan, source, traffic, **kw).run()

"""The controller: each interval, judge every active plan, store the verdict, act, notify.

Only the leader acts: the holder of the store's ``controller`` lock (an advisory lock on
PostgreSQL, a lease row on SQLite, see :mod:`switchover.store.locks`; a lease in memory
on :class:`~switchover.store.memory.MemoryStore`). Each verdict is written in the same
transaction as the change it causes (plan phase, migration percentage and features,
audit row with actor ``controller``); a unique (migration, interval) key makes a second
writer's transaction roll back, so two controllers on one store never produce two
verdicts for one interval, nor two changes.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from switchover.control.evidence import EvidenceCache
from switchover.control.notify import EVENTS, Notification, Webhook
from switchover.core import migration as mig
from switchover.core.clock import Clock, SystemClock
from switchover.core.judge import Action, Severity, Situation, Verdict, judge, srm_applies
from switchover.core.migration import Migration
from switchover.core.plan import Plan
from switchover.core.plan_state import PlanState, PlanStatus, moved
from switchover.core.rollup import minute_of
from switchover.core.verdict import held_for_operator
from switchover.errors import ConflictError
from switchover.rollout.service import change_in
from switchover.store import control as repo
from switchover.store.ports import Repository, Transaction

log = logging.getLogger("switchover.controller")

ACTOR = "controller"
LOCK_NAME = "controller"
ROLLBACK_ACTIONS = ("rollback_partial", "rollback_total")
"""The audit rows a ``rollbacks <= 2`` gate counts."""
ROLLBACK_AUDIT_ROWS = 1000
"""The newest audit rows read to count them (changes only: a plan has far fewer)."""
SETTLE_SECONDS = 10.0
"""Recorders flush every few seconds: a minute is judged once it is this old."""


class Sender(Protocol):
    """Where the controller's notifications go: a :class:`~switchover.control.notify.Notifier`
    (webhooks over HTTP) or a :class:`~switchover.control.notify.MemoryNotifier`."""

    def send(self, targets: Sequence[Webhook], n: Notification) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one judgement did."""

    migration: str
    verdict: Verdict
    verdict_id: int | None
    """None when another controller had already judged this interval."""
    state: PlanState
    migration_after: Migration | None


def phase_features(plan: Plan, index: int) -> dict[str, bool]:
    """The features a phase turns on, and the plan's other features off."""
    if index < 0:
        return dict.fromkeys(plan.features(), False)
    on = plan.phases[index].features
    if on is None:
        return {}
    return {f: f in on for f in plan.features()}


def phase_percentage(plan: Plan, index: int) -> int:
    return plan.phases[index].percentage if index >= 0 else 0


def resolve_targets(plan: Plan, env: Mapping[str, str]) -> list[Webhook]:
    """The webhooks a plan's ``notify:`` names, URLs and secrets read from ``env``."""
    targets = []
    for i, spec in enumerate(plan.notify):
        url = spec.url or env.get(spec.url_env or "", "")
        if not url:
            log.warning("plan %s: notify[%d] skipped: $%s is not set", plan.name, i, spec.url_env)
            continue
        secret = env.get(spec.secret_env) if spec.secret_env else None
        if spec.secret_env and not secret:
            log.warning(
                "plan %s: notify[%d]: $%s is not set; sending unsigned",
                plan.name,
                i,
                spec.secret_env,
            )
        try:
            targets.append(Webhook(url=url, secret=secret, events=frozenset(spec.events or EVENTS)))
        except ValueError:
            log.warning("plan %s: notify[%d] skipped: not an http(s) URL", plan.name, i)
    return targets


class Controller:
    def __init__(
        self,
        store: Repository,
        clock: Clock | None = None,
        *,
        notifier: Sender | None = None,
        cache: EvidenceCache | None = None,
        settle: float = SETTLE_SECONDS,
        env: Mapping[str, str] | None = None,
        holder: str | None = None,
    ) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.notifier = notifier
        self.cache = cache if cache is not None else EvidenceCache(store)
        self.settle = settle
        self.env = env if env is not None else os.environ
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.on_outcome: Callable[[Outcome], None] | None = None

    # one pass -----------------------------------------------------------------------

    def tick(self) -> list[Outcome]:
        """Judge every active plan whose interval is due; returns what was done."""
        now = self.clock.now()
        with self.store.read() as tx:
            states = [s for s in repo.list_plans(tx) if s.active]
            # what the sample ratio guardrail compares with, read once for every plan
            migrations = {m.name: m for m in tx.list_migrations()} if states else {}
        due = []
        for state in states:
            interval = int(now.timestamp() // state.plan.interval)
            if state.last_interval is None or interval > state.last_interval:
                due.append((state, interval))
        if not due:
            return []
        horizon = max(horizon_minutes(s.plan) for s in states)
        self.cache.horizon = max(self.cache.horizon, horizon)
        now_minute = minute_of(now.timestamp())
        self.cache.track([s.migration for s in states], now_minute)
        self.cache.refresh(now_minute)
        outcomes = []
        for state, interval in due:
            outcome = self.judge_and_apply(state, interval, migrations.get(state.migration))
            if outcome is not None:
                outcomes.append(outcome)
                if self.on_outcome is not None:
                    self.on_outcome(outcome)
        return outcomes

    def verdict_for(self, state: PlanState, migration: Migration | None = None) -> Verdict:
        """The judgement of ``state`` now, without acting on it (``migration``: as read
        this tick; else read here where the sample ratio guardrail needs it)."""
        return judge(self.situation_for(state, migration), self.cache.evidence(state.migration))

    def situation_for(self, state: PlanState, migration: Migration | None = None) -> Situation:
        """What a judgement of ``state`` now knows besides the evidence: the phase, the
        clock less the settling delay, approvals, rollbacks and the traffic share."""
        horizon = self.clock.now().timestamp() - self.settle
        situation = Situation(
            plan=state.plan,
            phase_index=state.phase_index,
            phase_started=state.phase_started_at.timestamp(),
            now=horizon,
            status=state.status.value,
            approved=state.approved_next(),
            rollbacks=self._rollbacks(state),
        )
        if state.phase_index >= 0 and srm_applies(state.plan, state.phase_index):
            m = migration
            if m is None:
                with self.store.read() as tx:
                    m = tx.get_migration(state.migration)
            situation = replace(
                situation,
                share_known=m.enabled and not m.tenants,
                percentage=m.percentage,
                changed_at=m.updated_at.timestamp() if m.updated_at else None,
            )
        return situation

    def _rollbacks(self, state: PlanState) -> int:
        """The plan's rollbacks since it was applied (audit rows of partial and total
        rollbacks, the controller's and operators'): read only for a plan whose gates
        count them."""
        plan = state.plan
        gates = (*plan.guardrails, *(g for p in plan.phases for g in p.gates))
        if not any(g.kind == "rollbacks" for g in gates):
            return 0
        with self.store.read() as tx:
            rows = tx.list_audit(state.migration, limit=ROLLBACK_AUDIT_ROWS)
        return sum(1 for r in rows if r.action in ROLLBACK_ACTIONS and r.at >= state.applied_at)

    def judge_and_apply(
        self, state: PlanState, interval: int, migration: Migration | None = None
    ) -> Outcome | None:
        verdict = self.verdict_for(state, migration)
        now = self.clock.now()
        try:
            with self.store.transaction() as tx:
                current = repo.find_plan(tx, state.migration, for_update=True)
                if current is None or current.version != state.version:
                    return None
                if current.last_interval is not None and current.last_interval >= interval:
                    return None
                verdict = self._operator_wins(tx, current, verdict)
                vid = repo.insert_verdict(
                    tx,
                    migration=state.migration,
                    interval=interval,
                    at=now,
                    phase_index=state.phase_index,
                    phase=state.phase_name,
                    action=verdict.action.value,
                    severity=verdict.severity.value,
                    summary=verdict.summary(),
                    data=verdict.to_dict(),
                    actor=ACTOR,
                )
                if vid is None:
                    return None
                new_state, after = self._apply(tx, state, verdict, now)
                new_state = replace(
                    new_state,
                    version=state.version + 1,
                    last_interval=interval,
                    last_action=verdict.action.value,
                    updated_at=now,
                )
                repo.update_plan(tx, new_state, expected_version=state.version)
        except ConflictError:
            return None
        outcome = Outcome(state.migration, verdict, vid, new_state, after)
        self._notify(state, new_state, verdict)
        return outcome

    @staticmethod
    def _operator_wins(tx: Transaction, state: PlanState, verdict: Verdict) -> Verdict:
        """Never change a migration an operator killed, or whose plan they paused."""
        if state.status is PlanStatus.PAUSED:
            return held_for_operator(verdict, "the plan is paused by an operator")
        if not tx.get_migration(state.migration).enabled:
            return held_for_operator(verdict, "the migration is killed (master switch off)")
        return verdict

    def _apply(
        self, tx: Transaction, state: PlanState, verdict: Verdict, now: Any
    ) -> tuple[PlanState, Migration | None]:
        plan, action = state.plan, verdict.action
        why = verdict.summary()

        def change(name: str, transform: Callable[[Migration], Migration]) -> Migration:
            return change_in(tx, state.migration, name, transform, actor=ACTOR, reason=why, now=now)

        if action in (Action.START, Action.ADVANCE):
            target = verdict.target_index
            assert target is not None
            pct, feats = phase_percentage(plan, target), phase_features(plan, target)
            after = change("advance", lambda m: mig.with_phase(m, pct, feats))
            return moved(state, target, now=now, status=PlanStatus.RUNNING), after
        if action is Action.COMPLETE:
            after = change("complete", mig.completed)
            return replace(state, status=PlanStatus.COMPLETED), after
        if action is Action.ROLLBACK_PARTIAL:
            target = verdict.target_index if verdict.target_index is not None else -1
            pct, feats = phase_percentage(plan, target), phase_features(plan, target)
            after = change("rollback_partial", lambda m: mig.rolled_back_to(m, pct, feats))
            return moved(state, target, now=now, status=PlanStatus.ROLLED_BACK), after
        if action is Action.ROLLBACK_TOTAL:
            keep = plan.matrix.p0_keep
            if keep:
                after = change("rollback_total", lambda m: mig.rolled_back_keeping(m, keep))
            else:
                after = change("rollback_total", mig.rolled_back_total)
            return moved(state, -1, now=now, status=PlanStatus.ABORTED), after
        if verdict.awaiting_approval:
            return replace(state, approval_requested=True), None
        return state, None

    # notifications --------------------------------------------------------------------

    def _notify(self, before: PlanState, after: PlanState, verdict: Verdict) -> None:
        if self.notifier is None or not before.plan.notify:
            return
        event = self._event(before, verdict)
        if event is None:
            return
        try:
            self._send(before, after, verdict, event)
        except Exception as exc:  # a notifier must never stop the controller
            # the type only: a message could carry a webhook URL
            log.warning("notification for %s not queued: %s", before.migration, type(exc).__name__)

    def _send(self, before: PlanState, after: PlanState, verdict: Verdict, event: str) -> None:
        assert self.notifier is not None
        plan = before.plan
        target = after.phase_name
        text = {
            "phase_change": f"{before.migration}: {before.phase_name} → {target} "
            f"({phase_percentage(plan, after.phase_index)}%)",
            "completed": f"{before.migration}: rollout complete at {before.phase_name}",
            "rollback": f"{before.migration}: {verdict.action.value} from {before.phase_name} "
            f"to {target} ({phase_percentage(plan, after.phase_index)}%)",
            "hold": f"{before.migration}: holding at {before.phase_name}",
            "approval_needed": f"{before.migration}: approval needed to leave "
            f"{before.phase_name}: switchover approve {before.migration}",
        }[event]
        n = Notification(
            event=event,
            migration=before.migration,
            text=text,
            at=self.clock.now(),
            severity=verdict.severity.value,
            fields={
                "plan": plan.name,
                "phase": before.phase_name,
                "to_phase": target,
                "percentage": phase_percentage(plan, after.phase_index),
                "action": verdict.action.value,
                "reasons": list(verdict.reasons[:10]),
            },
        )
        self.notifier.send(resolve_targets(plan, self.env), n)

    @staticmethod
    def _event(before: PlanState, verdict: Verdict) -> str | None:
        action = verdict.action
        if action in (Action.START, Action.ADVANCE):
            return "phase_change"
        if action is Action.COMPLETE:
            return "completed"
        if action in (Action.ROLLBACK_PARTIAL, Action.ROLLBACK_TOTAL):
            return "rollback"
        if verdict.awaiting_approval:
            return None if before.approval_requested else "approval_needed"
        if action is Action.HOLD and (
            verdict.severity is Severity.P2 or before.last_action != "hold"
        ):
            return "hold"
        return None

    # the loop -------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, poll: float = 1.0) -> None:
        """Act while leader, until ``stop`` is set; several replicas may run this."""
        lock = self.store.lock(LOCK_NAME, self.holder, ttl=max(10.0, 5 * poll), clock=self.clock)
        leading = False
        try:
            while not stop.is_set():
                try:
                    now_leading = lock.acquire()
                    if now_leading != leading:
                        log.info(
                            "controller %s %s leadership",
                            self.holder,
                            "took" if now_leading else "lost",
                        )
                        leading = now_leading
                    if leading:
                        self.tick()
                except Exception as exc:
                    log.warning("controller pass failed: %s", type(exc).__name__)
                stop.wait(poll)
        finally:
            lock.release()


def start_in_thread(
    controller: Controller, *, poll: float = 1.0
) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(
        target=controller.run,
        args=(stop,),
        kwargs={"poll": poll},
        name="switchover-controller",
        daemon=True,
    )
    thread.start()
    return thread, stop


def horizon_minutes(plan: Plan) -> int:
    """Minutes the evidence cache keeps one by one for ``plan``: the windows that end now,
    the baseline before a 100 % phase (read when the phase begins), and what came since
    the last judgement."""
    return int(max(2 * plan.window, plan.recent, plan.window + 2 * plan.interval) // 60) + 2

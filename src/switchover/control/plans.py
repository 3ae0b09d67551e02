"""Manual control of plans: apply, promote, pause, resume, approve, abort, rollback levels.

Every action is audited on the migration (who, when, why, the plan's state before and
after); actions that move traffic change the migration in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from switchover.core import migration as mig
from switchover.core.clock import Clock, SystemClock
from switchover.core.migration import Migration, Override
from switchover.core.plan import Plan, check_features, load_plan
from switchover.core.plan_state import PlanState, PlanStatus, moved
from switchover.errors import ConflictError, ValidationError
from switchover.rollout.service import actor_name, change_in, reason_text
from switchover.store import control as repo
from switchover.store.control import VerdictRecord
from switchover.store.ports import Repository as Store
from switchover.store.ports import Transaction as Tx

MAX_PLAN_BYTES = 256 * 1024


class RollbackLevel(StrEnum):
    TENANT = "tenant"
    PARTIAL = "partial"
    TOTAL = "total"


def _plan_audit(
    tx: Tx,
    action: str,
    before: PlanState | None,
    after: PlanState | None,
    actor: str,
    reason: str,
    now: datetime,
) -> None:
    m = tx.get_migration((after or before).migration)  # type: ignore[union-attr]
    tx.add_audit(
        migration=m.name,
        action=action,
        actor=actor,
        at=now,
        reason=reason,
        before=_brief(before),
        after=_brief(after),
        version=m.version,
    )


def _brief(state: PlanState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "plan": state.plan.name,
        "status": state.status.value,
        "phase": state.phase_name,
        "phase_index": state.phase_index,
        "percentage": state.plan.phases[state.phase_index].percentage
        if state.phase_index >= 0
        else 0,
    }


def _step_plan_back(
    tx: Tx,
    name: str,
    index_of: Callable[[Plan], int],
    status: PlanStatus,
    action: str,
    actor: str,
    why: str,
    now: datetime,
) -> PlanState | None:
    """After a rollback by hand, an active plan stands at the phase the traffic fell to."""
    state = repo.find_plan(tx, name, for_update=True)
    if state is None or not state.active:
        return None
    new_state = replace(
        moved(state, index_of(state.plan), now=now, status=status), version=state.version + 1
    )
    repo.update_plan(tx, new_state, expected_version=state.version)
    _plan_audit(tx, action, state, new_state, actor, why, now)
    return new_state


def set_plan_status_in(
    tx: Tx,
    name: str,
    status: PlanStatus,
    action: str,
    *,
    actor: str,
    reason: str,
    now: datetime,
    only_from: tuple[PlanStatus, ...],
) -> tuple[PlanState, PlanState] | None:
    """Move the plan to ``status`` inside the caller's transaction, if it is in one of
    ``only_from``; ``None`` (nothing written) otherwise. Entering ``running`` starts a
    fresh phase window: evidence from before does not count."""
    state = repo.find_plan(tx, name, for_update=True)
    if state is None or state.status not in only_from:
        return None
    started = now if status is PlanStatus.RUNNING else state.phase_started_at
    after = replace(
        state, status=status, phase_started_at=started, version=state.version + 1, updated_at=now
    )
    repo.update_plan(tx, after, expected_version=state.version)
    _plan_audit(tx, action, state, after, actor, reason, now)
    return state, after


class PlanService:
    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or SystemClock()

    # reads ----------------------------------------------------------------------------

    def get(self, name: str) -> PlanState:
        with self.store.read() as tx:
            tx.get_migration(name)
            return repo.get_plan(tx, name)

    def find(self, name: str) -> PlanState | None:
        with self.store.read() as tx:
            return repo.find_plan(tx, name)

    def list(self) -> list[PlanState]:
        with self.store.read() as tx:
            return repo.list_plans(tx)

    def verdicts(self, name: str, *, limit: int = 20) -> list[VerdictRecord]:
        if not 1 <= limit <= 1000:
            raise ValidationError("`limit` must be from 1 to 1000", field="limit")
        with self.store.read() as tx:
            tx.get_migration(name)
            return repo.list_verdicts(tx, name, limit=limit)

    def status(self, name: str) -> dict[str, Any] | None:
        """The plan part of ``switchover status``: phase, time in phase, last verdict."""
        with self.store.read() as tx:
            state = repo.find_plan(tx, name)
            last = repo.list_verdicts(tx, name, limit=1) if state else []
        if state is None:
            return None
        data = state.to_dict(now=self.clock.now())
        data["last_verdict"] = last[0].to_dict(detail=False) if last else None
        return data

    # apply ----------------------------------------------------------------------------

    def apply(
        self, name: str, source: str, source_name: str, *, actor: str, reason: str | None = None
    ) -> PlanState:
        """Validate and attach a plan; the controller starts it at its next interval."""
        actor, why = actor_name(actor), reason_text(reason)
        if len(source.encode()) > MAX_PLAN_BYTES:
            raise ValidationError(f"{source_name}: larger than 256 KiB", field="plan")
        plan = load_plan(source, source_name)
        now = self.clock.now()
        with self.store.transaction() as tx:
            m = tx.get_migration(name, for_update=True)
            check_features(plan, list(m.features))
            if not m.enabled:
                raise ConflictError(
                    f"migration {name!r} is killed (master switch off); "
                    f"'switchover resume {name}' first, then apply the plan",
                    field="name",
                )
            before = repo.find_plan(tx, name)
            if before is not None and before.active:
                raise ConflictError(
                    f"migration {name!r} already runs plan {before.plan.name!r} "
                    f"({before.status.value}, phase {before.phase_name}); abort it first "
                    f"with 'switchover abort {name}' or replace it (`replace`)",
                    field="name",
                )
            state = PlanState(
                migration=name,
                plan=plan,
                source=source,
                source_name=source_name,
                status=PlanStatus.RUNNING,
                phase_index=-1,
                phase_started_at=now,
                applied_at=now,
                applied_by=actor,
                updated_at=now,
                version=(before.version + 1) if before else 1,
            )
            repo.put_plan(tx, state)
            _plan_audit(tx, "plan_apply", before, state, actor, why, now)
        return state

    def replace_plan(
        self, name: str, source: str, source_name: str, *, actor: str, reason: str | None = None
    ) -> PlanState:
        """Apply a new plan over an active one, keeping the phase of the same name if any."""
        old = self.find(name)
        if old is not None and old.active:
            self.set_status(
                name,
                PlanStatus.ABORTED,
                "plan_replace",
                actor=actor,
                reason=reason,
                touch_migration=False,
            )
        state = self.apply(name, source, source_name, actor=actor, reason=reason)
        if old is not None and old.active and old.phase_index >= 0:
            keep = old.plan.phases[old.phase_index].name
            if any(p.name == keep for p in state.plan.phases):
                index = state.plan.phase_index(keep)
                from switchover.control.controller import phase_features, phase_percentage

                now = self.clock.now()
                with self.store.transaction() as tx:
                    current = repo.get_plan(tx, name, for_update=True)
                    new = replace(
                        moved(current, index, now=now, status=PlanStatus.RUNNING),
                        version=current.version + 1,
                    )
                    repo.update_plan(tx, new, expected_version=current.version)
                    # the phase kept is the new plan's: its percentage and features at once
                    pct = phase_percentage(new.plan, index)
                    feats = phase_features(new.plan, index)
                    change_in(
                        tx,
                        name,
                        "plan_replace_phase",
                        lambda m: mig.with_phase(m, pct, feats),
                        actor=actor_name(actor),
                        reason=reason_text(reason) or f"plan replaced; phase {keep} as planned",
                        now=now,
                        skip_unchanged=True,
                    )
                state = new
        return state

    # manual moves ---------------------------------------------------------------------

    def _mutate(
        self,
        name: str,
        action: str,
        fn: Callable[[Tx, PlanState, datetime, str, str], tuple[PlanState, Migration | None]],
        *,
        actor: str,
        reason: str | None,
    ) -> PlanState:
        actor, why = actor_name(actor), reason_text(reason)
        now = self.clock.now()
        with self.store.transaction() as tx:
            before = repo.get_plan(tx, name, for_update=True)
            after, _ = fn(tx, before, now, actor, why)
            after = replace(after, version=before.version + 1, updated_at=now)
            repo.update_plan(tx, after, expected_version=before.version)
            _plan_audit(tx, action, before, after, actor, why, now)
        return after

    @staticmethod
    def _require_active(state: PlanState, verb: str) -> None:
        if not state.active:
            raise ConflictError(
                f"the plan of {state.migration!r} is {state.status.value}; there is nothing "
                f"to {verb} (apply a plan again with 'switchover plan apply')",
                field="status",
            )

    def promote(self, name: str, *, actor: str, reason: str | None = None) -> PlanState:
        """Enter the next phase now (an operator's promote also approves it)."""

        def fn(
            tx: Tx, s: PlanState, now: datetime, who: str, why: str
        ) -> tuple[PlanState, Migration | None]:
            self._require_active(s, "promote")
            plan = s.plan
            if s.phase_index + 1 >= len(plan.phases):
                after = change_in(
                    tx,
                    name,
                    "complete",
                    mig.completed,
                    actor=who,
                    reason=why or "promoted past the last phase",
                    now=now,
                )
                return replace(s, status=PlanStatus.COMPLETED), after
            target = s.phase_index + 1
            from switchover.control.controller import phase_features, phase_percentage

            pct, feats = phase_percentage(plan, target), phase_features(plan, target)
            after = change_in(
                tx,
                name,
                "promote",
                lambda m: mig.with_phase(m, pct, feats),
                actor=who,
                reason=why or f"promoted to {plan.phases[target].name}",
                now=now,
            )
            return moved(s, target, now=now, status=PlanStatus.RUNNING), after

        return self._mutate(name, "plan_promote", fn, actor=actor, reason=reason)

    def approve(self, name: str, *, actor: str, reason: str | None = None) -> PlanState:
        def fn(
            tx: Tx, s: PlanState, now: datetime, who: str, why: str
        ) -> tuple[PlanState, Migration | None]:
            self._require_active(s, "approve")
            target = s.phase_index + 1
            if target >= len(s.plan.phases):
                raise ConflictError(
                    f"the plan of {name!r} is in its last phase; there is no next phase to approve",
                    field="phase",
                )
            return replace(s, approved_index=target), None

        return self._mutate(name, "plan_approve", fn, actor=actor, reason=reason)

    def set_status(
        self,
        name: str,
        status: PlanStatus,
        action: str,
        *,
        actor: str,
        reason: str | None = None,
        touch_migration: bool = True,
    ) -> PlanState:
        def fn(
            tx: Tx, s: PlanState, now: datetime, who: str, why: str
        ) -> tuple[PlanState, Migration | None]:
            self._require_active(s, action.removeprefix("plan_"))
            if status is PlanStatus.RUNNING:
                m = tx.get_migration(name)
                if not m.enabled:
                    raise ConflictError(
                        f"migration {name!r} is killed; 'switchover resume {name} --plan' switches "
                        "it back on and resumes the plan",
                        field="name",
                    )
                # a fresh window: evidence from before the pause does not count for the phase
                return replace(s, status=status, phase_started_at=now), None
            if status is PlanStatus.ABORTED and touch_migration:
                after = change_in(
                    tx,
                    name,
                    "rollback_total",
                    mig.rolled_back_total,
                    actor=who,
                    reason=why or "plan aborted",
                    now=now,
                )
                return moved(s, -1, now=now, status=status), after
            return replace(s, status=status), None

        return self._mutate(name, action, fn, actor=actor, reason=reason)

    def pause(self, name: str, **kw: Any) -> PlanState:
        return self.set_status(name, PlanStatus.PAUSED, "plan_pause", **kw)

    def resume(self, name: str, **kw: Any) -> PlanState:
        return self.set_status(name, PlanStatus.RUNNING, "plan_resume", **kw)

    def abort(self, name: str, **kw: Any) -> PlanState:
        return self.set_status(name, PlanStatus.ABORTED, "plan_abort", **kw)

    # rollback levels (seed 003 §7) ----------------------------------------------------

    def rollback(
        self,
        name: str,
        level: str,
        *,
        actor: str,
        reason: str | None = None,
        tenant_id: str | None = None,
        target_percentage: object = None,
    ) -> dict[str, Any]:
        try:
            lvl = RollbackLevel(level)
        except ValueError:
            raise ValidationError(
                f"`level` {level!r} is not one of tenant, partial, total, data", field="level"
            ) from None
        actor, why = actor_name(actor), reason_text(reason)
        now = self.clock.now()
        if lvl is RollbackLevel.TENANT:
            if not tenant_id:
                raise ValidationError(
                    "a tenant rollback needs `tenant_id`: the tenant to force onto legacy",
                    field="tenant_id",
                )
            tenant = mig.validate_tenant_id(tenant_id)
            with self.store.transaction() as tx:
                m = change_in(
                    tx,
                    name,
                    "rollback_tenant",
                    lambda m: mig.with_tenant(m, tenant, Override.DENY),
                    actor=actor,
                    reason=why,
                    now=now,
                    known_tenant=tenant,
                )
            return {"level": lvl.value, "migration": m.to_dict(), "tenant": tenant, "plan": None}
        if lvl is RollbackLevel.PARTIAL:
            if target_percentage is None:
                raise ValidationError(
                    "a partial rollback needs `target_percentage`: a percentage below the "
                    "current one",
                    field="target_percentage",
                )
            pct = mig.parse_percentage(target_percentage, field="target_percentage")
            with self.store.transaction() as tx:
                current = tx.get_migration(name)
                if pct >= current.percentage and current.enabled:
                    raise ValidationError(
                        f"`target_percentage` {pct} is not below the current "
                        f"{current.percentage} %; a rollback lowers the percentage",
                        field="target_percentage",
                    )
                m = change_in(
                    tx,
                    name,
                    "rollback_partial",
                    lambda m: replace(mig.with_percentage(m, pct), state=mig.State.ROLLED_BACK),
                    actor=actor,
                    reason=why,
                    now=now,
                )
                new_state = _step_plan_back(
                    tx,
                    name,
                    lambda plan: max(
                        (i for i, p in enumerate(plan.phases) if p.percentage <= pct), default=-1
                    ),
                    PlanStatus.ROLLED_BACK,
                    "plan_rollback",
                    actor,
                    why,
                    now,
                )
            return {
                "level": lvl.value,
                "migration": m.to_dict(),
                "plan": new_state.to_dict() if new_state else None,
            }
        with self.store.transaction() as tx:
            m = change_in(
                tx, name, "rollback_total", mig.rolled_back_total, actor=actor, reason=why, now=now
            )
            new_state = _step_plan_back(
                tx, name, lambda _: -1, PlanStatus.ABORTED, "plan_abort", actor, why, now
            )
        return {
            "level": lvl.value,
            "migration": m.to_dict(),
            "plan": new_state.to_dict() if new_state else None,
        }

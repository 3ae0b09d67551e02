"""What a command would change, said before it runs: the dashboard's confirmation.

The previews use the same pure transitions of :mod:`switchover.core.migration` as the
handlers, on the state read now, so "before → after" is what the handler would write
if nobody changes the migration first (and if somebody does, the handler refuses: the
confirmation carries the version it was shown at).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from switchover.commands import model as c
from switchover.commands.handlers import tenant_override
from switchover.commands.outcome import Change, diff, plan_view
from switchover.core import migration as mig
from switchover.core.migration import Migration, Override
from switchover.core.plan_state import PlanState, PlanStatus
from switchover.errors import ConflictError, ValidationError
from switchover.rollout.service import actor_name, reason_text

if TYPE_CHECKING:
    from switchover.bootstrap import App


@dataclass(frozen=True, slots=True)
class Preview:
    title: str
    changes: tuple[Change, ...]
    notes: tuple[str, ...] = ()

    @property
    def lines(self) -> list[str]:
        shown = [str(ch) + "." for ch in self.changes] or ["Nothing will change."]
        return [*shown, *self.notes]


def preview(app: App, command: c.MigrationCommand) -> Preview:
    """Validate ``command`` against the current state and say what it would change."""
    actor_name(command.actor)
    reason_text(command.reason)
    m = app.rollout.get(command.migration)
    plan = app.plans.find(command.migration)
    fn = _PREVIEWS.get(type(command))
    if fn is None:
        raise ValidationError(f"{type(command).__name__} has no preview", field="action")
    return fn(command, m, plan)


def _moved(m: Migration, after: Migration) -> tuple[Change, ...]:
    return diff(m.to_dict(), after.to_dict())


def _running_note(plan: PlanState | None) -> tuple[str, ...]:
    if plan is None or plan.status is not PlanStatus.RUNNING or plan.phase_index < 0:
        return ()
    phase = plan.plan.phases[plan.phase_index]
    return (
        f"The plan is running (phase {phase.name}, {phase.percentage} %): the controller sets "
        "the percentage and features again when it advances or rolls back; pause the plan to "
        "hold a hand-set value.",
    )


def _percentage(cmd: c.SetPercentage, m: Migration, plan: PlanState | None) -> Preview:
    pct = mig.parse_percentage(cmd.percentage)
    notes: tuple[str, ...] = ()
    if pct > m.percentage:
        notes += ("Callers already on the candidate stay there (sticky buckets).",)
    elif pct < m.percentage:
        notes += (f"Callers in buckets {pct + 1} to {m.percentage} go back to legacy.",)
    if not m.enabled:
        notes += ("The master switch is off: every call stays on legacy until resumed.",)
    after = mig.with_percentage(m, pct)
    return Preview(f"Set {m.name} to {pct} %", _moved(m, after), notes + _running_note(plan))


def _feature(cmd: c.SetFeature, m: Migration, plan: PlanState | None) -> Preview:
    after = mig.with_feature_setting(m, cmd.feature, cmd.enabled, cmd.percentage)
    word = "on" if cmd.enabled else "off"
    notes = () if cmd.enabled else (f"Every {cmd.feature} call goes to legacy.",)
    return Preview(
        f"Switch {cmd.feature} {word} in {m.name}", _moved(m, after), notes + _running_note(plan)
    )


def _tenant(cmd: c.SetTenant, m: Migration, _plan: PlanState | None) -> Preview:
    override = tenant_override(cmd.override)
    after = mig.with_tenant(m, cmd.tenant, override)
    return Preview(f"Tenant {cmd.tenant} in {m.name}", _moved(m, after))


def _kill(_cmd: c.Kill, m: Migration, plan: PlanState | None) -> Preview:
    changes = _moved(m, mig.killed(m))
    if plan is not None and plan.status is PlanStatus.RUNNING:
        changes += (Change("plan.status", "running", "paused"),)
    return Preview(
        f"Kill {m.name}", changes, ("Every call goes to legacy at once.",) if m.enabled else ()
    )


def _resume(cmd: c.Resume, m: Migration, plan: PlanState | None) -> Preview:
    changes = _moved(m, mig.resumed(m))
    waiting = plan is not None and plan.status in (PlanStatus.PAUSED, PlanStatus.ROLLED_BACK)
    notes: tuple[str, ...] = ()
    if cmd.plan and waiting:
        assert plan is not None
        changes += (Change("plan.status", plan.status.value, "running"),)
        notes += ("The phase's window starts again now: evidence from before does not count.",)
    elif waiting:
        assert plan is not None
        notes += (f"The plan stays {plan.status.value}.",)
    if m.enabled and not changes:
        notes += ("The master switch is already on.",)
    return Preview(f"Resume {m.name}", changes, notes)


def _plan_action(cmd: c.PlanAction, m: Migration, plan: PlanState | None) -> Preview:
    from switchover.control.controller import phase_features, phase_percentage

    if plan is None:
        raise ValidationError(
            f"{m.name} has no plan; apply one with 'switchover plan apply {m.name} FILE'",
            field="action",
        )
    if cmd.action not in c.PLAN_VERBS:
        raise ValidationError(f"`action` {cmd.action!r} is not a plan action", field="action")
    if not plan.active:
        raise ConflictError(
            f"the plan of {m.name} is {plan.status.value}; there is nothing to {cmd.action}",
            field="action",
        )
    phases = plan.plan.phases
    nxt = plan.phase_index + 1
    before = plan_view(plan)
    after = dict(before or {})
    migration_after = m
    notes: tuple[str, ...] = ()
    if cmd.action == "promote":
        if nxt >= len(phases):
            after["status"] = "completed"
            migration_after = mig.completed(m)
        else:
            after.update(status="running", phase=phases[nxt].name)
            migration_after = mig.with_phase(
                m, phase_percentage(plan.plan, nxt), phase_features(plan.plan, nxt)
            )
            notes = ("Now, without waiting for the phase's gates.",)
    elif cmd.action == "pause":
        after["status"] = "paused"
        notes = (
            "While paused the controller still judges and alerts, but changes nothing: "
            "roll back or kill by hand if a verdict says so.",
        )
    elif cmd.action == "resume":
        if not m.enabled:
            raise ConflictError(
                f"{m.name} is killed: resume it with the plan ('resume --plan') instead",
                field="action",
            )
        after["status"] = "running"
        notes = ("The phase's window starts again now: evidence from before does not count.",)
    elif cmd.action == "approve":
        if nxt >= len(phases):
            raise ConflictError(
                f"the plan of {m.name} is in its last phase; there is nothing to approve",
                field="action",
            )
        after["approved_next"] = True
        notes = (
            f"The controller enters {phases[nxt].name} ({phases[nxt].percentage} %) when the "
            "current phase has passed its gates and minimum time.",
        )
    else:
        after["status"] = "aborted"
        migration_after = mig.rolled_back_total(m)
    changes = _moved(m, migration_after) + diff(before, after, "plan.")
    return Preview(f"{cmd.action.capitalize()} the plan of {m.name}", changes, notes)


def _rollback(cmd: c.Rollback, m: Migration, plan: PlanState | None) -> Preview:
    level = cmd.level
    if level not in c.ROLLBACK_LEVELS:
        raise ValidationError(
            f"`level` {level!r} is not one of {', '.join(c.ROLLBACK_LEVELS)}", field="level"
        )
    active = plan is not None and plan.active
    if level == "tenant":
        if not cmd.tenant_id:
            raise ValidationError("a tenant rollback needs `tenant_id`", field="tenant_id")
        after = mig.with_tenant(m, cmd.tenant_id, Override.DENY)
        return Preview(f"Roll tenant {cmd.tenant_id} back", _moved(m, after))
    if level == "partial":
        if cmd.target_percentage in (None, ""):
            raise ValidationError(
                "a partial rollback needs `target_percentage` below the current one",
                field="target_percentage",
            )
        pct = mig.parse_percentage(cmd.target_percentage, field="target_percentage")
        if pct >= m.percentage and m.enabled:
            raise ValidationError(
                f"`target_percentage` {pct} is not below the current {m.percentage} %; "
                "a rollback lowers the percentage",
                field="target_percentage",
            )
        after = replace(mig.with_percentage(m, pct), state=mig.State.ROLLED_BACK)
        changes = _moved(m, after)
        notes = (
            (
                "The plan steps back to the last phase at or below that share and stops "
                "advancing until resumed.",
            )
            if active
            else ()
        )
        return Preview(f"Partial rollback of {m.name}", changes, notes)
    changes = _moved(m, mig.rolled_back_total(m))
    if active:
        assert plan is not None
        changes += (Change("plan.status", plan.status.value, "aborted"),)
    if level == "total":
        return Preview(f"Total rollback of {m.name}", changes)
    if not (cmd.backup_id or "").strip():
        raise ValidationError("a data rollback needs `backup_id`", field="backup_id")
    changes += (Change("data", None, f"restored {cmd.backup_id}"),)
    return Preview(
        f"Data rollback of {m.name}",
        changes,
        (
            f"Backup {cmd.backup_id} is verified against its checksum first; the rows it holds "
            "replace the current ones, and rows added since are kept.",
        ),
    )


_PREVIEWS: dict[type[c.Command], Callable[..., Preview]] = {
    c.SetPercentage: _percentage,
    c.SetFeature: _feature,
    c.SetTenant: _tenant,
    c.Kill: _kill,
    c.Resume: _resume,
    c.PlanAction: _plan_action,
    c.Rollback: _rollback,
}

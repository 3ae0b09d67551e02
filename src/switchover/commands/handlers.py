"""One handler per command: validate, change in one transaction, audit, answer.

Handlers are the only code that changes a migration, a plan, a token or restored data
on an operator's behalf. Each one reads the state it changes inside its transaction,
so the answer's before → after is what was really written. A command that cannot be
carried out raises from :mod:`switchover.errors` and leaves every row as it was; the
two that take more than one step (``resume --plan``, a data rollback) say in the error
exactly which step landed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from switchover.commands import model as c
from switchover.commands.outcome import Change, Outcome, diff, plan_view
from switchover.core import migration as mig
from switchover.core.migration import Migration, Override
from switchover.core.plan_state import PlanState, PlanStatus
from switchover.errors import ConflictError, SwitchoverError, ValidationError
from switchover.rollout.service import actor_name, change_in, reason_text

if TYPE_CHECKING:
    from switchover.bootstrap import App
    from switchover.store.repository import Tx

Progress = Callable[[str, int, int | None], None]
T = TypeVar("T")
_UNPINNED_ATTEMPTS = 20
_WAITING = (PlanStatus.PAUSED, PlanStatus.ROLLED_BACK)


def _no_progress(_step: str, _done: int, _total: int | None) -> None:
    return None


def handle(app: App, command: c.Command, *, progress: Progress | None = None) -> Outcome:
    """Carry out ``command``; the one way every entry point changes anything."""
    handler = _HANDLERS.get(type(command))
    if handler is None:
        raise ValidationError(
            f"{type(command).__name__} is not a command; use one of "
            f"{', '.join(k.__name__ for k in _HANDLERS)}",
            field="command",
        )
    return handler(app, command, progress or _no_progress)


# --- helpers ---------------------------------------------------------------------------


def _in_tx(app: App, command: c.MigrationCommand, work: Callable[[Tx, datetime], T]) -> T:
    """Run ``work`` in one transaction. Without an expected version a lost race is
    retried on a fresh read: the operator asked for the change whatever the version."""
    attempts = 1 if command.expected_version is not None else _UNPINNED_ATTEMPTS
    for attempt in range(attempts):
        try:
            with app.store.transaction() as tx:
                return work(tx, app.clock.now())
        except ConflictError:
            if attempt + 1 == attempts:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _change(
    tx: Tx,
    command: c.MigrationCommand,
    action: str,
    transform: Callable[[Migration], Migration],
    now: datetime,
    *,
    known_tenant: str | None = None,
    skip_unchanged: bool = False,
) -> tuple[Migration, Migration]:
    before = tx.get_migration(command.migration, for_update=True)
    after = change_in(
        tx,
        command.migration,
        action,
        transform,
        actor=actor_name(command.actor),
        reason=reason_text(command.reason),
        now=now,
        expected_version=command.expected_version,
        known_tenant=known_tenant,
        skip_unchanged=skip_unchanged,
    )
    return before, after


def _plan_note(tx: Tx, name: str) -> tuple[str, ...]:
    from switchover.store import control as repo

    state = repo.find_plan(tx, name)
    if state is None or state.status is not PlanStatus.RUNNING or state.phase_index < 0:
        return ()
    phase = state.plan.phases[state.phase_index]
    return (
        f"The plan is running (phase {phase.name}, {phase.percentage} %): the controller "
        "sets the percentage and features again when it advances or rolls back; pause the "
        "plan to hold a hand-set value.",
    )


def _migration_outcome(
    message: str,
    before: Migration,
    after: Migration,
    notes: tuple[str, ...] = (),
    plan: tuple[PlanState | None, PlanState | None] = (None, None),
) -> Outcome:
    changes = diff(before.to_dict(), after.to_dict()) + diff(
        plan_view(plan[0]), plan_view(plan[1]), "plan."
    )
    return Outcome(message, changes, after, plan[1], notes)


def tenant_override(value: str, field: str = "override") -> Override | None:
    """``allow``/``deny``/``clear`` (as the CLI, the API and the dashboard say it)."""
    choices = {"allow": Override.ALLOW, "deny": Override.DENY, "clear": None}
    if value not in choices:
        raise ValidationError(
            f"`{field}` {value!r} is not one of allow (always the candidate), deny (always "
            "legacy) or clear (follow the percentage)",
            field=field,
        )
    return choices[value]


# --- migrations ------------------------------------------------------------------------


def _create(app: App, cmd: c.CreateMigration, _p: Progress) -> Outcome:
    m = app.rollout.create(
        cmd.migration,
        features=cmd.features,
        stickiness=cmd.stickiness,
        tenant_key=cmd.tenant_key,
        description=cmd.description,
        legacy_label=cmd.legacy_label,
        candidate_label=cmd.candidate_label,
        group=cmd.group,
        actor=cmd.actor,
        reason=cmd.reason,
    )
    changes = (Change("migration", None, m.name),)
    return Outcome(f"{m.name} created: master switch on, 0 %, every feature off", changes, m)


def _set_percentage(app: App, cmd: c.SetPercentage, _p: Progress) -> Outcome:
    pct = mig.parse_percentage(cmd.percentage)

    def work(tx: Tx, now: datetime) -> Outcome:
        before, after = _change(
            tx, cmd, "set_percentage", lambda m: mig.with_percentage(m, pct), now
        )
        notes = _plan_note(tx, cmd.migration)
        if not after.enabled:
            notes += ("The master switch is off: every call stays on legacy until resumed.",)
        return _migration_outcome(
            f"{after.name} sends {after.percentage} % of callers to the candidate",
            before,
            after,
            notes,
        )

    return _in_tx(app, cmd, work)


def _set_feature(app: App, cmd: c.SetFeature, _p: Progress) -> Outcome:
    def work(tx: Tx, now: datetime) -> Outcome:
        action = "enable_feature" if cmd.enabled else "disable_feature"
        before, after = _change(
            tx,
            cmd,
            action,
            lambda m: mig.with_feature_setting(m, cmd.feature, cmd.enabled, cmd.percentage),
            now,
        )
        state = "on" if cmd.enabled else "off: all its calls go to legacy"
        cap = after.feature_percentages.get(cmd.feature)
        if cmd.enabled and cap is not None:
            state += f", for {after.feature_percentage(cmd.feature)} % of callers (its own {cap} %)"
        return _migration_outcome(
            f"{after.name}: feature {cmd.feature} is {state}",
            before,
            after,
            _plan_note(tx, cmd.migration),
        )

    return _in_tx(app, cmd, work)


def _set_tenant(app: App, cmd: c.SetTenant, _p: Progress) -> Outcome:
    override = tenant_override(cmd.override)
    tenant = mig.validate_tenant_id(cmd.tenant)
    action = {Override.ALLOW: "tenant_allow", Override.DENY: "tenant_deny", None: "tenant_clear"}
    side = {
        Override.ALLOW: "always the candidate",
        Override.DENY: "always legacy",
        None: "follows the percentage",
    }

    def work(tx: Tx, now: datetime) -> Outcome:
        before, after = _change(
            tx,
            cmd,
            action[override],
            lambda m: mig.with_tenant(m, tenant, override),
            now,
            known_tenant=tenant,
        )
        return _migration_outcome(f"{after.name}: tenant {tenant} {side[override]}", before, after)

    return _in_tx(app, cmd, work)


def _register_tenants(app: App, cmd: c.RegisterTenants, _p: Progress) -> Outcome:
    added = app.rollout.register_tenants(
        cmd.migration, list(cmd.tenants), actor=cmd.actor, reason=cmd.reason
    )
    changes = (Change("known_tenants", None, f"+{added}"),) if added else ()
    return Outcome(
        f"{added} new tenant(s) registered ({len(cmd.tenants)} given)",
        changes,
        data={"added": added, "given": len(cmd.tenants)},
    )


def _kill(app: App, cmd: c.Kill, _p: Progress) -> Outcome:
    from switchover.control.plans import set_plan_status_in

    def work(tx: Tx, now: datetime) -> Outcome:
        before, after = _change(tx, cmd, "kill", mig.killed, now)
        moved = set_plan_status_in(
            tx,
            cmd.migration,
            PlanStatus.PAUSED,
            "plan_pause",
            actor=actor_name(cmd.actor),
            reason=reason_text(cmd.reason) or "killed",
            now=now,
            only_from=(PlanStatus.RUNNING,),
        )
        notes = (
            ("The plan is paused: 'resume --plan' switches it back on and resumes it.",)
            if moved
            else ()
        )
        return _migration_outcome(
            f"{after.name} is killed: every call goes to legacy",
            before,
            after,
            notes,
            moved or (None, None),
        )

    return _in_tx(app, cmd, work)


def _resume(app: App, cmd: c.Resume, _p: Progress) -> Outcome:
    from switchover.control.plans import set_plan_status_in
    from switchover.store import control as repo

    def work(tx: Tx, now: datetime) -> Outcome:
        before, after = _change(tx, cmd, "resume", mig.resumed, now, skip_unchanged=True)
        moved = None
        if cmd.plan:
            moved = set_plan_status_in(
                tx,
                cmd.migration,
                PlanStatus.RUNNING,
                "plan_resume",
                actor=actor_name(cmd.actor),
                reason=reason_text(cmd.reason),
                now=now,
                only_from=_WAITING,
            )
        state = repo.find_plan(tx, cmd.migration)
        notes: tuple[str, ...] = ()
        if state is not None and state.status in _WAITING and not cmd.plan:
            notes = (
                f"The plan stays {state.status.value}: 'resume --plan' (or 'plan resume') "
                "lets it advance again.",
            )
        elif cmd.plan and moved is None:
            what = f"is {state.status.value}" if state is not None else "does not exist"
            notes = (f"No paused plan to resume: the plan {what}.",)
        if before == after and moved is None:
            message = f"{after.name} was already on: nothing changed"
        else:
            message = f"{after.name} is on: calls follow the percentage ({after.percentage} %)"
            if moved is not None:
                message += f"; the plan runs again at {moved[1].phase_name}"
        return _migration_outcome(message, before, after, notes, moved or (None, None))

    return _in_tx(app, cmd, work)


# --- plans -----------------------------------------------------------------------------


def _plan_action(app: App, cmd: c.PlanAction, _p: Progress) -> Outcome:
    if cmd.action not in c.PLAN_VERBS:
        raise ValidationError(
            f"`action` {cmd.action!r} is not a plan action; use one of {', '.join(c.PLAN_VERBS)}",
            field="action",
        )
    before_m = app.rollout.get(cmd.migration)
    before = app.plans.get(cmd.migration)
    after = getattr(app.plans, cmd.action)(cmd.migration, actor=cmd.actor, reason=cmd.reason)
    after_m = app.rollout.get(cmd.migration)
    done = {
        "promote": f"promoted to {after.phase_name}",
        "pause": "paused: the controller judges and alerts but changes nothing",
        "resume": f"running again at {after.phase_name} (a fresh phase window)",
        "approve": "the next phase is approved",
        "abort": "aborted: percentage 0, master switch off",
    }[cmd.action]
    if cmd.action == "promote" and after.status is PlanStatus.COMPLETED:
        done = "completed"
    return _migration_outcome(
        f"{cmd.migration}: plan {after.plan.name} {done}",
        before_m,
        after_m,
        plan=(before, after),
    )


def _apply_plan(app: App, cmd: c.ApplyPlan, _p: Progress) -> Outcome:
    before = app.plans.find(cmd.migration)
    fn = app.plans.replace_plan if cmd.replace else app.plans.apply
    after = fn(cmd.migration, cmd.source, cmd.source_name, actor=cmd.actor, reason=cmd.reason)
    changes = (Change("plan", before.plan.name if before else None, after.plan.name),)
    changes += diff(plan_view(before), plan_view(after), "plan.")
    if after.phase_index >= 0:  # --replace kept a phase of the same name: applied now
        message = (
            f"{cmd.migration}: plan {after.plan.name} applied; it keeps phase "
            f"{after.phase_name}, whose percentage and features apply now"
        )
    else:
        message = (
            f"{cmd.migration}: plan {after.plan.name} applied; the controller enters its "
            "first phase at its next interval"
        )
    return Outcome(message, changes, app.rollout.get(cmd.migration), after)


# --- rollback and data -----------------------------------------------------------------


def _rollback(app: App, cmd: c.Rollback, progress: Progress) -> Outcome:
    if cmd.level not in c.ROLLBACK_LEVELS:
        raise ValidationError(
            f"`level` {cmd.level!r} is not one of {', '.join(c.ROLLBACK_LEVELS)}", field="level"
        )
    if cmd.level == "data":
        return _rollback_data(app, cmd, progress)
    before = app.rollout.get(cmd.migration)
    plan_before = app.plans.find(cmd.migration)
    result = app.plans.rollback(
        cmd.migration,
        cmd.level,
        actor=cmd.actor,
        reason=cmd.reason,
        tenant_id=cmd.tenant_id,
        target_percentage=cmd.target_percentage,
    )
    after = Migration.from_dict(result["migration"])
    plan_after = app.plans.find(cmd.migration) if result.get("plan") else None
    what = {
        "tenant": f"tenant {result.get('tenant')} forced onto legacy",
        "partial": f"percentage lowered to {after.percentage} %",
        "total": "percentage 0, master switch off",
    }[cmd.level]
    outcome = _migration_outcome(
        f"{cmd.migration}: rolled back ({cmd.level}): {what}",
        before,
        after,
        plan=(plan_before, plan_after) if plan_after else (None, None),
    )
    return replace(outcome, data={"level": cmd.level, "tenant": result.get("tenant")})


def _data_source(app: App, url: str | None) -> tuple[Any, bool]:
    """The agent database: the command's own (closed after use) or the app's."""
    from switchover.data.source import Source

    if url is None:
        return app.data_source, False
    return Source(url), True


def _rollback_data(app: App, cmd: c.Rollback, progress: Progress) -> Outcome:
    """Every check first (the migration exists, the data lock is free, the backup's
    checksum and its tables' columns); then traffic to legacy and the restore. Only a
    restore failing after the traffic moved leaves a change, and the error says which."""
    from switchover.data import backup as backups

    if not (cmd.backup_id or "").strip():
        raise ValidationError(
            "a data rollback needs `backup_id`: list backups with 'switchover data backups'",
            field="backup_id",
        )
    app.rollout.get(cmd.migration)  # a typo in the name stops here: nothing changed
    source, own = _data_source(app, cmd.source)
    try:
        with backups.prepared(
            source, cmd.backup_id, holder=f"rollback of {cmd.migration}"
        ) as restoration:
            total = _rollback(
                app,
                replace(
                    cmd, level="total", reason=cmd.reason or f"data rollback to {cmd.backup_id}"
                ),
                progress,
            )
            try:
                restored = restoration.run(progress)
            except SwitchoverError as exc:
                raise type(exc)(
                    f"{cmd.migration} was rolled back (total: percentage 0, master switch "
                    f"off, audited), but restoring {cmd.backup_id} failed and changed no data: "
                    f"{exc.template}",
                    field=exc.field,
                ) from exc
        _audit(
            app,
            cmd.migration,
            "rollback_data",
            cmd,
            None,
            {"backup_id": cmd.backup_id, **restored["restored"]},
        )
    finally:
        if own:
            source.dispose()
    r = restored["restored"]
    message = (
        f"{cmd.migration}: rolled back (data): percentage 0, master switch off; restored "
        f"{cmd.backup_id} ({r['configs']} configs, {r['calls']} calls, {r['metrics']} metrics), "
        "checksum verified before and after"
    )
    changes = (*total.changes, Change("data", None, f"restored {cmd.backup_id}"))
    return Outcome(
        message,
        changes,
        total.migration,
        total.plan,
        data={"level": "data", **restored},
    )


def _restore(app: App, cmd: c.Restore, progress: Progress) -> Outcome:
    from switchover.data import backup as backups

    actor_name(cmd.actor)
    if cmd.run_id:
        return _abandon_run(app, cmd, progress)
    source, own = _data_source(app, cmd.source)
    try:
        restored = backups.restore(source, cmd.backup_id, progress=progress)
    finally:
        if own:
            source.dispose()
    _audit(
        app, AUDIT_DATA, "restore", cmd, None, {"backup_id": cmd.backup_id, **restored["restored"]}
    )
    r = restored["restored"]
    bypassed = restored.get("triggers_bypassed") or []
    return Outcome(
        f"restored {cmd.backup_id}: {r['configs']} configs, {r['calls']} calls, "
        f"{r['metrics']} metrics; checksum verified before and after"
        + (f"; triggers off during the restore: {', '.join(bypassed)}" if bypassed else ""),
        (Change("data", None, f"restored {cmd.backup_id}"),),
        data=restored,
    )


def _abandon_run(app: App, cmd: c.Restore, progress: Progress) -> Outcome:
    from switchover.data.migrate import Migrator

    assert cmd.run_id is not None
    source, own = _data_source(app, cmd.source)
    try:
        result = Migrator(source, app.clock).abandon(cmd.run_id, progress=progress)
    finally:
        if own:
            source.dispose()
    backup_id = result["backup_id"]
    _audit(app, AUDIT_DATA, "abandon_run", cmd, None, {"run": cmd.run_id, "backup_id": backup_id})
    if backup_id is None:
        message = f"run {cmd.run_id} marked abandoned; it had no backup, so its changes stay"
        changes: tuple[Change, ...] = (Change("run", cmd.run_id, "abandoned"),)
    else:
        r = result["restored"]
        message = (
            f"run {cmd.run_id} abandoned: restored its backup {backup_id} ({r['configs']} "
            f"configs, {r['calls']} calls, {r['metrics']} metrics), checksum verified"
        )
        changes = (
            Change("data", None, f"restored {backup_id}"),
            Change("run", cmd.run_id, "abandoned"),
        )
    return Outcome(message, changes, data=result)


# --- tokens ----------------------------------------------------------------------------

AUDIT_TOKENS = "@tokens"
AUDIT_DATA = "@data"
"""Audit subjects that are not migrations: names no migration can have."""


def _audit(
    app: App,
    subject: str,
    action: str,
    cmd: c.Command,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    with app.store.transaction() as tx:
        version = 0
        if not subject.startswith("@"):
            version = tx.get_migration(subject).version
        tx.add_audit(
            migration=subject,
            action=action,
            actor=actor_name(cmd.actor),
            at=app.clock.now(),
            reason=reason_text(cmd.reason),
            before=before,
            after=after,
            version=version,
        )


def _create_token(app: App, cmd: c.CreateToken, _p: Progress) -> Outcome:
    actor = actor_name(cmd.actor)
    token = app.tokens.create(cmd.name, cmd.role, actor=actor, replace=cmd.replace)
    action = "token_replace" if cmd.replace else "token_create"
    _audit(app, AUDIT_TOKENS, action, cmd, None, {"name": cmd.name, "role": cmd.role})
    return Outcome(
        f"token {cmd.name!r} ({cmd.role}) created; it will not be shown again",
        (Change("token", None, cmd.name),),
        data={"name": cmd.name, "role": cmd.role, "token": token},
    )


def _revoke_token(app: App, cmd: c.RevokeToken, _p: Progress) -> Outcome:
    actor_name(cmd.actor)
    live = [t for t in app.tokens.list() if t.revoked_at is None]
    admins = [t.name for t in live if t.role == "admin"]
    if admins == [cmd.name]:
        raise ConflictError(
            f"{cmd.name!r} is the last admin token: revoking it would leave nobody who can "
            "manage tokens over HTTP. Create another admin token first",
            field="name",
        )
    app.tokens.revoke(cmd.name)
    _audit(app, AUDIT_TOKENS, "token_revoke", cmd, {"name": cmd.name}, {"revoked": cmd.name})
    return Outcome(
        f"token {cmd.name!r} revoked",
        (Change("token.revoked", False, True),),
        data={"revoked": cmd.name},
    )


_HANDLERS: dict[type[c.Command], Callable[[Any, Any, Progress], Outcome]] = {
    c.CreateMigration: _create,
    c.SetPercentage: _set_percentage,
    c.SetFeature: _set_feature,
    c.SetTenant: _set_tenant,
    c.RegisterTenants: _register_tenants,
    c.Kill: _kill,
    c.Resume: _resume,
    c.PlanAction: _plan_action,
    c.ApplyPlan: _apply_plan,
    c.Rollback: _rollback,
    c.Restore: _restore,
    c.CreateToken: _create_token,
    c.RevokeToken: _revoke_token,
}

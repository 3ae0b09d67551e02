"""Every change to a migration, validated, version-checked and audited in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from switchover.core import migration as mig
from switchover.core.clock import Clock, SystemClock
from switchover.core.decision import CompiledMigration, Decision
from switchover.core.migration import Migration, Override
from switchover.core.status import RolloutStatus, rollout_status
from switchover.errors import ConflictError, ValidationError
from switchover.store.ports import Repository as Store
from switchover.store.ports import Transaction as Tx
from switchover.store.records import AuditEntry

MAX_ACTOR = 200
MAX_REASON = 2000
MAX_AUDIT_LIMIT = 1000
_UNPINNED_ATTEMPTS = 20


def actor_name(actor: str) -> str:
    """The audit's "who", checked: not empty, not too long."""
    if not isinstance(actor, str) or not actor.strip():
        raise ValidationError("the actor is empty: say who makes the change (`by`)", field="by")
    if len(actor) > MAX_ACTOR:
        raise ValidationError(f"`by` is longer than {MAX_ACTOR} characters", field="by")
    return mig.check_text(actor.strip(), "by")


def reason_text(reason: str | None) -> str:
    """The audit's "why", checked for length."""
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON:
        raise ValidationError(f"`reason` is longer than {MAX_REASON} characters", field="reason")
    return mig.check_text(reason, "reason", multiline=True)


class RolloutService:
    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or SystemClock()

    # reads ----------------------------------------------------------------------------

    def get(self, name: str) -> Migration:
        with self.store.read() as tx:
            return tx.get_migration(name)

    def list(self) -> list[Migration]:
        with self.store.read() as tx:
            return tx.list_migrations()

    def audit(self, name: str, *, limit: int = 100) -> list[AuditEntry]:
        if not 1 <= limit <= MAX_AUDIT_LIMIT:
            raise ValidationError(f"`limit` must be from 1 to {MAX_AUDIT_LIMIT}", field="limit")
        with self.store.read() as tx:
            if not name.startswith("@"):  # @tokens, @data, @agents: not migrations
                tx.get_migration(name)
            return tx.list_audit(name, limit=limit)

    def status(self, name: str) -> RolloutStatus:
        with self.store.read() as tx:
            m = tx.get_migration(name)
            known = tx.known_tenants(name)
            last = tx.list_audit(name, limit=1)
        last_change = (
            {k: v for k, v in last[0].to_dict().items() if k not in ("before", "after")}
            if last
            else None
        )
        return rollout_status(m, known, last_change)

    def decide(
        self, name: str, feature: str | None, contexts: Iterable[Mapping[str, Any]]
    ) -> list[Decision]:
        """Decisions straight from the store, with strict checks: for the CLI."""
        m = self.get(name)
        if feature is not None:
            mig.require_feature(m, feature)
        compiled = CompiledMigration(m)
        return [compiled.decide(feature, ctx) for ctx in contexts]

    # writes ---------------------------------------------------------------------------

    def create(
        self,
        name: str,
        *,
        features: Iterable[str] = (),
        stickiness: str = "user_id",
        tenant_key: str = "tenant_id",
        description: str = "",
        legacy_label: str = "legacy",
        candidate_label: str = "candidate",
        group: str | None = None,
        actor: str,
        reason: str | None = None,
    ) -> Migration:
        actor, why, now = actor_name(actor), reason_text(reason), self.clock.now()
        m = mig.new_migration(
            name,
            features=features,
            stickiness=stickiness,
            tenant_key=tenant_key,
            description=description,
            legacy_label=legacy_label,
            candidate_label=candidate_label,
            group=group,
            now=now,
            actor=actor,
        )
        with self.store.transaction() as tx:
            tx.insert_migration(m)
            tx.add_audit(
                migration=m.name,
                action="create",
                actor=actor,
                at=now,
                reason=why,
                before=None,
                after=m.to_dict(),
                version=m.version,
            )
        return m

    def set_percentage(self, name: str, percentage: object, **kw: Any) -> Migration:
        pct = mig.parse_percentage(percentage)
        return self._change(name, "set_percentage", lambda m: mig.with_percentage(m, pct), **kw)

    def set_feature(self, name: str, feature: str, on: bool, **kw: Any) -> Migration:
        action = "enable_feature" if on else "disable_feature"
        return self._change(name, action, lambda m: mig.with_feature(m, feature, on), **kw)

    def set_tenant(self, name: str, tenant: str, override: Override | None, **kw: Any) -> Migration:
        tenant_id = mig.validate_tenant_id(tenant)
        action = {
            Override.ALLOW: "tenant_allow",
            Override.DENY: "tenant_deny",
            None: "tenant_clear",
        }
        return self._change(
            name,
            action[override],
            lambda m: mig.with_tenant(m, tenant_id, override),
            known_tenant=tenant_id,
            **kw,
        )

    def kill(self, name: str, **kw: Any) -> Migration:
        return self._change(name, "kill", mig.killed, **kw)

    def resume(self, name: str, **kw: Any) -> Migration:
        return self._change(name, "resume", mig.resumed, **kw)

    def register_tenants(
        self, name: str, tenants: Iterable[str], *, actor: str, reason: str | None = None
    ) -> int:
        """Tell switchover which tenants exist, so status can count them."""
        ids = [mig.validate_tenant_id(x) for x in tenants]
        if not ids:
            raise ValidationError("give at least one tenant id", field="tenant")
        actor, why, now = actor_name(actor), reason_text(reason), self.clock.now()
        with self.store.transaction() as tx:
            m = tx.get_migration(name)
            added = tx.add_known_tenants(name, ids, now)
            tx.add_audit(
                migration=name,
                action="register_tenants",
                actor=actor,
                at=now,
                reason=why,
                before=None,
                after={"added": added, "given": len(ids)},
                version=m.version,
            )
        return added

    def _change(
        self,
        name: str,
        action: str,
        transform: Callable[[Migration], Migration],
        *,
        actor: str,
        reason: str | None = None,
        expected_version: int | None = None,
        known_tenant: str | None = None,
    ) -> Migration:
        """Apply ``transform`` with compare-and-swap on the version.

        With ``expected_version`` a concurrent change is reported as a conflict. Without
        it the caller asked for the change whatever the version, so a lost race is
        retried on a fresh read: the change lands, and nobody else's is overwritten.
        """
        actor, why = actor_name(actor), reason_text(reason)
        attempts = 1 if expected_version is not None else _UNPINNED_ATTEMPTS
        for attempt in range(attempts):
            try:
                return self._change_once(
                    name, action, transform, actor, why, expected_version, known_tenant
                )
            except ConflictError:
                if attempt + 1 == attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _change_once(
        self,
        name: str,
        action: str,
        transform: Callable[[Migration], Migration],
        actor: str,
        why: str,
        expected_version: int | None,
        known_tenant: str | None,
    ) -> Migration:
        now = self.clock.now()
        with self.store.transaction() as tx:
            return change_in(
                tx,
                name,
                action,
                transform,
                actor=actor,
                reason=why,
                now=now,
                expected_version=expected_version,
                known_tenant=known_tenant,
            )


def change_in(
    tx: Tx,
    name: str,
    action: str,
    transform: Callable[[Migration], Migration],
    *,
    actor: str,
    reason: str,
    now: datetime,
    expected_version: int | None = None,
    known_tenant: str | None = None,
    skip_unchanged: bool = False,
) -> Migration:
    """One audited compare-and-swap change inside the caller's transaction.

    The controller uses it to write a verdict, the plan's new phase and the migration's
    change atomically: either all of them land or none does. With ``skip_unchanged`` a
    change that changes nothing writes nothing (no new version, no audit row).
    """
    before = tx.get_migration(name, for_update=True)
    if expected_version is not None and expected_version != before.version:
        raise ConflictError(
            f"migration {name!r} is at version {before.version}, not "
            f"{expected_version}; read it again and retry",
            field="version",
            current_version=before.version,
        )
    changed = transform(before)
    if skip_unchanged and changed == before:
        return before
    after = mig.stamped(changed, now=now, actor=actor)
    tx.replace_migration(after, expected_version=before.version)
    if known_tenant is not None:
        tx.add_known_tenants(name, [known_tenant], now)
    tx.add_audit(
        migration=name,
        action=action,
        actor=actor,
        at=now,
        reason=reason,
        before=before.to_dict(),
        after=after.to_dict(),
        version=after.version,
    )
    return after

"""Rollout status as in seed 003 §5.5: who is on the candidate, and the last change."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from switchover.core.decision import CompiledMigration, Side
from switchover.core.migration import Migration


@dataclass(frozen=True, slots=True)
class RolloutStatus:
    migration: Migration
    tenants_on_candidate: int
    tenants_known: int
    last_change: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        m = self.migration
        data = m.to_dict()
        data.update(
            {
                "tenants_on_candidate": self.tenants_on_candidate,
                "tenants_known": self.tenants_known,
                "overrides": len(m.tenants),
                "last_change": self.last_change,
            }
        )
        return data


def tenant_on_candidate(compiled: CompiledMigration, tenant: str) -> bool:
    """A tenant is on the candidate when every one of its callers is.

    That holds for an allow-listed tenant, for any tenant when the percentage is 100,
    and, when the migration is sticky on the tenant key itself, for a tenant whose
    bucket is in. The master switch off puts every tenant on legacy.
    """
    m = compiled.migration
    if m.stickiness == m.tenant_key:
        ctx = {m.tenant_key: tenant}
    else:
        ctx = {m.tenant_key: tenant, m.stickiness: None}
        if compiled.decide(None, ctx).side is Side.CANDIDATE:
            return True
        if m.percentage < 100:
            return False
        ctx[m.stickiness] = "any"
    return compiled.decide(None, ctx).side is Side.CANDIDATE


def rollout_status(
    m: Migration, known_tenants: Iterable[str], last_change: dict[str, Any] | None
) -> RolloutStatus:
    compiled = CompiledMigration(m)
    known = set(known_tenants) | set(m.tenants)
    on = sum(1 for tenant in known if tenant_on_candidate(compiled, tenant))
    return RolloutStatus(m, on, len(known), last_change)

"""The rows the store keeps, as both engines read and write them.

The SQLAlchemy store (:mod:`switchover.store.repository`) and the in-memory one
(:mod:`switchover.store.memory`) turn rows into values with the same functions here and
raise the same errors, so a caller cannot tell them apart. A row is anything with the
table's columns as attributes: a SQLAlchemy ``Row`` or a ``SimpleNamespace``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from switchover.core.migration import Migration, Override, State
from switchover.core.plan import Plan, load_plan
from switchover.core.plan_state import PlanState, PlanStatus
from switchover.core.rollup import Rollup, RollupKey, StoredRollup
from switchover.core.sketch import LatencySketch
from switchover.errors import ConflictError, NotFoundError

MAX_SUMMARY = 2000
"""Characters of a verdict's summary that are kept."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    migration: str
    action: str
    actor: str
    at: datetime
    reason: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    version: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "migration": self.migration,
            "action": self.action,
            "actor": self.actor,
            "at": self.at.isoformat(),
            "reason": self.reason,
            "before": self.before,
            "after": self.after,
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class TokenRecord:
    name: str
    role: str
    token_hash: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


class RollupParts(NamedTuple):
    """A rollup row as charts read it (``Transaction.rollup_parts``)."""

    key: RollupKey
    count: int
    errors: int
    fallbacks: int
    outcomes: dict[str, float]
    sketch: dict[str, Any]
    """``LatencySketch.to_dict()``"""
    first_chunk: dict[str, Any] | None = None
    """Streams' time to first chunk, ``LatencySketch.to_dict()``; None without streams."""


@dataclass(frozen=True, slots=True)
class VerdictRecord:
    id: int
    migration: str
    interval: int
    at: datetime
    phase_index: int
    phase: str
    action: str
    severity: str
    summary: str
    data: dict[str, Any]
    actor: str

    def to_dict(self, *, detail: bool = True) -> dict[str, Any]:
        out = {
            "id": self.id,
            "migration": self.migration,
            "interval": self.interval,
            "at": self.at.isoformat(),
            "phase_index": self.phase_index,
            "phase": self.phase,
            "action": self.action,
            "severity": self.severity,
            "summary": self.summary,
            "reasons": self.data.get("reasons", []),
            "actor": self.actor,
        }
        if detail:
            out["checks"] = self.data.get("checks", [])
            out["metrics"] = self.data.get("metrics", [])
            out["window"] = self.data.get("window")
        return out


def utc(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite gives them back naive)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- migrations --------------------------------------------------------------------------


def migration_from_row(row: Any) -> Migration:
    tenants: dict[str, Override] = {}
    for tenant in row.tenants.get("allow", []):
        tenants[tenant] = Override.ALLOW
    for tenant in row.tenants.get("deny", []):
        tenants[tenant] = Override.DENY
    return Migration(
        name=row.name,
        description=row.description,
        legacy_label=row.legacy_label,
        candidate_label=row.candidate_label,
        enabled=bool(row.enabled),
        percentage=int(row.percentage),
        features=dict(row.features),
        tenants=tenants,
        stickiness=row.stickiness,
        tenant_key=row.tenant_key,
        state=State(row.state),
        version=int(row.version),
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        updated_by=row.updated_by,
        group=row.bucketing_group,
        feature_percentages={k: int(v) for k, v in (row.feature_percentages or {}).items()},
    )


def migration_values(m: Migration) -> dict[str, Any]:
    return {
        "name": m.name,
        "description": m.description,
        "legacy_label": m.legacy_label,
        "candidate_label": m.candidate_label,
        "enabled": m.enabled,
        "percentage": m.percentage,
        "features": dict(sorted(m.features.items())),
        "tenants": {"allow": m.allowed_tenants, "deny": m.denied_tenants},
        "stickiness": m.stickiness,
        "tenant_key": m.tenant_key,
        "state": m.state.value,
        "version": m.version,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "updated_by": m.updated_by,
        "bucketing_group": m.group,
        "feature_percentages": dict(sorted(m.feature_percentages.items())) or None,
    }


def missing_migration(name: str, known: list[str] | None = None) -> NotFoundError:
    """With ``known`` (the names there are), the message says what exists or how to create."""
    if known is None:
        hint = ""
    elif known:
        hint = f"; known migrations: {', '.join(known)}"
    else:
        hint = "; create one with 'switchover migration create NAME'"
    return NotFoundError(f"migration {name!r} does not exist{hint}", field="name")


def duplicate_migration(name: str, version: int) -> ConflictError:
    return ConflictError(
        f"migration {name!r} already exists (version {version}); "
        "choose another name or change it with 'switchover rollout set'",
        field="name",
        current_version=version,
    )


def stale_migration(name: str, current: int, expected: int) -> ConflictError:
    return ConflictError(
        f"migration {name!r} was changed by someone else: it is at version "
        f"{current}, not {expected}; read it again and retry",
        field="version",
        current_version=current,
    )


def constraint_conflict() -> ConflictError:
    """What a transaction that broke a constraint (a duplicate key, a range) raises."""
    return ConflictError(
        "the change conflicts with what is stored (a duplicate or a broken "
        "constraint); read the current state and retry"
    )


# --- audit, tokens, rollups ----------------------------------------------------------------


def audit_from_row(r: Any) -> AuditEntry:
    return AuditEntry(
        id=r.id,
        migration=r.migration,
        action=r.action,
        actor=r.actor,
        at=utc(r.at),  # type: ignore[arg-type]
        reason=r.reason,
        before=r.before,
        after=r.after,
        version=r.version,
    )


def token_from_row(row: Any) -> TokenRecord:
    return TokenRecord(
        name=row.name,
        role=row.role,
        token_hash=row.token_hash,
        created_at=utc(row.created_at),  # type: ignore[arg-type]
        created_by=row.created_by,
        revoked_at=utc(row.revoked_at),
    )


def duplicate_token(name: str) -> ConflictError:
    return ConflictError(
        f"a token named {name!r} already exists; choose another name "
        "or revoke it first with 'switchover token revoke'",
        field="name",
    )


def no_active_token(name: str) -> NotFoundError:
    return NotFoundError(f"no active token named {name!r}", field="name")


def rollup_values(key: RollupKey, r: Rollup) -> dict[str, Any]:
    """A row: the first-chunk sketch in its own column (NULL without streams)."""
    data = r.to_dict()
    first_chunk = data.pop("first_chunk", None)
    return {
        "minute": key.minute,
        "migration": key.migration,
        "operation": key.operation,
        "side": key.side,
        "count": r.count,
        "errors": r.errors,
        "fallbacks": r.fallbacks,
        "data": data,
        "first_chunk": first_chunk,
    }


def stored_rollup(row: Any) -> StoredRollup:
    rollup = Rollup.from_dict(row.data)
    if row.first_chunk:
        rollup.first_chunk = LatencySketch.from_dict(row.first_chunk)
    return StoredRollup(RollupKey(int(row.minute), row.migration, row.operation, row.side), rollup)


def shadow_sample_from_row(r: Any) -> dict[str, Any]:
    return {
        "migration": r.migration,
        "operation": r.operation,
        "at": utc(r.at).isoformat(),  # type: ignore[union-attr]
        "kind": r.kind,
        **r.sample,
    }


# --- plans and verdicts ------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def parsed_plan(source: str, source_name: str) -> Plan:
    """Stored plans were validated when applied; parse each text once per process."""
    return load_plan(source, source_name)


def plan_from_row(row: Any) -> PlanState:
    return PlanState(
        migration=row.migration,
        plan=parsed_plan(row.source, row.source_name),
        source=row.source,
        source_name=row.source_name,
        status=PlanStatus(row.status),
        phase_index=int(row.phase_index),
        phase_started_at=utc(row.phase_started_at),  # type: ignore[arg-type]
        applied_at=utc(row.applied_at),  # type: ignore[arg-type]
        applied_by=row.applied_by,
        updated_at=utc(row.updated_at),  # type: ignore[arg-type]
        version=int(row.version),
        approved_index=row.approved_index,
        approval_requested=bool(row.approval_requested),
        last_action=row.last_action,
        last_interval=row.last_interval,
    )


def plan_values(s: PlanState) -> dict[str, Any]:
    return {
        "migration": s.migration,
        "plan_name": s.plan.name,
        "source": s.source,
        "source_name": s.source_name,
        "status": s.status.value,
        "phase_index": s.phase_index,
        "phase_started_at": s.phase_started_at,
        "approved_index": s.approved_index,
        "approval_requested": s.approval_requested,
        "last_action": s.last_action,
        "last_interval": s.last_interval,
        "version": s.version,
        "applied_at": s.applied_at,
        "applied_by": s.applied_by,
        "updated_at": s.updated_at,
    }


def stale_plan(migration: str) -> ConflictError:
    return ConflictError(
        f"the plan of {migration!r} changed meanwhile; read it again and retry",
        field="plan",
    )


def verdict_values(
    *,
    migration: str,
    interval: int,
    at: datetime,
    phase_index: int,
    phase: str,
    action: str,
    severity: str,
    summary: str,
    data: dict[str, Any],
    actor: str,
) -> dict[str, Any]:
    return {
        "migration": migration,
        "interval": interval,
        "at": at,
        "phase_index": phase_index,
        "phase": phase,
        "action": action,
        "severity": severity,
        "summary": summary[:MAX_SUMMARY],
        "data": data,
        "actor": actor,
    }


def verdict_from_row(row: Any) -> VerdictRecord:
    return VerdictRecord(
        id=int(row.id),
        migration=row.migration,
        interval=int(row.interval),
        at=utc(row.at),  # type: ignore[arg-type]
        phase_index=int(row.phase_index),
        phase=row.phase,
        action=row.action,
        severity=row.severity,
        summary=row.summary,
        data=row.data,
        actor=row.actor,
    )

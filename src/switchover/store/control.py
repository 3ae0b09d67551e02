"""Persistence for the controller: applied plans, the verdict history, lock rows."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from switchover.core.plan import Plan, load_plan
from switchover.core.plan_state import PlanState, PlanStatus
from switchover.errors import ConflictError, NotFoundError
from switchover.store import tables as t
from switchover.store.repository import Tx, _utc


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


@functools.lru_cache(maxsize=512)
def _parsed(source: str, source_name: str) -> Plan:
    """Stored plans were validated when applied; parse each text once per process."""
    return load_plan(source, source_name)


def _state(row: Any) -> PlanState:
    return PlanState(
        migration=row.migration,
        plan=_parsed(row.source, row.source_name),
        source=row.source,
        source_name=row.source_name,
        status=PlanStatus(row.status),
        phase_index=int(row.phase_index),
        phase_started_at=_utc(row.phase_started_at),  # type: ignore[arg-type]
        applied_at=_utc(row.applied_at),  # type: ignore[arg-type]
        applied_by=row.applied_by,
        updated_at=_utc(row.updated_at),  # type: ignore[arg-type]
        version=int(row.version),
        approved_index=row.approved_index,
        approval_requested=bool(row.approval_requested),
        last_action=row.last_action,
        last_interval=row.last_interval,
    )


def _values(s: PlanState) -> dict[str, Any]:
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


def get_plan(tx: Tx, migration: str, *, for_update: bool = False) -> PlanState:
    state = find_plan(tx, migration, for_update=for_update)
    if state is None:
        raise NotFoundError(
            f"migration {migration!r} has no plan; apply one with "
            f"'switchover plan apply {migration} PLAN.yaml'",
            field="name",
        )
    return state


def find_plan(tx: Tx, migration: str, *, for_update: bool = False) -> PlanState | None:
    query = sa.select(t.plans).where(t.plans.c.migration == migration)
    if for_update and tx.conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = tx.conn.execute(query).first()
    return None if row is None else _state(row)


def list_plans(tx: Tx) -> list[PlanState]:
    rows = tx.conn.execute(sa.select(t.plans).order_by(t.plans.c.migration))
    return [_state(r) for r in rows]


def put_plan(tx: Tx, state: PlanState) -> None:
    """Insert or replace the plan of a migration (a new apply starts over)."""
    tx.conn.execute(t.plans.delete().where(t.plans.c.migration == state.migration))
    tx.conn.execute(t.plans.insert().values(**_values(state)))


def update_plan(tx: Tx, state: PlanState, *, expected_version: int) -> None:
    values = _values(state)
    del values["migration"]
    result = tx.conn.execute(
        t.plans.update()
        .where(t.plans.c.migration == state.migration)
        .where(t.plans.c.version == expected_version)
        .values(**values)
    )
    if result.rowcount != 1:
        raise ConflictError(
            f"the plan of {state.migration!r} changed meanwhile; read it again and retry",
            field="plan",
        )


def insert_verdict(
    tx: Tx,
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
) -> int | None:
    """Store a verdict; None when this interval already has one (another leader's)."""
    values = {
        "migration": migration,
        "interval": interval,
        "at": at,
        "phase_index": phase_index,
        "phase": phase,
        "action": action,
        "severity": severity,
        "summary": summary[:2000],
        "data": data,
        "actor": actor,
    }
    dialect = postgresql if tx.conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(t.verdicts)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["migration", "interval"])
        .returning(t.verdicts.c.id)
    )
    row = tx.conn.execute(stmt).first()
    return None if row is None else int(row.id)


def _verdict(row: Any) -> VerdictRecord:
    return VerdictRecord(
        id=int(row.id),
        migration=row.migration,
        interval=int(row.interval),
        at=_utc(row.at),  # type: ignore[arg-type]
        phase_index=int(row.phase_index),
        phase=row.phase,
        action=row.action,
        severity=row.severity,
        summary=row.summary,
        data=row.data,
        actor=row.actor,
    )


def list_verdicts(tx: Tx, migration: str, *, limit: int = 20) -> list[VerdictRecord]:
    rows = tx.conn.execute(
        sa.select(t.verdicts)
        .where(t.verdicts.c.migration == migration)
        .order_by(t.verdicts.c.id.desc())
        .limit(limit)
    )
    return [_verdict(r) for r in rows]

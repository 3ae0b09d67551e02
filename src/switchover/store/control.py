"""Persistence for the controller: applied plans and the verdict history.

These are methods of every :class:`~switchover.store.ports.Transaction` (the SQL ones
below, mixed into :class:`~switchover.store.repository.Tx`; the in-memory ones in
:mod:`switchover.store.memory`). The functions at the end take a transaction and call
them, for the callers written as ``repo.find_plan(tx, name)``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from switchover.core.plan_state import PlanState
from switchover.errors import NotFoundError
from switchover.store import records as rec
from switchover.store import tables as t
from switchover.store.records import VerdictRecord

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from switchover.store.ports import Transaction

__all__ = [
    "PlanQueries",
    "VerdictRecord",
    "find_plan",
    "get_plan",
    "insert_verdict",
    "list_plans",
    "list_verdicts",
    "put_plan",
    "update_plan",
]


class PlanQueries:
    """Plans and verdicts in SQL, for a transaction that has ``conn``."""

    conn: Connection

    def find_plan(self, migration: str, *, for_update: bool = False) -> PlanState | None:
        query = sa.select(t.plans).where(t.plans.c.migration == migration)
        if for_update and self.conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return None if row is None else rec.plan_from_row(row)

    def list_plans(self) -> list[PlanState]:
        rows = self.conn.execute(sa.select(t.plans).order_by(t.plans.c.migration))
        return [rec.plan_from_row(r) for r in rows]

    def put_plan(self, state: PlanState) -> None:
        """Insert or replace the plan of a migration (a new apply starts over)."""
        self.conn.execute(t.plans.delete().where(t.plans.c.migration == state.migration))
        self.conn.execute(t.plans.insert().values(**rec.plan_values(state)))

    def update_plan(self, state: PlanState, *, expected_version: int) -> None:
        values = rec.plan_values(state)
        del values["migration"]
        result = self.conn.execute(
            t.plans.update()
            .where(t.plans.c.migration == state.migration)
            .where(t.plans.c.version == expected_version)
            .values(**values)
        )
        if result.rowcount != 1:
            raise rec.stale_plan(state.migration)

    def insert_verdict(
        self,
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
        values = rec.verdict_values(
            migration=migration,
            interval=interval,
            at=at,
            phase_index=phase_index,
            phase=phase,
            action=action,
            severity=severity,
            summary=summary,
            data=data,
            actor=actor,
        )
        dialect = postgresql if self.conn.dialect.name == "postgresql" else sqlite
        stmt = (
            dialect.insert(t.verdicts)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["migration", "interval"])
            .returning(t.verdicts.c.id)
        )
        row = self.conn.execute(stmt).first()
        return None if row is None else int(row.id)

    def list_verdicts(self, migration: str, *, limit: int = 20) -> list[VerdictRecord]:
        rows = self.conn.execute(
            sa.select(t.verdicts)
            .where(t.verdicts.c.migration == migration)
            .order_by(t.verdicts.c.id.desc())
            .limit(limit)
        )
        return [rec.verdict_from_row(r) for r in rows]


# --- the same, as functions of a transaction ---------------------------------------------


def get_plan(tx: Transaction, migration: str, *, for_update: bool = False) -> PlanState:
    state = tx.find_plan(migration, for_update=for_update)
    if state is None:
        raise NotFoundError(
            f"migration {migration!r} has no plan; apply one with "
            f"'switchover plan apply {migration} PLAN.yaml'",
            field="name",
        )
    return state


def find_plan(tx: Transaction, migration: str, *, for_update: bool = False) -> PlanState | None:
    return tx.find_plan(migration, for_update=for_update)


def list_plans(tx: Transaction) -> list[PlanState]:
    return tx.list_plans()


def put_plan(tx: Transaction, state: PlanState) -> None:
    """Insert or replace the plan of a migration (a new apply starts over)."""
    tx.put_plan(state)


def update_plan(tx: Transaction, state: PlanState, *, expected_version: int) -> None:
    tx.update_plan(state, expected_version=expected_version)


def insert_verdict(
    tx: Transaction,
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
    return tx.insert_verdict(
        migration=migration,
        interval=interval,
        at=at,
        phase_index=phase_index,
        phase=phase,
        action=action,
        severity=severity,
        summary=summary,
        data=data,
        actor=actor,
    )


def list_verdicts(tx: Transaction, migration: str, *, limit: int = 20) -> list[VerdictRecord]:
    return tx.list_verdicts(migration, limit=limit)

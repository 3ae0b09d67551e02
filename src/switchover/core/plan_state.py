"""Where an applied plan stands: its phase, since when, and whether it may advance."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from switchover.core.plan import Plan


class PlanStatus(StrEnum):
    RUNNING = "running"
    """The controller judges, advances and rolls back."""
    PAUSED = "paused"
    """Held by an operator: judged and alerted on, but the controller changes nothing."""
    ROLLED_BACK = "rolled_back"
    """Stepped back on evidence or by hand; no advance until resumed."""
    COMPLETED = "completed"
    ABORTED = "aborted"
    """Total rollback: percentage 0, master switch off; nothing more happens."""


ACTIVE = (PlanStatus.RUNNING, PlanStatus.PAUSED, PlanStatus.ROLLED_BACK)


@dataclass(frozen=True, slots=True)
class PlanState:
    migration: str
    plan: Plan
    source: str
    source_name: str
    status: PlanStatus
    phase_index: int
    """-1 before the first phase."""
    phase_started_at: datetime
    applied_at: datetime
    applied_by: str
    updated_at: datetime
    version: int = 1
    approved_index: int | None = None
    """The phase an operator approved entering."""
    approval_requested: bool = False
    last_action: str | None = None
    last_interval: int | None = None

    @property
    def phase_name(self) -> str:
        return self.plan.phases[self.phase_index].name if self.phase_index >= 0 else "(not started)"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def approved_next(self) -> bool:
        return self.approved_index is not None and self.approved_index == self.phase_index + 1

    def to_dict(self, *, now: datetime | None = None, reveal: bool = False) -> dict[str, Any]:
        phases = self.plan.phases
        current = phases[self.phase_index] if self.phase_index >= 0 else None
        nxt = phases[self.phase_index + 1] if self.phase_index + 1 < len(phases) else None
        data: dict[str, Any] = {
            "migration": self.migration,
            "plan": self.plan.name,
            "source_name": self.source_name,
            "status": self.status.value,
            "phase_index": self.phase_index,
            "phase": current.name if current else None,
            "percentage": current.percentage if current else 0,
            "next_phase": nxt.name if nxt else None,
            "phase_started_at": self.phase_started_at.isoformat(),
            "minimum_duration_seconds": current.duration if current else 0,
            "approved_index": self.approved_index,
            "awaiting_approval": self.approval_requested,
            "last_action": self.last_action,
            "applied_at": self.applied_at.isoformat(),
            "applied_by": self.applied_by,
            "version": self.version,
            "spec": self.plan.to_dict(reveal=reveal),
        }
        if now is not None:
            data["seconds_in_phase"] = max(0.0, (now - self.phase_started_at).total_seconds())
        return data


def moved(state: PlanState, index: int, *, now: datetime, status: PlanStatus) -> PlanState:
    """The plan at phase ``index`` from ``now``, approvals for earlier phases spent."""
    keep = state.approved_index is not None and state.approved_index > index
    approved = state.approved_index if keep else None
    return replace(
        state,
        phase_index=index,
        phase_started_at=now,
        status=status,
        approved_index=approved,
        approval_requested=False,
        updated_at=now,
    )

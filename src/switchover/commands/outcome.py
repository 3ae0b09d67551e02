"""What a command did: a typed answer every entry point renders its own way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from switchover.core.changes import changed_fields
from switchover.core.migration import Migration
from switchover.core.plan_state import PlanState


@dataclass(frozen=True, slots=True)
class Change:
    """One field that moved: ``percentage: 5 -> 10``, ``plan.status: paused -> running``."""

    field: str
    before: Any
    after: Any

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "before": self.before, "after": self.after}

    def __str__(self) -> str:
        """In an operator's words: ``Candidate share: 5 % → 10 %``."""
        name, _, sub = self.field.partition(".")
        if name == "features":
            return f"Feature {sub}: {_shown(self.before)} → {_shown(self.after)}"
        if self.field == "data" and self.before is None:
            return f"Data: {self.after}"
        label = _LABELS.get(self.field, self.field)
        unit = " %" if self.field == "percentage" else ""
        return f"{label}: {_shown(self.before)}{unit} → {_shown(self.after)}{unit}"


_LABELS = {
    "percentage": "Candidate share",
    "enabled": "Master switch",
    "state": "State",
    "plan.status": "Plan",
    "plan.phase": "Plan phase",
    "plan.approved_next": "Next phase approved",
    "tenants.allow": "Tenants always on the candidate (allow)",
    "tenants.deny": "Tenants always on legacy (deny)",
}


def _shown(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def diff(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, prefix: str = ""
) -> tuple[Change, ...]:
    """The fields that differ between two views, each named ``prefix + field``."""
    if before == after:
        return ()
    return tuple(
        Change(prefix + name, old, new)
        for name, old, new in changed_fields(before or {}, after or {})
    )


def plan_view(state: PlanState | None) -> dict[str, Any] | None:
    """The parts of a plan an operator's change can move."""
    if state is None:
        return None
    return {
        "status": state.status.value,
        "phase": state.phase_name,
        "approved_next": state.approved_next(),
    }


@dataclass(frozen=True, slots=True)
class Outcome:
    """A command's answer: a sentence, the fields it changed, and what it left.

    ``migration`` and ``plan`` are the state after the command (``None`` where it does
    not concern one); ``data`` holds what only some commands return (a new token, the
    rows a restore put back). An empty ``changes`` means nothing was written.
    """

    message: str
    changes: tuple[Change, ...] = ()
    migration: Migration | None = None
    plan: PlanState | None = None
    notes: tuple[str, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def to_dict(self, *, now: datetime | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "message": self.message,
            "changes": [c.to_dict() for c in self.changes],
            "notes": list(self.notes),
        }
        if self.migration is not None:
            out["migration"] = self.migration.to_dict()
        if self.plan is not None:
            out["plan"] = self.plan.to_dict(now=now)
        out.update(self.data)
        return out

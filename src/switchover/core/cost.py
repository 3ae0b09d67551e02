"""Seed 000's cost comparison: one deployment per agent before, a few core workers after."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from switchover.errors import ValidationError


@dataclass(frozen=True, slots=True)
class CostEstimate:
    agents: int
    per_agent: float
    workers: int
    per_worker: float

    @property
    def before(self) -> float:
        return self.agents * self.per_agent

    @property
    def after(self) -> float:
        return self.workers * self.per_worker

    @property
    def saving(self) -> float:
        return self.before - self.after

    @property
    def saving_pct(self) -> float | None:
        return None if self.before == 0 else self.saving / self.before * 100

    def to_dict(self) -> dict[str, Any]:
        pct = self.saving_pct
        return {
            "agents": self.agents,
            "per_agent_monthly": self.per_agent,
            "workers": self.workers,
            "per_worker_monthly": self.per_worker,
            "before_monthly": round(self.before, 2),
            "after_monthly": round(self.after, 2),
            "saving_monthly": round(self.saving, 2),
            "saving_pct": None if pct is None else round(pct, 1),
            "saving_yearly": round(self.saving * 12, 2),
        }


def estimate(agents: int, per_agent: float, workers: int, per_worker: float) -> CostEstimate:
    for name, value in (("agents", agents), ("workers", workers)):
        if value < 0:
            raise ValidationError(f"--{name} must be 0 or more", field=name)
    for name, value in (("per-agent", per_agent), ("per-worker", per_worker)):
        if value < 0:
            raise ValidationError(f"--{name} (monthly cost) must be 0 or more", field=name)
    return CostEstimate(agents, per_agent, workers, per_worker)

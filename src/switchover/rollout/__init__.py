"""Managing rollouts: create migrations, change them with audit, read their status."""

from switchover.rollout.service import RolloutService

__all__ = ["RolloutService"]

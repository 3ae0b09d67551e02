"""Roles and what each may do. Ordered: each role may do what the ones below it may."""

from __future__ import annotations

from enum import StrEnum

from switchover.errors import ValidationError


class Role(StrEnum):
    VIEWER = "viewer"
    """Reads migrations, status, audit and decisions."""
    WORKER = "worker"
    """A viewer that may also read agents' runtime configs, keys included."""
    OPERATOR = "operator"
    """Changes rollouts: percentage, features, tenants, kill, resume."""
    ADMIN = "admin"
    """Manages tokens and everything else."""

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


_RANK = {Role.VIEWER: 0, Role.WORKER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        valid = ", ".join(r.value for r in Role)
        raise ValidationError(
            f"role {value!r} is not known; use one of: {valid}", field="role"
        ) from None

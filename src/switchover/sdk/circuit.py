"""A circuit breaker per process and operation: a failing candidate stops costing waits.

After ``failures`` candidate failures (exceptions or timeouts) in a row within
``window`` seconds the circuit opens (in a row: a busy operation with a steady, low
error rate never trips it; a candidate that is down does, within a few calls). While
it is open every call of the operation is served by legacy at once, with decision
reason ``circuit_open``, without trying the candidate. After ``cooldown`` seconds one
call is let through as a probe (half-open); its success closes the circuit, its
failure opens it for another ``cooldown``. Time comes from an injected monotonic
clock, so tests drive it without sleeping.

The state lives in this process only: the controller's rollback is the fleet-wide
answer, the circuit is what protects callers until it acts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    """When an operation's circuit opens, and how long until a probe."""

    failures: int = 5
    """Candidate failures in a row, within ``window``, that open the circuit."""
    window: float = 30.0
    """Seconds over which failures are counted."""
    cooldown: float = 10.0
    """Seconds the circuit stays open before one probe call tries the candidate."""

    def __post_init__(self) -> None:
        if isinstance(self.failures, bool) or not isinstance(self.failures, int):
            raise ValueError("circuit failures must be a whole number >= 1")
        if self.failures < 1:
            raise ValueError("circuit failures must be a whole number >= 1")
        for name in ("window", "cooldown"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"circuit {name} must be a positive number of seconds")


DEFAULT_POLICY = CircuitPolicy()

Transition = Callable[[str, str, str], None]
"""Hears ``(operation, old_state, new_state)``."""


class Circuit:
    """One operation's breaker. Not thread-safe by lock: a race lets one extra call
    through or counts one failure late, which a breaker tolerates."""

    __slots__ = (
        "_failures",
        "_on_change",
        "_opened_at",
        "_probing",
        "decisions",
        "now",
        "operation",
        "policy",
    )

    def __init__(
        self,
        operation: str,
        policy: CircuitPolicy,
        now: Callable[[], float],
        on_change: Transition | None = None,
    ) -> None:
        self.operation = operation
        self.policy = policy
        self.now = now
        self._failures: deque[float] = deque()
        self._opened_at: float | None = None
        self._probing = False
        self._on_change = on_change
        self.decisions: dict[int, tuple[Any, Any]] = {}
        """id(a candidate decision) -> (it, its ``circuit_open`` twin): built once each."""

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        return HALF_OPEN if self._probing else OPEN

    def allow(self) -> bool:
        """May this call try the candidate? False while open; True for one probe after
        the cooldown (the circuit is then half-open until the probe ends)."""
        opened = self._opened_at
        if opened is None:
            return True
        if self._probing or self.now() - opened < self.policy.cooldown:
            return False
        self._probing = True
        self._change(OPEN, HALF_OPEN)
        return True

    def success(self) -> None:
        if self._opened_at is None:
            if self._failures:  # failures count only in a row
                self._failures.clear()
            return
        if self._probing:
            self._opened_at = None
            self._probing = False
            self._failures.clear()
            self._change(HALF_OPEN, CLOSED)

    def failure(self) -> None:
        now = self.now()
        if self._opened_at is not None:
            if self._probing:  # the probe failed: open for another cooldown
                self._probing = False
                self._opened_at = now
                self._change(HALF_OPEN, OPEN)
            return
        failures = self._failures
        failures.append(now)
        horizon = now - self.policy.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if len(failures) >= self.policy.failures:
            failures.clear()
            self._opened_at = now
            self._change(CLOSED, OPEN)

    def abandon(self) -> None:
        """The probe ended neither way (cancelled): let the next call probe instead."""
        if self._probing:
            self._probing = False

    def _change(self, old: str, new: str) -> None:
        if self._on_change is not None:
            self._on_change(self.operation, old, new)

"""What every notification target shares: the events, the notification, the Protocols."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

EVENTS: tuple[str, ...] = ("phase_change", "hold", "rollback", "approval_needed", "completed")
SEVERITIES: tuple[str, ...] = ("P0", "P1", "P2", "P3")


@dataclass(frozen=True, slots=True)
class Notification:
    """One thing that happened to a rollout, told once to every subscribed target."""

    event: str
    migration: str
    text: str
    at: datetime
    severity: str = "P3"
    fields: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise ValueError(f"unknown notification event {self.event!r}; known: {list(EVENTS)}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {list(SEVERITIES)}, got {self.severity!r}")


def check_events(events: object) -> frozenset[str]:
    """``events`` as a frozenset of known event names, or ValueError naming the unknown ones."""
    chosen = frozenset(events)  # type: ignore[call-overload]
    unknown = sorted(chosen - set(EVENTS))
    if unknown:
        raise ValueError(f"unknown notification events {unknown}; known: {list(EVENTS)}")
    return chosen


class Target(Protocol):
    """Where notifications go: a webhook, a list in memory, nowhere.

    ``send`` hands one notification over and returns at once: it never raises for a
    delivery problem and never waits on the network (a target that delivers over the
    network queues and retries on its own). ``close`` releases what the target holds;
    what is sent after it is dropped.
    """

    def send(self, notification: Notification) -> None: ...

    def close(self) -> None: ...


class NotifierLike(Protocol):
    """What the controller sends through: the webhooks a plan names, one notification.

    :class:`~switchover.control.notify.webhook.Notifier` (HTTP, on a background thread)
    and :class:`~switchover.control.notify.memory.MemoryNotifier` (a list) both fit.
    """

    def send(self, targets: Sequence[Any], n: Notification) -> None:
        """``targets``: the plan's webhooks (``notify.Webhook``) subscribed to ``n``."""

    def flush(self, timeout: float = 10.0) -> bool: ...

    def close(self, timeout: float = 5.0) -> None: ...

    @property
    def stats(self) -> dict[str, int]: ...

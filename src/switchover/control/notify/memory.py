"""Notifications kept in a list, in order: for the simulator and tests.

:class:`MemoryTarget` is a :class:`~switchover.control.notify.base.Target` that keeps
what it is sent. :class:`MemoryNotifier` stands in for the webhook
:class:`~switchover.control.notify.webhook.Notifier`: it keeps which webhook would have
received which notification, applying each webhook's event subscription.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from switchover.control.notify.base import Notification

if TYPE_CHECKING:
    from switchover.control.notify.webhook import Webhook


class MemoryTarget:
    """Keeps every notification it is sent until closed; later ones are counted as dropped."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []
        self.dropped = 0
        self._lock = threading.Lock()
        self._closed = False

    def send(self, notification: Notification) -> None:
        with self._lock:
            if self._closed:
                self.dropped += 1
            else:
                self.sent.append(notification)

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def notifications(self, event: str | None = None) -> list[Notification]:
        """What was sent, oldest first; only ``event``'s when given."""
        with self._lock:
            return [n for n in self.sent if event is None or n.event == event]


class MemoryNotifier:
    """Keeps what would be sent to which webhook, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[Webhook, Notification]] = []
        self._lock = threading.Lock()
        self._closed = False
        self._dropped = 0

    def send(self, targets: Sequence[Webhook], n: Notification) -> None:
        chosen = [t for t in targets if n.event in t.events]
        with self._lock:
            if self._closed:
                self._dropped += len(chosen)
                return
            self.sent.extend((t, n) for t in chosen)

    def flush(self, timeout: float = 10.0) -> bool:
        return True

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._closed = True

    @property
    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "sent": len(self.sent),
                "failed": 0,
                "retried": 0,
                "dropped": self._dropped,
                "queued": 0,
            }

    def notifications(self, event: str | None = None) -> list[Notification]:
        """What was sent (once per notification, whatever the number of webhooks)."""
        with self._lock:
            seen: list[Notification] = []
            for _, n in self.sent:
                if (event is None or n.event == event) and not any(n is s for s in seen):
                    seen.append(n)
            return seen

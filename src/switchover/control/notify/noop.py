"""The target that tells nobody: for a process that must not send notifications."""

from __future__ import annotations

from switchover.control.notify.base import Notification


class NoopTarget:
    """Accepts every notification and does nothing with it."""

    def send(self, notification: Notification) -> None:
        return None

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return "NoopTarget()"

"""What every target shares: the notification's checks, the Protocol, the package surface."""

from __future__ import annotations

import inspect

import pytest

import switchover.control.notify as notify
from switchover.control.notify import (
    EVENTS,
    MemoryNotifier,
    MemoryTarget,
    NoopTarget,
    Notification,
    Notifier,
    NotifierLike,
    Target,
    WebhookTarget,
)

from .notes import AT


def test_notifications_are_checked_up_front() -> None:
    with pytest.raises(ValueError, match="unknown notification event"):
        Notification(event="done", migration="m", text="t", at=AT)
    with pytest.raises(ValueError, match="severity"):
        Notification(event="hold", migration="m", text="t", at=AT, severity="P9")
    assert set(EVENTS) == {"phase_change", "hold", "rollback", "approval_needed", "completed"}


def _methods(protocol: type) -> set[str]:
    return {n for n in vars(protocol) if not n.startswith("_")}


@pytest.mark.parametrize("kind", [NoopTarget, MemoryTarget, WebhookTarget])
def test_every_target_fits_the_target_protocol(kind: type) -> None:
    assert _methods(Target) == {"send", "close"}
    for name in _methods(Target):
        ours = inspect.signature(getattr(Target, name))
        theirs = inspect.signature(getattr(kind, name))
        assert list(theirs.parameters)[:2] == list(ours.parameters)[:2], (kind, name)


@pytest.mark.parametrize("kind", [Notifier, MemoryNotifier])
def test_both_notifiers_fit_what_the_controller_sends_through(kind: type) -> None:
    for name in _methods(NotifierLike):
        assert hasattr(kind, name), (kind, name)


def test_the_package_lists_every_public_name() -> None:
    public = {
        name
        for name, value in vars(notify).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(notify.__all__)

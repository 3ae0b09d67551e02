"""The no-op target: accepts everything, tells nobody, never fails."""

from __future__ import annotations

from switchover.control.notify import NoopTarget

from .notes import note


def test_noop_target_accepts_before_and_after_close() -> None:
    target = NoopTarget()
    target.send(note())
    target.close()
    target.send(note("rollback"))
    target.close()
    assert repr(target) == "NoopTarget()"

"""In-memory targets: what the simulator and tests read instead of a webhook receiver."""

from __future__ import annotations

from switchover.control.notify import MemoryNotifier, MemoryTarget, Webhook

from .notes import note


def test_memory_target_keeps_notifications_in_order_until_closed() -> None:
    target = MemoryTarget()
    target.send(note("phase_change"))
    target.send(note("rollback"))
    target.send(note("phase_change", phase="p50"))
    assert [n.event for n in target.notifications()] == ["phase_change", "rollback", "phase_change"]
    assert [n.fields["phase"] for n in target.notifications("phase_change")] == ["pilot", "p50"]
    target.close()
    target.send(note("completed"))
    assert len(target.sent) == 3 and target.dropped == 1


def test_memory_notifier_records_what_each_webhook_would_get() -> None:
    memory = MemoryNotifier()
    all_events = Webhook("https://example.com/all")
    rollbacks = Webhook("https://example.com/rb", events=frozenset({"rollback"}))
    memory.send([all_events, rollbacks], note("phase_change"))
    memory.send([all_events, rollbacks], note("rollback"))
    assert [(t.url, n.event) for t, n in memory.sent] == [
        ("https://example.com/all", "phase_change"),
        ("https://example.com/all", "rollback"),
        ("https://example.com/rb", "rollback"),
    ]
    assert [n.event for n in memory.notifications()] == ["phase_change", "rollback"]
    assert [n.event for n in memory.notifications("rollback")] == ["rollback"]
    assert memory.flush() is True
    memory.close()
    memory.send([all_events], note("completed"))
    assert memory.stats == {"sent": 3, "failed": 0, "retried": 0, "dropped": 1, "queued": 0}

"""Seed 003 §5.5: tenants on candidate / tenants known."""

from __future__ import annotations

from switchover.core.bucketing import in_rollout
from switchover.core.migration import Migration, Override
from switchover.core.status import rollout_status


def test_sticky_on_user_counts_only_allowed_tenants_until_100_percent() -> None:
    m = Migration(
        name="m",
        percentage=50,
        tenants={"a": Override.ALLOW, "d": Override.DENY},
        stickiness="user_id",
    )
    s = rollout_status(m, ["x", "y", "a"], None)
    assert (s.tenants_on_candidate, s.tenants_known) == (1, 4)
    full = rollout_status(Migration(name="m", percentage=100, tenants=m.tenants), ["x", "y"], None)
    assert (full.tenants_on_candidate, full.tenants_known) == (3, 4)


def test_sticky_on_tenant_counts_tenants_whose_bucket_is_in() -> None:
    tenants = [f"t{i}" for i in range(200)]
    m = Migration(name="m", percentage=25, stickiness="tenant_id")
    expected = sum(in_rollout("m", t, 25) for t in tenants)
    s = rollout_status(m, tenants, {"action": "x"})
    assert s.tenants_on_candidate == expected
    assert 0 < expected < 200
    assert s.to_dict()["last_change"] == {"action": "x"}


def test_kill_switch_puts_every_tenant_on_legacy() -> None:
    m = Migration(name="m", enabled=False, percentage=100, tenants={"a": Override.ALLOW})
    assert rollout_status(m, ["b"], None).tenants_on_candidate == 0

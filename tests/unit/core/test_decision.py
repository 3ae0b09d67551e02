"""The decision order of DESIGN.md, reason by reason."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from switchover.core.bucketing import in_rollout
from switchover.core.decision import (
    CompiledMigration,
    Decision,
    Reason,
    Side,
    decide,
    unreachable,
)
from switchover.core.migration import Migration, Override


def _migration(**kw: object) -> Migration:
    base: dict[str, object] = {
        "name": "voice_v2",
        "enabled": True,
        "percentage": 50,
        "features": {"stt": True, "tts": False},
        "tenants": {"vip": Override.ALLOW, "bad": Override.DENY},
        "stickiness": "user_id",
    }
    base.update(kw)
    return Migration(**base)  # type: ignore[arg-type]


def _key_in(name: str, percentage: int, want: bool) -> str:
    for i in range(10_000):
        if in_rollout(name, f"u{i}", percentage) is want:
            return f"u{i}"
    raise AssertionError("no key found")


def test_master_switch_off_wins_over_everything() -> None:
    m = _migration(enabled=False, percentage=100)
    for ctx in ({"user_id": "1", "tenant_id": "vip"}, {"user_id": "1"}, {}):
        d = decide(m, "stt", ctx)
        assert (d.side, d.reason) == (Side.LEGACY, Reason.KILL_SWITCH)


def test_feature_off_comes_before_tenant_allow() -> None:
    d = decide(_migration(percentage=100), "tts", {"user_id": "1", "tenant_id": "vip"})
    assert (d.side, d.reason) == (Side.LEGACY, Reason.FEATURE_OFF)


def test_unknown_feature_is_legacy_not_an_exception() -> None:
    d = decide(_migration(percentage=100), "nope", {"user_id": "1"})
    assert (d.side, d.reason, d.feature) == (Side.LEGACY, Reason.UNKNOWN_FEATURE, "nope")


def test_tenant_deny_beats_a_bucket_that_is_in() -> None:
    d = decide(_migration(percentage=100), "stt", {"user_id": "1", "tenant_id": "bad"})
    assert (d.side, d.reason) == (Side.LEGACY, Reason.TENANT_DENY)


def test_tenant_allow_beats_a_bucket_that_is_out_and_a_missing_key() -> None:
    m = _migration(percentage=0)
    assert decide(m, "stt", {"user_id": "1", "tenant_id": "vip"}).reason is Reason.TENANT_ALLOW
    d = decide(m, "stt", {"tenant_id": "vip"})
    assert (d.side, d.reason) == (Side.CANDIDATE, Reason.TENANT_ALLOW)


def test_tenant_ids_given_as_numbers_match_their_string_override() -> None:
    m = _migration(tenants={"42": Override.ALLOW}, percentage=0)
    assert decide(m, "stt", {"user_id": "1", "tenant_id": 42}).side is Side.CANDIDATE


def test_missing_or_empty_stickiness_key_is_legacy() -> None:
    m = _migration(percentage=100)
    for ctx in ({}, {"user_id": None}, {"user_id": ""}, {"tenant_id": "other"}):
        d = decide(m, "stt", ctx)
        assert (d.side, d.reason) == (Side.LEGACY, Reason.MISSING_KEY)


def test_bucket_in_and_out_follow_the_formula() -> None:
    m = _migration(percentage=30)
    key_in, key_out = _key_in("voice_v2", 30, True), _key_in("voice_v2", 30, False)
    d_in, d_out = decide(m, "stt", {"user_id": key_in}), decide(m, "stt", {"user_id": key_out})
    assert (d_in.side, d_in.reason) == (Side.CANDIDATE, Reason.BUCKET_IN)
    assert (d_out.side, d_out.reason) == (Side.LEGACY, Reason.BUCKET_OUT)


def test_percentage_zero_and_hundred() -> None:
    assert decide(_migration(percentage=0), "stt", {"user_id": "x"}).reason is Reason.BUCKET_OUT
    assert decide(_migration(percentage=100), "stt", {"user_id": "x"}).reason is Reason.BUCKET_IN


def test_no_feature_decides_on_the_migration_alone() -> None:
    m = _migration(percentage=100, features={})
    d = decide(m, None, {"user_id": "1"})
    assert (d.side, d.reason, d.feature) == (Side.CANDIDATE, Reason.BUCKET_IN, None)


def test_custom_stickiness_and_tenant_keys() -> None:
    m = _migration(stickiness="call_id", tenant_key="org", percentage=100)
    assert decide(m, "stt", {"user_id": "1"}).reason is Reason.MISSING_KEY
    assert decide(m, "stt", {"call_id": "c1"}).reason is Reason.BUCKET_IN
    assert decide(m, "stt", {"call_id": "c1", "org": "bad"}).reason is Reason.TENANT_DENY


def test_decisions_carry_migration_feature_and_version_and_are_frozen() -> None:
    m = _migration(version=7, percentage=100)
    d = CompiledMigration(m).decide("stt", {"user_id": "1"})
    assert (d.migration, d.feature, d.version) == ("voice_v2", "stt", 7)
    assert d.to_dict() == {
        "side": "candidate",
        "reason": "bucket_in",
        "migration": "voice_v2",
        "feature": "stt",
        "version": 7,
    }
    with pytest.raises(FrozenInstanceError):
        d.side = Side.LEGACY  # type: ignore[misc]


def test_unreachable_is_legacy() -> None:
    d = unreachable("voice_v2", "stt")
    assert isinstance(d, Decision)
    assert (d.side, d.reason) == (Side.LEGACY, Reason.STORE_UNREACHABLE)

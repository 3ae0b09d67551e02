"""Validation names the field and the fix; transitions are pure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from switchover.core import migration as mig
from switchover.core.migration import Migration, Override, State
from switchover.errors import ValidationError

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _new(**kw: object) -> Migration:
    return mig.new_migration("voice_v2", features=["stt", "tts"], now=NOW, actor="a", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [101, -1, "abc", "", "25.5", None, 3.0, True, "1e2"])
def test_bad_percentages_name_the_field(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        mig.parse_percentage(value)
    assert info.value.field == "percentage"
    assert "0 to 100" in info.value.message


@pytest.mark.parametrize("value,expected", [(0, 0), (100, 100), ("25", 25), (" 7 ", 7)])
def test_good_percentages(value: object, expected: int) -> None:
    assert mig.parse_percentage(value) == expected


@pytest.mark.parametrize("name", ["", "Voice", "-x", "a b", "x" * 64, "ü"])
def test_bad_names(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        mig.validate_name(name)
    assert info.value.field == "name"


@pytest.mark.parametrize("tenant", ["", "   ", None, "x" * 201])
def test_bad_tenant_ids(tenant: object) -> None:
    with pytest.raises(ValidationError) as info:
        mig.validate_tenant_id(tenant)
    assert info.value.field == "tenant"


def test_duplicate_or_bad_features_are_refused() -> None:
    with pytest.raises(ValidationError, match="twice"):
        mig.new_migration("m", features=["stt", "stt"], now=NOW, actor="a")
    with pytest.raises(ValidationError) as info:
        mig.new_migration("m", features=["STT!"], now=NOW, actor="a")
    assert info.value.field == "features"


def test_new_migration_is_a_safe_draft() -> None:
    m = _new()
    assert (m.enabled, m.percentage, m.state, m.version) == (True, 0, State.DRAFT, 1)
    assert m.features == {"stt": False, "tts": False}


def test_unknown_feature_lists_the_known_ones() -> None:
    with pytest.raises(ValidationError) as info:
        mig.with_feature(_new(), "llm", True)
    assert info.value.field == "feature"
    assert "stt, tts" in info.value.message


def test_rollout_states() -> None:
    m = mig.with_percentage(_new(), 10)
    assert m.state is State.ROLLING
    killed = mig.killed(m)
    assert (killed.enabled, killed.state) == (False, State.ROLLED_BACK)
    back = mig.resumed(killed)
    assert (back.enabled, back.state, back.percentage) == (True, State.ROLLING, 10)
    assert mig.resumed(mig.killed(_new())).state is State.DRAFT


def test_tenant_overrides_set_replace_and_clear() -> None:
    m = mig.with_tenant(_new(), "t1", Override.ALLOW)
    m = mig.with_tenant(m, "t2", Override.DENY)
    assert (m.allowed_tenants, m.denied_tenants) == (["t1"], ["t2"])
    m = mig.with_tenant(m, "t1", Override.DENY)
    assert m.denied_tenants == ["t1", "t2"]
    m = mig.with_tenant(m, " t1 ", None)
    assert m.denied_tenants == ["t2"]
    with pytest.raises(ValidationError, match="no override"):
        mig.with_tenant(m, "t1", None)


def test_stamped_bumps_version_and_records_actor() -> None:
    later = datetime(2026, 2, 1, tzinfo=UTC)
    m = mig.stamped(_new(), now=later, actor="bob")
    assert (m.version, m.updated_at, m.updated_by) == (2, later, "bob")


def test_round_trip_through_dict() -> None:
    m = mig.with_tenant(mig.with_percentage(_new(description="d"), 40), "t", Override.ALLOW)
    assert Migration.from_dict(m.to_dict()) == m


def test_a_killed_migration_stays_rolled_back_when_its_percentage_changes() -> None:
    m = mig.with_percentage(mig.killed(mig.with_percentage(_new(), 10)), 50)
    assert (m.enabled, m.state, m.percentage) == (False, State.ROLLED_BACK, 50)
    assert mig.resumed(m).state is State.ROLLING

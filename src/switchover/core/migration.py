"""The migration: one named move from ``legacy`` to ``candidate``, and its rules."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from switchover.errors import ValidationError


class State(StrEnum):
    DRAFT = "draft"
    ROLLING = "rolling"
    PAUSED = "paused"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"


class Override(StrEnum):
    ALLOW = "allow"
    """The tenant is forced onto the candidate."""
    DENY = "deny"
    """The tenant is forced onto legacy."""


_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$")
MAX_TENANT_ID = 200


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    stickiness: str = "user_id"
    tenant_key: str = "tenant_id"
    description: str = ""
    legacy_label: str = "legacy"
    candidate_label: str = "candidate"
    enabled: bool = True
    percentage: int = 0
    features: Mapping[str, bool] = field(default_factory=dict)
    tenants: Mapping[str, Override] = field(default_factory=dict)
    state: State = State.DRAFT
    version: int = 1
    created_at: datetime | None = None
    updated_at: datetime | None = None
    updated_by: str = ""
    group: str | None = None
    """The bucketing group (Unleash's ``groupId``); None: the migration's name."""
    feature_percentages: Mapping[str, int] = field(default_factory=dict)
    """A feature's own percentage, a cap on the migration's: its calls go to the candidate
    for ``min(cap, percentage)`` of callers. The same bucket decides both, so a caller in
    the feature's share is in the migration's too, and growing either moves nobody back."""

    def feature_percentage(self, feature: str) -> int:
        """The share of callers whose calls of ``feature`` go to the candidate."""
        cap = self.feature_percentages.get(feature)
        return self.percentage if cap is None else min(cap, self.percentage)

    @property
    def bucketing_group(self) -> str:
        """What a caller's key is hashed with: ``murmur3(f"{group}:{key}")``."""
        return self.name if self.group is None else self.group

    @property
    def allowed_tenants(self) -> list[str]:
        return sorted(t for t, o in self.tenants.items() if o is Override.ALLOW)

    @property
    def denied_tenants(self) -> list[str]:
        return sorted(t for t, o in self.tenants.items() if o is Override.DENY)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view; the shape of ``status --json`` and the API."""
        return {
            "name": self.name,
            "description": self.description,
            "legacy_label": self.legacy_label,
            "candidate_label": self.candidate_label,
            "enabled": self.enabled,
            "percentage": self.percentage,
            "features": dict(sorted(self.features.items())),
            "feature_percentages": dict(sorted(self.feature_percentages.items())),
            "tenants": {"allow": self.allowed_tenants, "deny": self.denied_tenants},
            "stickiness": self.stickiness,
            "tenant_key": self.tenant_key,
            "group": self.bucketing_group,
            "state": self.state.value,
            "version": self.version,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "updated_by": self.updated_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Migration:
        tenants: dict[str, Override] = {}
        raw_tenants = data.get("tenants") or {}
        for t in raw_tenants.get("allow", []):
            tenants[t] = Override.ALLOW
        for t in raw_tenants.get("deny", []):
            tenants[t] = Override.DENY
        return cls(
            name=data["name"],
            description=data.get("description", ""),
            legacy_label=data.get("legacy_label", "legacy"),
            candidate_label=data.get("candidate_label", "candidate"),
            enabled=bool(data.get("enabled", True)),
            percentage=int(data.get("percentage", 0)),
            features={str(k): bool(v) for k, v in (data.get("features") or {}).items()},
            feature_percentages={
                str(k): int(v) for k, v in (data.get("feature_percentages") or {}).items()
            },
            tenants=tenants,
            stickiness=data.get("stickiness", "user_id"),
            tenant_key=data.get("tenant_key", "tenant_id"),
            group=_stored_group(data["name"], data.get("group")),
            state=State(data.get("state", "draft")),
            version=int(data.get("version", 1)),
            created_at=_parse_time(data.get("created_at")),
            updated_at=_parse_time(data.get("updated_at")),
            updated_by=data.get("updated_by", ""),
        )


def _stored_group(name: str, group: str | None) -> str | None:
    """None when the group is the name: it then follows the default."""
    return None if group is None or group == name else group


def _parse_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


# --- validation: each names the field and the fix --------------------------------


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(
            f"name {name!r} is not valid: use 1-63 lowercase letters, digits, '_', '.' or '-', "
            "starting with a letter or digit (for example 'voice_v2')",
            field="name",
        )
    return name


def validate_key(value: str, field_name: str) -> str:
    if not isinstance(value, str) or not _KEY.match(value):
        raise ValidationError(
            f"{field_name} {value!r} is not valid: use a context key such as 'user_id', "
            "'tenant_id' or 'call_id' (letters, digits, '_', '.', '-')",
            field=field_name,
        )
    return value


MAX_GROUP = 255


def validate_group(group: object) -> str:
    """Any text Unleash takes as a ``groupId`` (its feature names have capitals, dots and
    spaces), within the stored length and without control characters."""
    if not isinstance(group, str) or not group:
        raise ValidationError(
            "`group` must be non-empty text, e.g. an Unleash groupId such as 'voice.v2' "
            "(leave it out to use the migration's name)",
            field="group",
        )
    if len(group) > MAX_GROUP:
        raise ValidationError(
            f"`group` is {len(group)} characters long; at most {MAX_GROUP} are allowed",
            field="group",
        )
    return check_text(group, "group")


def _shown(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def parse_percentage(value: object, *, field: str = "percentage") -> int:
    """Accepts 0..100 as an int or a string of digits; anything else names the fix."""
    if isinstance(value, bool):
        value = repr(value)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,12}\s*", value):
        number = int(value)
    else:
        raise ValidationError(
            f"`{field}` must be a whole number from 0 to 100, got {_shown(value)}", field=field
        )
    if not 0 <= number <= 100:
        raise ValidationError(
            f"`{field}` must be a whole number from 0 to 100, got {number}", field=field
        )
    return number


def validate_features(features: Iterable[str]) -> list[str]:
    names: list[str] = []
    for raw in features:
        name = raw.strip() if isinstance(raw, str) else raw
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValidationError(
                f"feature {raw!r} is not valid: use lowercase letters, digits, '_', '.' or '-' "
                "(for example 'stt')",
                field="features",
            )
        if name in names:
            raise ValidationError(f"feature {name!r} is listed twice", field="features")
        names.append(name)
    return names


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_text(value: str, field: str, *, multiline: bool = False) -> str:
    """Refuse NUL and other control characters: no store keeps them (PostgreSQL refuses
    NUL in text), and no audit reader should have to see them."""
    bad = _CONTROL.search(value) or (None if multiline else re.search(r"[\r\n\t]", value))
    if bad is not None:
        raise ValidationError(
            f"`{field}` contains the control character {bad.group()!r} at position "
            f"{bad.start()}; remove it",
            field=field,
        )
    return value


def _bounded(value: object, field: str, limit: int, *, multiline: bool = False) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"`{field}` must be text", field=field)
    if len(value) > limit:
        raise ValidationError(
            f"`{field}` is {len(value)} characters long; at most {limit} are allowed", field=field
        )
    return check_text(value, field, multiline=multiline)


def validate_tenant_id(tenant: object) -> str:
    if not isinstance(tenant, str) or not tenant.strip():
        raise ValidationError(
            "tenant id must be a non-empty string (for example 'tenant-premium-1')",
            field="tenant",
        )
    tenant = tenant.strip()
    if len(tenant) > MAX_TENANT_ID:
        raise ValidationError(
            f"tenant id is {len(tenant)} characters long; at most {MAX_TENANT_ID} are allowed",
            field="tenant",
        )
    return check_text(tenant, "tenant")


def require_feature(migration: Migration, feature: str) -> str:
    if feature not in migration.features:
        known = ", ".join(sorted(migration.features)) or "none"
        raise ValidationError(
            f"migration {migration.name!r} has no feature {feature!r}; its features are: {known}",
            field="feature",
        )
    return feature


def new_migration(
    name: str,
    *,
    features: Iterable[str] = (),
    stickiness: str = "user_id",
    tenant_key: str = "tenant_id",
    description: str = "",
    legacy_label: str = "legacy",
    candidate_label: str = "candidate",
    group: str | None = None,
    now: datetime,
    actor: str,
) -> Migration:
    """A validated draft migration: master switch on, 0 %, every feature off.

    ``group`` is the bucketing group (None: the name, so callers bucket as before)."""
    name = validate_name(name)
    return Migration(
        name=name,
        group=None if group is None or group == name else validate_group(group),
        description=_bounded(description, "description", 2000, multiline=True),
        legacy_label=_bounded(legacy_label or "legacy", "legacy_label", 200),
        candidate_label=_bounded(candidate_label or "candidate", "candidate_label", 200),
        enabled=True,
        percentage=0,
        features=dict.fromkeys(validate_features(features), False),
        tenants={},
        stickiness=validate_key(stickiness, "stickiness"),
        tenant_key=validate_key(tenant_key, "tenant_key"),
        state=State.DRAFT,
        version=1,
        created_at=now,
        updated_at=now,
        updated_by=actor,
    )


# --- transitions: pure functions from one migration to the next -------------------


def _state_for_rollout(m: Migration, percentage: int) -> State:
    """Paused and killed migrations keep their state: only resume brings them back."""
    if m.state is State.PAUSED or not m.enabled:
        return m.state
    if percentage > 0:
        return State.ROLLING
    return State.DRAFT if m.state is State.DRAFT else m.state


def with_percentage(m: Migration, percentage: object) -> Migration:
    pct = parse_percentage(percentage)
    return replace(m, percentage=pct, state=_state_for_rollout(m, pct))


def with_feature(m: Migration, feature: str, on: bool) -> Migration:
    require_feature(m, feature)
    features = dict(m.features)
    features[feature] = on
    return replace(m, features=features)


FOLLOW = "follow"
"""A feature percentage that drops the feature's cap: it follows the migration's."""


def with_feature_percentage(m: Migration, feature: str, percentage: object) -> Migration:
    """``feature``'s own percentage (a cap on the migration's), or ``"follow"`` to drop it."""
    require_feature(m, feature)
    caps = dict(m.feature_percentages)
    if percentage == FOLLOW:
        caps.pop(feature, None)
    else:
        try:
            caps[feature] = parse_percentage(percentage, field="percentage")
        except ValidationError:
            raise ValidationError(
                f"`percentage` {str(percentage)[:40]!r} is not a feature percentage: write a "
                f"whole number from 0 to 100, or {FOLLOW!r} to follow the migration's",
                field="percentage",
            ) from None
    return replace(m, feature_percentages=caps)


def with_feature_setting(
    m: Migration, feature: str, on: bool, percentage: object = None
) -> Migration:
    """A feature on or off, and its own percentage when one is given."""
    out = with_feature(m, feature, on)
    return out if percentage is None else with_feature_percentage(out, feature, percentage)


def with_tenant(m: Migration, tenant: object, override: Override | None) -> Migration:
    tenant_id = validate_tenant_id(tenant)
    tenants = dict(m.tenants)
    if override is None:
        if tenant_id not in tenants:
            raise ValidationError(
                f"tenant {tenant_id!r} has no override on migration {m.name!r}; "
                "nothing to clear (see 'switchover status NAME')",
                field="tenant",
            )
        del tenants[tenant_id]
    else:
        tenants[tenant_id] = override
    return replace(m, tenants=tenants)


def killed(m: Migration) -> Migration:
    """Master switch off: every call goes to legacy at once (seed 001's P0 rollback)."""
    return replace(m, enabled=False, state=State.ROLLED_BACK)


def resumed(m: Migration) -> Migration:
    state = State.ROLLING if m.percentage > 0 else State.DRAFT
    return replace(m, enabled=True, state=state)


def stamped(m: Migration, *, now: datetime, actor: str) -> Migration:
    """The next version of ``m``, as written by ``actor`` at ``now``."""
    return replace(m, version=m.version + 1, updated_at=now, updated_by=actor)


def with_phase(m: Migration, percentage: int, features: Mapping[str, bool]) -> Migration:
    """A plan's phase: percentage and features in one change."""
    out = with_percentage(m, percentage)
    for feature, on in features.items():
        out = with_feature(out, feature, on)
    return out


def completed(m: Migration) -> Migration:
    return replace(m, state=State.COMPLETED)


def rolled_back_total(m: Migration) -> Migration:
    """Seed 001's P0: percentage 0 and the master switch off."""
    return replace(m, percentage=0, enabled=False, state=State.ROLLED_BACK)


def rolled_back_keeping(m: Migration, keep: Iterable[str]) -> Migration:
    """Seed 001's P0 with features kept on: every other feature off, the master switch on
    (so the kept features go on serving their callers), the percentage as it was."""
    kept = set(keep)
    features = {f: on and f in kept for f, on in m.features.items()}
    return replace(m, features=features, state=State.ROLLED_BACK)


def rolled_back_to(m: Migration, percentage: int, features: Mapping[str, bool]) -> Migration:
    """Seed 001's P1: back to an earlier phase, marked as rolled back."""
    return replace(with_phase(m, percentage, features), state=State.ROLLED_BACK)

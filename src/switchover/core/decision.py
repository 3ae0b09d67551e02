"""Which side serves one call, and why.

The order is fixed (DESIGN.md): master switch off -> legacy (``kill_switch``);
feature off -> legacy (``feature_off``); tenant deny -> legacy (``tenant_deny``);
tenant allow -> candidate (``tenant_allow``); missing stickiness key -> legacy
(``missing_key``); else the caller's bucket (``bucket_in`` / ``bucket_out``) against the
percentage, or the feature's own where it has one (a cap: the same bucket, so the
feature's callers are a subset of the migration's).

:class:`CompiledMigration` is the hot path: it is built once per snapshot and answers
with pre-built, immutable :class:`Decision` objects, so a decision allocates nothing
but the hashed string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import mmh3

from switchover.core.migration import Migration, Override


class Side(StrEnum):
    LEGACY = "legacy"
    CANDIDATE = "candidate"


class Reason(StrEnum):
    KILL_SWITCH = "kill_switch"
    FEATURE_OFF = "feature_off"
    UNKNOWN_FEATURE = "unknown_feature"
    TENANT_DENY = "tenant_deny"
    TENANT_ALLOW = "tenant_allow"
    MISSING_KEY = "missing_key"
    BUCKET_IN = "bucket_in"
    BUCKET_OUT = "bucket_out"
    UNKNOWN_MIGRATION = "unknown_migration"
    STORE_UNREACHABLE = "store_unreachable"
    CIRCUIT_OPEN = "circuit_open"
    """The candidate failed repeatedly in this process: legacy serves at once."""


LEGACY: Final = Side.LEGACY
CANDIDATE: Final = Side.CANDIDATE


@dataclass(frozen=True, slots=True)
class Decision:
    side: Side
    reason: Reason
    migration: str
    feature: str | None = None
    version: int = 0
    """The migration version the decision was made on (0: no snapshot)."""

    @property
    def candidate(self) -> bool:
        return self.side is Side.CANDIDATE

    def to_dict(self) -> dict[str, Any]:
        return {
            "side": self.side.value,
            "reason": self.reason.value,
            "migration": self.migration,
            "feature": self.feature,
            "version": self.version,
        }


class _FeatureDecisions:
    """The decisions one (migration, feature) can return, built once."""

    __slots__ = (
        "bucket_in",
        "bucket_out",
        "fixed",
        "missing_key",
        "percentage",
        "tenant_allow",
        "tenant_deny",
    )

    def __init__(self, m: Migration, feature: str | None, fixed: Reason | None) -> None:
        def make(side: Side, reason: Reason) -> Decision:
            return Decision(side, reason, m.name, feature, m.version)

        self.percentage = m.percentage if feature is None else m.feature_percentage(feature)

        self.fixed = make(LEGACY, fixed) if fixed is not None else None
        self.tenant_deny = make(LEGACY, Reason.TENANT_DENY)
        self.tenant_allow = make(CANDIDATE, Reason.TENANT_ALLOW)
        self.missing_key = make(LEGACY, Reason.MISSING_KEY)
        self.bucket_in = make(CANDIDATE, Reason.BUCKET_IN)
        self.bucket_out = make(LEGACY, Reason.BUCKET_OUT)


class CompiledMigration:
    """A migration prepared for fast decisions; immutable once built."""

    __slots__ = (
        "_by_feature",
        "_no_feature",
        "_prefix",
        "_stickiness",
        "_tenants",
        "_unknown",
        "migration",
        "tenant_key",
    )

    def __init__(self, m: Migration) -> None:
        self.migration = m
        self._prefix = m.bucketing_group + ":"
        self._stickiness = m.stickiness
        self.tenant_key = m.tenant_key
        self._tenants: Mapping[str, Override] = dict(m.tenants)
        kill = None if m.enabled else Reason.KILL_SWITCH
        self._no_feature = _FeatureDecisions(m, None, kill)
        self._by_feature = {
            f: _FeatureDecisions(m, f, kill or (None if on else Reason.FEATURE_OFF))
            for f, on in m.features.items()
        }
        self._unknown = Decision(LEGACY, kill or Reason.UNKNOWN_FEATURE, m.name, None, m.version)

    def decide(self, feature: str | None, context: Mapping[str, Any]) -> Decision:
        if feature is None:
            d = self._no_feature
        else:
            d = self._by_feature.get(feature)
            if d is None:
                u = self._unknown
                return u if u.feature == feature else _with_feature(u, feature)
        if d.fixed is not None:
            return d.fixed
        if self._tenants:
            tenant = context.get(self.tenant_key)
            if tenant is not None:
                override = self._tenants.get(tenant if tenant.__class__ is str else str(tenant))
                if override is not None:
                    return d.tenant_allow if override is Override.ALLOW else d.tenant_deny
        key = context.get(self._stickiness)
        if key is None or key == "":
            return d.missing_key
        pct = d.percentage
        if pct >= 100:
            return d.bucket_in
        if pct <= 0:
            return d.bucket_out
        if key.__class__ is not str:
            key = str(key)
        if mmh3.hash(self._prefix + key, 0, False) % 100 < pct:
            return d.bucket_in
        return d.bucket_out

    def fixed(self, feature: str | None) -> Decision | None:
        """The legacy decision the kill switch or a switched-off (or unknown) feature
        forces on every caller now, or None: what a pinned call checks each operation."""
        if feature is None:
            return self._no_feature.fixed
        d = self._by_feature.get(feature)
        if d is None:
            u = self._unknown
            return u if u.feature == feature else _with_feature(u, feature)
        return d.fixed


def circuit_open(d: Decision) -> Decision:
    """Legacy instead of ``d``'s candidate: the operation's circuit is open."""
    return Decision(LEGACY, Reason.CIRCUIT_OPEN, d.migration, d.feature, d.version)


def _with_feature(d: Decision, feature: str) -> Decision:
    return Decision(d.side, d.reason, d.migration, feature, d.version)


def decide(m: Migration, feature: str | None, context: Mapping[str, Any]) -> Decision:
    """Decide one call for ``m``; compiles ``m`` each time, so prefer CompiledMigration."""
    return CompiledMigration(m).decide(feature, context)


def unreachable(migration: str, feature: str | None) -> Decision:
    """No snapshot and no store: legacy, never an exception."""
    return Decision(LEGACY, Reason.STORE_UNREACHABLE, migration, feature, 0)


def unknown_migration(migration: str, feature: str | None) -> Decision:
    return Decision(LEGACY, Reason.UNKNOWN_MIGRATION, migration, feature, 0)

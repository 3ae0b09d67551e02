"""A migration seen as an OpenFeature flag: its key, context, value, variant and reason.

OFREP (``switchover serve``) and the in-process provider (``switchover.openfeature``)
answer the same way:

- the flag key is ``MIGRATION`` or ``MIGRATION.FEATURE`` (a migration's name may hold
  dots, so the longest migration name before a dot wins);
- ``targetingKey`` is the migration's stickiness key, unless the context carries that
  key itself;
- the value is a boolean, True for the candidate, with the variant ``candidate`` or
  ``legacy``;
- tenant overrides are ``TARGETING_MATCH``, the percentage ``SPLIT``, the kill switch
  and a switched-off feature ``DISABLED``; an unknown migration or feature is the error
  ``FLAG_NOT_FOUND``, a caller without the key ``TARGETING_KEY_MISSING`` (switchover
  itself sends such a caller to legacy: the OpenFeature client's default decides).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from switchover.core.decision import CompiledMigration, Decision, Reason

TARGETING_KEY: Final = "targetingKey"

OPENFEATURE_REASONS: Final[Mapping[Reason, str]] = {
    Reason.KILL_SWITCH: "DISABLED",
    Reason.FEATURE_OFF: "DISABLED",
    Reason.TENANT_ALLOW: "TARGETING_MATCH",
    Reason.TENANT_DENY: "TARGETING_MATCH",
    Reason.BUCKET_IN: "SPLIT",
    Reason.BUCKET_OUT: "SPLIT",
    Reason.CIRCUIT_OPEN: "ERROR",
}
"""Decisions that answer a value; every other reason is an error (below)."""

ERROR_CODES: Final[Mapping[Reason, str]] = {
    Reason.UNKNOWN_MIGRATION: "FLAG_NOT_FOUND",
    Reason.UNKNOWN_FEATURE: "FLAG_NOT_FOUND",
    Reason.MISSING_KEY: "TARGETING_KEY_MISSING",
    Reason.STORE_UNREACHABLE: "GENERAL",
}

Lookup = Callable[[str], CompiledMigration | None]


@dataclass(frozen=True, slots=True)
class FlagEvaluation:
    """One flag for one context: a value, or an error code with details."""

    key: str
    value: bool | None
    variant: str | None
    reason: str
    error_code: str | None = None
    error_details: str | None = None
    metadata: Mapping[str, str | int | bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error_code is None

    def to_ofrep(self) -> dict[str, Any]:
        """The OFREP body: ``evaluationSuccess`` or ``evaluationFailure``."""
        if self.error_code is not None:
            return {
                "key": self.key,
                "errorCode": self.error_code,
                "errorDetails": self.error_details or "",
                "metadata": dict(self.metadata),
            }
        return {
            "key": self.key,
            "value": self.value,
            "reason": self.reason,
            "variant": self.variant,
            "metadata": dict(self.metadata),
        }


def resolve_key(key: str, lookup: Lookup) -> tuple[CompiledMigration, str | None] | None:
    """The migration and feature a flag key names, or None."""
    compiled = lookup(key)
    if compiled is not None:
        return compiled, None
    end = len(key)
    while (end := key.rfind(".", 0, end)) > 0:
        compiled = lookup(key[:end])
        if compiled is not None:
            return compiled, key[end + 1 :]
    return None


def with_targeting_key(context: Mapping[str, Any], stickiness: str) -> Mapping[str, Any]:
    """The context as switchover decides on it: ``targetingKey`` fills the stickiness key."""
    key = context.get(TARGETING_KEY)
    if key is None or key == "" or context.get(stickiness) not in (None, ""):
        return context
    return {**context, stickiness: key}


def not_found(key: str, details: str) -> FlagEvaluation:
    return FlagEvaluation(key, None, None, "ERROR", "FLAG_NOT_FOUND", details)


def evaluate(key: str, lookup: Lookup, context: Mapping[str, Any]) -> FlagEvaluation:
    """Flag ``key`` for ``context``; ``lookup(name)`` gives a compiled migration or None."""
    found = resolve_key(key, lookup)
    if found is None:
        return not_found(
            key, f"no migration is named {key!r}: flag keys are MIGRATION or MIGRATION.FEATURE"
        )
    compiled, feature = found
    m = compiled.migration
    if feature is not None and feature not in m.features:
        known = ", ".join(sorted(m.features)) or "none"
        return not_found(
            key, f"migration {m.name!r} has no feature {feature!r}; its features are: {known}"
        )
    return from_decision(key, compiled.decide(feature, with_targeting_key(context, m.stickiness)))


_MEMO: dict[tuple[str, int], tuple[Decision, FlagEvaluation]] = {}
"""Decisions are built once per snapshot and reused, so their evaluations are too."""


def from_decision(key: str, d: Decision) -> FlagEvaluation:
    """A decision as an OpenFeature evaluation of flag ``key`` (immutable, memoised)."""
    hit = _MEMO.get((key, id(d)))
    if hit is not None and hit[0] is d:
        return hit[1]
    if len(_MEMO) > 4096:  # evaluations of old snapshots
        _MEMO.clear()
    evaluation = _evaluation(key, d)
    _MEMO[(key, id(d))] = (d, evaluation)
    return evaluation


def _evaluation(key: str, d: Decision) -> FlagEvaluation:
    metadata: dict[str, str | int | bool] = {
        "migration": d.migration,
        "version": d.version,
        "switchover_reason": d.reason.value,
    }
    if d.feature is not None:
        metadata["feature"] = d.feature
    code = ERROR_CODES.get(d.reason)
    if code is not None:
        return FlagEvaluation(
            key, None, None, "ERROR", code, _details(d), MappingProxyType(metadata)
        )
    return FlagEvaluation(
        key,
        d.candidate,
        d.side.value,
        OPENFEATURE_REASONS[d.reason],
        metadata=MappingProxyType(metadata),
    )


def _details(d: Decision) -> str:
    if d.reason is Reason.MISSING_KEY:
        return (
            f"the context has neither {TARGETING_KEY!r} nor the migration's stickiness key; "
            "switchover sends such callers to legacy"
        )
    if d.reason is Reason.STORE_UNREACHABLE:
        return "no snapshot is loaded yet: the store cannot be reached"
    return f"unknown flag ({d.reason.value})"


def evaluate_all(compiled: CompiledMigration, context: Mapping[str, Any]) -> list[FlagEvaluation]:
    """Every flag one migration answers: itself, then ``NAME.FEATURE`` per feature."""
    m = compiled.migration
    ctx = with_targeting_key(context, m.stickiness)
    out = [from_decision(m.name, compiled.decide(None, ctx))]
    for feature in sorted(m.features):
        out.append(from_decision(f"{m.name}.{feature}", compiled.decide(feature, ctx)))
    return out

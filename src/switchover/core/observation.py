"""One routed or shadowed call, as the recorder takes it, and the rules its fields follow.

The rules, shared by the SDK's recorder (which repairs or drops what breaks them, never
raising into the caller) and the ingest endpoints (which refuse the whole batch, naming
the field):

- ``migration``, ``operation``, ``error_type`` and outcome counter names: 1-63 letters,
  digits, ``_``, ``.``, ``:`` or ``-`` (:data:`MAX_NAME`: the store's columns are 63 long);
- ``side``: ``legacy`` or ``candidate``;
- ``tenant``: 1-200 characters (:data:`MAX_TENANT`), no control characters;
- ``latency_ms``: a finite number of milliseconds, 0 to one day (:data:`MAX_LATENCY_MS`);
- ``at``: seconds since the epoch, at most five years (:data:`MAX_AT_SKEW`) before or
  after the receiver's clock: far enough for any clock skew or a late replay, near enough
  that a timestamp in milliseconds, or ``1e300``, is refused instead of overflowing a
  minute column;
- ``scores`` (``{"csat": 4}``): names of 1-50 letters, digits, ``_`` or ``-``, finite
  values up to 1e6, at most 8 a call, each kept as three outcome counters
  (:mod:`switchover.core.scores`);
- outcome values: finite numbers with ``|value| <= 1e12`` (:data:`MAX_OUTCOME_VALUE`), at
  most :data:`MAX_OUTCOMES` counters a call, so that no sum of them reaches infinity.

A name that breaks the rules is repaired the same way every time by
:func:`repaired_name` (characters outside the set become ``_``, and a repaired name
ends in a hash of the original, so two long names stay apart); a tenant by
:func:`repaired_tenant`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from switchover.core.decision import Side
from switchover.core.scores import score_counters, validate_scores
from switchover.errors import ValidationError

MAX_NAME = 63
MAX_TENANT = 200
MAX_OUTCOMES = 32
MAX_OUTCOME_VALUE = 1e12
MAX_LATENCY_MS = 86_400_000.0
"""One day: no routed call takes longer."""
MAX_AT_SKEW = 5 * 366 * 86_400.0
"""How far (seconds) an observation's ``at`` may be from the receiver's clock."""
SIDES = (Side.LEGACY.value, Side.CANDIDATE.value)

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,63}$")
_NAME_BAD = re.compile(r"[^A-Za-z0-9_.:-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HASH_CHARS = 8
NAME_RULE = "use 1-63 letters, digits, '_', '.', ':' or '-'"
TENANT_RULE = f"use 1-{MAX_TENANT} characters without control characters"


@dataclass(frozen=True, slots=True)
class Observation:
    migration: str
    operation: str
    side: Side
    latency_ms: float
    ok: bool = True
    error_type: str | None = None
    fallback: bool = False
    tenant: str | None = None
    outcome: Mapping[str, float] = field(default_factory=dict)
    at: float = 0.0
    """Seconds since the epoch (UTC)."""
    total_failure: bool = False
    first_chunk_ms: float | None = None
    """Streams: milliseconds from the call to its first chunk (None: not a stream)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "migration": self.migration,
            "operation": self.operation,
            "side": self.side.value,
            "latency_ms": self.latency_ms,
            "ok": self.ok,
            "error_type": self.error_type,
            "fallback": self.fallback,
            "tenant": self.tenant,
            "outcome": dict(self.outcome),
            "at": self.at,
            "total_failure": self.total_failure,
            "first_chunk_ms": self.first_chunk_ms,
        }


# --- the rules, as checks that return the problem (None when valid) -----------------------


def is_name(value: object) -> bool:
    return isinstance(value, str) and _NAME.match(value) is not None


def is_tenant(value: object) -> bool:
    return (
        isinstance(value, str) and 0 < len(value) <= MAX_TENANT and _CONTROL.search(value) is None
    )


def _number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def latency_problem(value: object) -> str | None:
    if not _number(value) or not 0 <= value <= MAX_LATENCY_MS:  # type: ignore[operator]
        return (
            f"latency_ms must be a number of milliseconds from 0 to {MAX_LATENCY_MS:.0f} "
            f"(one day), got {_shown(value)}"
        )
    return None


def at_problem(value: object, now: float) -> str | None:
    # a range check, not math.isfinite: that raises on an integer too large for a float
    if not _number(value) or not now - MAX_AT_SKEW <= value <= now + MAX_AT_SKEW:  # type: ignore[operator]
        return (
            f"at must be seconds since the epoch (not milliseconds) within five years of "
            f"now ({now:.0f}), got {_shown(value)}"
        )
    return None


def outcome_value_problem(name: str, value: object) -> str | None:
    if not _number(value) or not -MAX_OUTCOME_VALUE <= value <= MAX_OUTCOME_VALUE:  # type: ignore[operator]
        return (
            f"outcome {name!r} must be a finite number with |value| <= "
            f"{MAX_OUTCOME_VALUE:.0e}, got {_shown(value)}"
        )
    return None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- repairs: the same input always gives the same valid output ------------------------------


def _digest(text: str) -> str:
    raw = text.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(raw, digest_size=_HASH_CHARS // 2).hexdigest()


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception:
        return type(value).__name__


def repaired_name(value: object) -> str:
    """``value`` as a valid name: itself when valid; otherwise characters outside the set
    become ``_``, cut to fit, and ``-`` plus 8 hex digits of a hash of the original."""
    if is_name(value):
        return value  # type: ignore[return-value]
    text = _as_text(value)
    keep = MAX_NAME - _HASH_CHARS - 1
    return f"{(_NAME_BAD.sub('_', text) or '_')[:keep]}-{_digest(text)}"


def repaired_tenant(value: object) -> str:
    """``value`` as a valid tenant: itself when valid; otherwise control characters become
    ``_``, cut to fit, and ``-`` plus 8 hex digits of a hash of the original."""
    if is_tenant(value):
        return value  # type: ignore[return-value]
    text = _as_text(value)
    keep = MAX_TENANT - _HASH_CHARS - 1
    return f"{(_CONTROL.sub('_', text) or '_')[:keep]}-{_digest(text)}"


# --- validation at the HTTP boundary: ValidationError naming the field -------------------------


def check_name(value: Any, field_name: str) -> str:
    if not is_name(value):
        raise ValidationError(
            f"{field_name} {_shown(value)} is not valid: {NAME_RULE}", field=field_name
        )
    return value  # type: ignore[no-any-return]


def check_tenant(value: Any, field_name: str = "tenant") -> str:
    if not is_tenant(value):
        raise ValidationError(
            f"{field_name} {_shown(value)} is not valid: {TENANT_RULE}", field=field_name
        )
    return value  # type: ignore[no-any-return]


def validate_outcome(outcome: Any, field_name: str = "outcome") -> dict[str, float]:
    if outcome is None:
        return {}
    if not isinstance(outcome, Mapping):
        raise ValidationError(
            f"{field_name} must be an object of counter names to numbers, "
            'for example {"booked": 1}',
            field=field_name,
        )
    if len(outcome) > MAX_OUTCOMES:
        raise ValidationError(
            f"{field_name} has {len(outcome)} counters; at most {MAX_OUTCOMES} are allowed",
            field=field_name,
        )
    clean: dict[str, float] = {}
    for key, value in outcome.items():
        if not is_name(key):
            raise ValidationError(
                f"{field_name} name {_shown(key)} is not valid: {NAME_RULE}", field=field_name
            )
        problem = outcome_value_problem(key, value)
        if problem is not None:
            raise ValidationError(f"{field_name}: {problem}", field=field_name)
        clean[key] = float(value)
    return clean


def observation_from_dict(data: Mapping[str, Any], *, default_at: float) -> Observation:
    """Validate one observation sent over HTTP; the error names the field.

    ``default_at`` is the receiver's clock: the ``at`` of an observation without one, and
    the point ``at`` may be at most :data:`MAX_AT_SKEW` from."""
    if not isinstance(data, Mapping):
        raise ValidationError("each observation must be a JSON object", field="observations")
    try:
        side = Side(data.get("side"))
    except ValueError:
        raise ValidationError(
            f"side {_shown(data.get('side'))} is not valid: use 'legacy' or 'candidate'",
            field="side",
        ) from None
    latency = data.get("latency_ms")
    problem = latency_problem(latency)
    if problem is not None:
        raise ValidationError(problem, field="latency_ms")
    ok = data.get("ok", True)
    if not isinstance(ok, bool):
        raise ValidationError(f"ok must be true or false, got {_shown(ok)}", field="ok")
    at = data.get("at", default_at)
    problem = at_problem(at, default_at)
    if problem is not None:
        raise ValidationError(problem, field="at")
    error_type = data.get("error_type")
    if error_type is not None:
        check_name(error_type, "error_type")
    tenant = data.get("tenant")
    if tenant is not None:
        check_tenant(tenant)
    first_chunk = data.get("first_chunk_ms")
    if first_chunk is not None:
        problem = latency_problem(first_chunk)
        if problem is not None:
            raise ValidationError(
                "first_chunk_ms" + problem.removeprefix("latency_ms"), field="first_chunk_ms"
            )
        if first_chunk > latency:  # type: ignore[operator]
            raise ValidationError(
                f"first_chunk_ms ({first_chunk}) must be at most latency_ms ({latency})",
                field="first_chunk_ms",
            )
    return Observation(
        migration=check_name(data.get("migration"), "migration"),
        operation=check_name(data.get("operation"), "operation"),
        side=side,
        latency_ms=float(latency),  # type: ignore[arg-type]
        ok=ok,
        error_type=error_type if not ok else None,
        fallback=bool(data.get("fallback", False)),
        tenant=tenant,
        outcome={
            **validate_outcome(data.get("outcome")),
            **score_counters(validate_scores(data.get("scores"))),
        },
        at=float(at),
        total_failure=bool(data.get("total_failure", False)),
        first_chunk_ms=None if first_chunk is None else float(first_chunk),
    )

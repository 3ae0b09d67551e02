"""One routed or shadowed call, as the recorder takes it."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from switchover.core.decision import Side
from switchover.errors import ValidationError

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,63}$")
MAX_OUTCOMES = 32


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
        }


def _name(value: Any, field_name: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValidationError(
            f"{field_name} {value!r} is not valid: use 1-63 letters, digits, '_', '.', ':' or '-'",
            field=field_name,
        )
    return value


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
        _name(key, f"{field_name} name")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValidationError(
                f"{field_name} {key!r} must be a finite number, got {value!r}", field=field_name
            )
        clean[key] = float(value)
    return clean


def observation_from_dict(data: Mapping[str, Any], *, default_at: float) -> Observation:
    """Validate one observation sent over HTTP; the error names the field."""
    if not isinstance(data, Mapping):
        raise ValidationError("each observation must be a JSON object", field="observations")
    try:
        side = Side(data.get("side"))
    except ValueError:
        raise ValidationError(
            f"side {data.get('side')!r} is not valid: use 'legacy' or 'candidate'", field="side"
        ) from None
    latency = data.get("latency_ms")
    if (
        isinstance(latency, bool)
        or not isinstance(latency, int | float)
        or not math.isfinite(latency)
        or latency < 0
    ):
        raise ValidationError(
            f"latency_ms must be a number of milliseconds >= 0, got {latency!r}",
            field="latency_ms",
        )
    ok = data.get("ok", True)
    if not isinstance(ok, bool):
        raise ValidationError(f"ok must be true or false, got {ok!r}", field="ok")
    at = data.get("at", default_at)
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        raise ValidationError("at must be seconds since the epoch", field="at")
    error_type = data.get("error_type")
    if error_type is not None:
        _name(error_type, "error_type")
    tenant = data.get("tenant")
    if tenant is not None and not isinstance(tenant, str):
        raise ValidationError("tenant must be a string", field="tenant")
    return Observation(
        migration=_name(data.get("migration"), "migration"),
        operation=_name(data.get("operation"), "operation"),
        side=side,
        latency_ms=float(latency),
        ok=ok,
        error_type=error_type if not ok else None,
        fallback=bool(data.get("fallback", False)),
        tenant=tenant,
        outcome=validate_outcome(data.get("outcome")),
        at=float(at),
        total_failure=bool(data.get("total_failure", False)),
    )

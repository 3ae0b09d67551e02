"""A rollout plan: ordered phases with gates, guardrails and the decision matrix.

Plans are written in YAML (see ``docs/plans.md`` and ``examples/plans/``) and parsed
here into frozen values. Every mistake is reported with the path of the field that
is wrong (``phases[2].gates[0]``) and what to write instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import yaml

from switchover.core.scores import SCORE_NAME, SCORE_NAME_RULE
from switchover.errors import ValidationError

RATE_METRICS = ("error_rate", "fallback_rate", "total_failure_rate")
LATENCY_METRICS = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
RATIO_METRICS = {"p50_ratio": "p50", "p95_ratio": "p95", "p99_ratio": "p99"}
TTFB_METRICS = {"ttfb_p50": "p50", "ttfb_p95": "p95", "ttfb_p99": "p99"}
"""Streams' time to first chunk: the quantile of the first-chunk sketch (streams only)."""
TTFB_RATIO_METRICS = {
    "ttfb_p50_ratio": "ttfb_p50",
    "ttfb_p95_ratio": "ttfb_p95",
    "ttfb_p99_ratio": "ttfb_p99",
}
RATE_RATIOS = {"error_ratio": "error_rate", "fallback_ratio": "fallback_rate"}
RATE_DIFFS = {"error_diff": "error_rate", "fallback_diff": "fallback_rate"}
"""The candidate's rate minus legacy's, in points: ``error_diff <= 1%``."""
MEAN_RATIOS = {"mean_ratio": "mean"}
"""The candidate's mean latency over legacy's: ``mean_ratio <= 1.2``."""
COUNT_UNITS = {"s": 3600.0, "m": 60.0, "h": 1.0, "d": 1 / 24}
"""A count per unit of time (``outcome.tool_call_failure < 50/h``), as a count per hour."""
_COUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h|d)\s*$")
ROLLBACKS = "rollbacks"
"""How many rollbacks the plan has had (``rollbacks <= 2``): a count, not a statistic."""
OUTCOME = "outcome."
OUTCOME_DROP = "outcome_drop."
SCORE = "score."
"""A score's mean over the candidate's scored calls (``score.csat >= 4.5``)."""
SCORE_DROP = "score_drop."
"""Legacy's mean score minus the candidate's, in the score's units (``score_drop.csat <= 0.2``)."""


class GateAction(StrEnum):
    """What a failed gate or guardrail does (its ``action:``)."""

    ROLLBACK = "rollback"
    """P1: back to the previous phase."""
    ABORT = "abort"
    """P0: total rollback."""
    HOLD = "hold"
    """P2: hold and alert."""


ACTIONS = tuple(a.value for a in GateAction)
OPS = ("<", "<=", ">", ">=")


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML that refuses a mapping with the same key twice: the last would silently
    win, and a plan reviewed with one value would run with another."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"the key {key!r} appears twice in one mapping; keep one",
                    mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_LOADER = _UniqueKeyLoader
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_OUTCOME_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$")
_GATE = re.compile(
    r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_.-]*)\s*(?P<op><=|>=|<|>)\s*(?P<value>[^\s]+)"
    r"(?:\s+on\s+(?P<operation>[A-Za-z_][A-Za-z0-9_.-]*))?\s*$"
)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _fail(path: str, message: str) -> ValidationError:
    return ValidationError(f"{path}: {message}", field=path)


MAX_SECONDS = 366 * 86400.0
"""No duration a plan names may exceed a year: a plan is judged for that long at most."""
MAX_INTERVAL = 86400.0


def parse_seconds(
    value: Any, path: str, *, minimum: float = 0.0, maximum: float = MAX_SECONDS
) -> float:
    """``90s``, ``15m``, ``24h``, ``3d``, ``2w`` -> seconds, from ``minimum`` to ``maximum``."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise _fail(
            path, f"{value!r} is not a duration; write a number and a unit: 90s, 15m, 24h, 3d, 2w"
        )
    seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= minimum:
        raise _fail(path, f"must be longer than {minimum:g}s, got {value!r}")
    if not seconds <= maximum:
        raise _fail(path, f"{value!r} is too long; at most {_human(maximum)}")
    return seconds


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def parse_latency_ms(value: Any, path: str) -> float:
    """``800ms``, ``2s``, ``2.5s`` -> milliseconds."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*", value)
        if match:
            number = float(match.group(1))
            return number if match.group(2) == "ms" else number * 1000
    raise _fail(path, f"{value!r} is not a latency; write it with a unit: 800ms or 2.5s")


def parse_rate(value: Any, path: str) -> float:
    """``2%`` or ``0.02`` -> 0.02."""
    number: float | None = None
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*", value)
        if match:
            number = float(match.group(1)) / (100 if match.group(2) else 1)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    if number is None or not 0 <= number <= 1:
        raise _fail(path, f"{value!r} is not a rate; write a percentage (2%) or a fraction (0.02)")
    return number


def parse_ratio(value: Any, path: str) -> float:
    """``1.2``, ``1.2x`` -> 1.2."""
    number: float | None = None
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*[x\u00d7]?\s*", value)
        if match:
            number = float(match.group(1))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    if number is None or not number > 0 or math.isinf(number):
        raise _fail(path, f"{value!r} is not a ratio; write a positive number such as 1.2")
    return number


@dataclass(frozen=True, slots=True)
class Gate:
    """One success criterion; see :mod:`switchover.core.judge` for how it is tested."""

    metric: str
    op: str
    value: float
    operation: str | None = None
    action: GateAction = GateAction.ROLLBACK
    text: str = ""
    per_hour: bool = False
    """``value`` is a count per hour of the phase (``outcome.X < 50/h``), not a share."""

    @property
    def kind(self) -> str:
        """One of rate, latency, ttfb, outcome, latency_ratio, ttfb_ratio, rate_ratio,
        rate_diff, mean_ratio, outcome_drop, score, score_drop, rollbacks; count for a rate
        or outcome metric written per unit of time."""
        return "count" if self.per_hour else gate_kind(self.metric)

    @property
    def lower_is_better(self) -> bool:
        return self.op in ("<", "<=")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "gate": self.text,
            "metric": self.metric,
            "op": self.op,
            "value": self.value,
            "operation": self.operation,
            "action": self.action.value,
        }
        if self.per_hour:
            out["per_hour"] = True
        return out


def gate_kind(metric: str) -> str:
    if metric in RATE_METRICS:
        return "rate"
    if metric in LATENCY_METRICS:
        return "latency"
    if metric in RATIO_METRICS:
        return "latency_ratio"
    if metric in TTFB_METRICS:
        return "ttfb"
    if metric in TTFB_RATIO_METRICS:
        return "ttfb_ratio"
    if metric in RATE_RATIOS:
        return "rate_ratio"
    if metric in RATE_DIFFS:
        return "rate_diff"
    if metric in MEAN_RATIOS:
        return "mean_ratio"
    if metric == ROLLBACKS:
        return "rollbacks"
    if metric.startswith(OUTCOME):
        return "outcome"
    if metric.startswith(OUTCOME_DROP):
        return "outcome_drop"
    if metric.startswith(SCORE):
        return "score"
    if metric.startswith(SCORE_DROP):
        return "score_drop"
    return "unknown"


def _format_value(kind: str, value: float) -> str:
    if kind in ("rate", "outcome", "outcome_drop", "rate_diff"):
        return f"{value * 100:g}%"
    if kind in ("latency", "ttfb"):
        return f"{value:g}ms"
    if kind == "count":
        return f"{value:g}/h"
    return f"{value:g}"


def parse_score(text: str, path: str, *, drop: bool) -> float:
    """``4.5`` (a mean score) or ``0.2`` (a drop, at least 0), in the score's own units."""
    match = re.fullmatch(r"-?\d+(?:\.\d+)?", text)
    number = float(text) if match else math.nan
    if not math.isfinite(number) or abs(number) > 1e6 or (drop and number < 0):
        example = "0.2 (points of the score)" if drop else "4.5"
        raise _fail(path, f"{text!r} is not a score; write a number such as {example}")
    return number


def parse_rollbacks(text: str, path: str) -> float:
    """``2`` -> 2.0: a whole number of rollbacks."""
    if not re.fullmatch(r"\d+", text):
        raise _fail(path, f"{text!r} is not a number of rollbacks; write a whole number, e.g. 2")
    return float(int(text))


def parse_count(text: str, metric: str, path: str) -> float:
    """``50/h``, ``2/m``, ``1000/d`` -> a count per hour (rate and outcome metrics only)."""
    match = _COUNT.match(text)
    assert match is not None
    if gate_kind(metric) not in ("rate", "outcome"):
        raise _fail(
            path,
            f"{text!r} is a count per unit of time; counts are for "
            f"{', '.join(RATE_METRICS)} and outcome.NAME, not {metric}",
        )
    number = float(match.group(1)) * COUNT_UNITS[match.group(2)]
    if not number > 0 or math.isinf(number):
        raise _fail(path, f"{text!r}: a count per hour must be above 0, e.g. 50/h")
    return number


def parse_gate(raw: Any, path: str, *, default_action: str = "rollback") -> Gate:
    """``"p95 < 800ms"``, ``"outcome.cache_hit > 80% on tts"``, or a mapping with ``gate:``."""
    action: str | None = None
    operation = None
    if isinstance(raw, Mapping):
        unknown = set(raw) - {"gate", "operation", "action"}
        if unknown:
            raise _fail(
                path, f"unknown key(s) {sorted(unknown)}; a gate has gate, operation, action"
            )
        if "gate" not in raw:
            raise _fail(path, "missing 'gate:', for example gate: \"p95 < 800ms\"")
        action = raw.get("action")
        if action is not None and action not in ACTIONS:
            raise _fail(f"{path}.action", f"{action!r} is not one of {', '.join(ACTIONS)}")
        operation = raw.get("operation")
        if operation is not None and not (
            isinstance(operation, str) and _OUTCOME_NAME.match(operation)
        ):
            raise _fail(f"{path}.operation", f"{operation!r} is not an operation name")
        raw = raw["gate"]
    if not isinstance(raw, str):
        raise _fail(path, f'{raw!r} is not a gate; write it as "METRIC OP VALUE", e.g. p95 < 800ms')
    match = _GATE.match(raw)
    if match is None:
        raise _fail(
            path,
            f'{raw!r} is not a gate; write "METRIC OP VALUE [on OPERATION]", '
            'e.g. "error_rate < 1%", "p95 < 800ms", "p95_ratio <= 1.2"',
        )
    metric, op, text_value = match.group("metric"), match.group("op"), match.group("value")
    operation = match.group("operation") or operation
    kind = gate_kind(metric)
    if kind == "unknown":
        raise _fail(
            path,
            f"unknown metric {metric!r}; use one of {', '.join(RATE_METRICS)}, p50, p95, p99, "
            "p50_ratio, p95_ratio, p99_ratio, ttfb_p50, ttfb_p95, ttfb_p99, ttfb_p50_ratio, "
            "ttfb_p95_ratio, ttfb_p99_ratio, mean_ratio, error_ratio, fallback_ratio, "
            "error_diff, fallback_diff, rollbacks, outcome.NAME, outcome_drop.NAME, "
            "score.NAME, score_drop.NAME (a rate or "
            "outcome with a value per unit of time, such as outcome.NAME < 50/h, is a count "
            "per hour)",
        )
    if kind in ("outcome", "outcome_drop"):
        outcome = metric.split(".", 1)[1]
        if not _OUTCOME_NAME.match(outcome):
            raise _fail(path, f"{outcome!r} is not an outcome name (letters, digits, _ . -)")
    if kind in ("score", "score_drop"):
        score = metric.split(".", 1)[1]
        if not SCORE_NAME.match(score):
            raise _fail(path, f"{score!r} is not a score name; use {SCORE_NAME_RULE}")
    if kind not in ("outcome", "score") and op in (">", ">="):
        raise _fail(
            path,
            f"{metric} is lower-is-better: write it with < or <=, e.g. {metric} < {text_value}",
        )
    value_path = f"{path} ({metric})"
    per_hour = _COUNT.match(text_value) is not None
    if not per_hour and "/" in text_value:
        raise _fail(
            value_path,
            f"{text_value!r} is not a count per unit of time; write a number per s, m, h "
            "or d, e.g. 50/h",
        )
    if per_hour:
        value = parse_count(text_value, metric, value_path)
        kind = "count"
    elif kind in ("score", "score_drop"):
        value = parse_score(text_value, value_path, drop=kind == "score_drop")
    elif kind in ("rate", "outcome", "outcome_drop", "rate_diff"):
        value = parse_rate(text_value, value_path)
    elif kind in ("latency", "ttfb"):
        value = parse_latency_ms(text_value, value_path)
    elif kind == "rollbacks":
        value = parse_rollbacks(text_value, value_path)
        if operation:
            raise _fail(path, "rollbacks counts the plan's rollbacks: it takes no operation")
        if action is None:
            action = GateAction.HOLD.value
        elif action == GateAction.ROLLBACK.value:
            raise _fail(
                f"{path}.action",
                "a rollback count can hold or abort; rollback would roll back again at every "
                "look (the count stays above its limit)",
            )
    else:
        value = parse_ratio(text_value, value_path)
    text = f"{metric} {op} {_format_value(kind, value)}"
    if operation:
        text += f" on {operation}"
    return Gate(
        metric=metric,
        op=op,
        value=value,
        operation=operation,
        action=GateAction(action or default_action),
        text=text,
        per_hour=per_hour,
    )


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    percentage: int
    duration: float
    """The minimum time in the phase, in seconds, before it may advance."""
    features: tuple[str, ...] | None = None
    """Features on in this phase (the others off); None leaves them as they are."""
    gates: tuple[Gate, ...] = ()
    requires_approval: bool = False
    """Entering this phase waits for ``switchover approve``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "percentage": self.percentage,
            "duration_seconds": self.duration,
            "features": list(self.features) if self.features is not None else None,
            "gates": [g.to_dict() for g in self.gates],
            "requires_approval": self.requires_approval,
        }


@dataclass(frozen=True, slots=True)
class MatrixRow:
    """One row of seed 001's decision matrix: the candidate's error rate or p95 above these."""

    error_rate: float
    p95_ms: float


@dataclass(frozen=True, slots=True)
class Matrix:
    p0: MatrixRow = MatrixRow(0.50, 30_000.0)
    """Immediate total rollback: percentage 0, master switch off."""
    p1: MatrixRow = MatrixRow(0.10, 10_000.0)
    """Gradual rollback to the previous phase."""
    p2: MatrixRow = MatrixRow(0.05, 5_000.0)
    """Hold and alert."""
    p0_keep: tuple[str, ...] = ()
    """Features a P0 keeps on (seed 001's telemetry and vouchers): with any, a P0 switches
    every other feature off instead of the master switch, and leaves the percentage."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            level: {"error_rate": s.error_rate, "p95_ms": s.p95_ms}
            for level, s in (("p0", self.p0), ("p1", self.p1), ("p2", self.p2))
        }
        if self.p0_keep:
            out["p0_keep"] = list(self.p0_keep)
        return out


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A webhook target as written in a plan: secrets come from the environment."""

    url: str | None = None
    url_env: str | None = None
    secret_env: str | None = None
    events: tuple[str, ...] | None = None

    def to_dict(self, *, reveal: bool = False) -> dict[str, Any]:
        url = self.url
        if url is not None and not reveal:
            url = redact_target_url(url)
        return {
            "url": url,
            "url_env": self.url_env,
            "secret_env": self.secret_env,
            "events": list(self.events) if self.events is not None else None,
        }


def redact_target_url(url: str) -> str:
    """Webhook URLs carry tokens in their path (Slack's do): keep scheme and host only."""
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://[^/?#@]*@?[^/?#]*)", url)
    base = match.group(1) if match else "?"
    if "@" in base:
        base = base.split("://", 1)[0] + "://" + base.rsplit("@", 1)[1]
    return base + "/…"


NOTIFY_EVENTS = ("phase_change", "hold", "rollback", "approval_needed", "completed")


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    phases: tuple[Phase, ...]
    guardrails: tuple[Gate, ...] = ()
    description: str = ""
    interval: float = 60.0
    """Seconds between judgements."""
    window: float = 3600.0
    """Seconds: the longest window ending now that guardrails and the matrix also read
    (gates read every call since the phase began), and legacy's baseline before 100 %."""
    recent: float = 120.0
    """Seconds: the shortest such window; the others double it up to ``window``."""
    min_samples: int = 100
    """Calls (each side's, for a relative gate) before any test passes or fails."""
    confidence: float = 0.98
    """The chance that no test of the plan ever fails a candidate within every limit."""
    tolerance: float = 0.1
    """Effect-size tolerance for the per-metric comparison table (Kayenta's)."""
    matrix: Matrix = field(default_factory=Matrix)
    notify: tuple[TargetSpec, ...] = ()
    operation: str | None = None
    """Judge only this operation (default: every operation together)."""
    srm: bool = True
    """The sample ratio mismatch guardrail: hold when the candidate's share of calls is
    shown to differ from the phase's percentage (``srm: false`` turns it off)."""
    bake: float = 0.0
    """Seconds after the last phase's gates pass during which guardrails and the decision
    matrix still judge, and can roll back, before the plan completes (``bake: 7d``)."""

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence

    def phase_index(self, name: str) -> int:
        for i, phase in enumerate(self.phases):
            if phase.name == name:
                return i
        raise ValidationError(
            f"plan {self.name!r} has no phase {name!r}; its phases are "
            f"{', '.join(p.name for p in self.phases)}",
            field="phase",
        )

    def total_duration(self) -> float:
        """Every phase's minimum duration, and the bake after the last."""
        return sum(p.duration for p in self.phases) + self.bake

    def planned_minutes(self, index: int) -> float:
        """How long phase ``index`` is planned to be judged: the last one's bake included."""
        extra = self.bake if index == len(self.phases) - 1 else 0.0
        return (self.phases[index].duration + extra) / 60.0

    def features(self) -> list[str]:
        names: list[str] = []
        for phase in self.phases:
            for f in phase.features or ():
                if f not in names:
                    names.append(f)
        return names + [f for f in self.matrix.p0_keep if f not in names]

    def to_dict(self, *, reveal: bool = False) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "interval_seconds": self.interval,
            "window_seconds": self.window,
            "recent_seconds": self.recent,
            "min_samples": self.min_samples,
            "confidence": self.confidence,
            "tolerance": self.tolerance,
            "operation": self.operation,
            "srm": self.srm,
            "bake_seconds": self.bake,
            "matrix": self.matrix.to_dict(),
            "guardrails": [g.to_dict() for g in self.guardrails],
            "phases": [p.to_dict() for p in self.phases],
            "notify": [t.to_dict(reveal=reveal) for t in self.notify],
        }


_PLAN_KEYS = {
    "plan",
    "description",
    "interval",
    "window",
    "recent",
    "min_samples",
    "confidence",
    "tolerance",
    "operation",
    "matrix",
    "guardrails",
    "phases",
    "notify",
    "srm",
    "bake",
}
_PHASE_KEYS = {"name", "percentage", "duration", "features", "gates", "requires_approval"}


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, f"expected a mapping (key: value lines), got {type(value).__name__}")
    return value


def _list(value: Any, path: str) -> Sequence[Any]:
    if not isinstance(value, list):
        raise _fail(path, f"expected a list (lines starting with '- '), got {type(value).__name__}")
    return value


def _unknown(data: Mapping[str, Any], allowed: set[str], path: str) -> None:
    extra = sorted(str(k) for k in set(data) - allowed)
    if extra:
        raise _fail(
            f"{path}.{extra[0]}" if path else extra[0],
            f"unknown key; allowed here: {', '.join(sorted(allowed))}",
        )


def _parse_phase(raw: Any, path: str, previous: int) -> Phase:
    data = _mapping(raw, path)
    _unknown(data, _PHASE_KEYS, path)
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail(f"{path}.name", f"{name!r} is not a phase name (lowercase letters, digits, _)")
    pct = data.get("percentage")
    if isinstance(pct, bool) or not isinstance(pct, int) or not 0 < pct <= 100:
        raise _fail(f"{path}.percentage", f"must be a whole number from 1 to 100, got {pct!r}")
    if pct < previous:
        raise _fail(
            f"{path}.percentage",
            f"{pct} is lower than the phase before ({previous}); phases only grow",
        )
    if "duration" not in data:
        raise _fail(f"{path}.duration", "missing; write the minimum time in the phase, e.g. 3d")
    duration = parse_seconds(data["duration"], f"{path}.duration")
    features: tuple[str, ...] | None = None
    if "features" in data:
        items = _list(data["features"], f"{path}.features")
        for i, f in enumerate(items):
            if not isinstance(f, str) or not _OUTCOME_NAME.match(f):
                raise _fail(f"{path}.features[{i}]", f"{f!r} is not a feature name")
        features = tuple(dict.fromkeys(items))
    gates = tuple(
        parse_gate(g, f"{path}.gates[{i}]")
        for i, g in enumerate(_list(data.get("gates", []), f"{path}.gates"))
    )
    approval = data.get("requires_approval", False)
    if not isinstance(approval, bool):
        raise _fail(f"{path}.requires_approval", f"must be true or false, got {approval!r}")
    return Phase(name, pct, duration, features, gates, approval)


def _parse_matrix(raw: Any) -> Matrix:
    data = _mapping(raw, "matrix")
    _unknown(data, {"p0", "p1", "p2", "p0_keep"}, "matrix")
    keep: list[str] = []
    for i, f in enumerate(_list(data.get("p0_keep", []), "matrix.p0_keep")):
        if not isinstance(f, str) or not _OUTCOME_NAME.match(f):
            raise _fail(f"matrix.p0_keep[{i}]", f"{f!r} is not a feature name")
        keep.append(f)
    default = Matrix()
    levels = {}
    for level in ("p0", "p1", "p2"):
        base: MatrixRow = getattr(default, level)
        if level not in data:
            levels[level] = base
            continue
        row = _mapping(data[level], f"matrix.{level}")
        _unknown(row, {"error_rate", "p95"}, f"matrix.{level}")
        levels[level] = MatrixRow(
            parse_rate(row["error_rate"], f"matrix.{level}.error_rate")
            if "error_rate" in row
            else base.error_rate,
            parse_latency_ms(row["p95"], f"matrix.{level}.p95") if "p95" in row else base.p95_ms,
        )
    if not (
        levels["p0"].error_rate >= levels["p1"].error_rate >= levels["p2"].error_rate
        and levels["p0"].p95_ms >= levels["p1"].p95_ms >= levels["p2"].p95_ms
    ):
        raise _fail("matrix", "thresholds must not grow from p0 to p2 (p0 is the most severe)")
    return Matrix(levels["p0"], levels["p1"], levels["p2"], tuple(dict.fromkeys(keep)))


def _parse_target(raw: Any, path: str) -> TargetSpec:
    data = _mapping(raw, path)
    _unknown(data, {"url", "url_env", "secret_env", "events"}, path)
    url, url_env = data.get("url"), data.get("url_env")
    if (url is None) == (url_env is None):
        raise _fail(path, "give exactly one of url or url_env (an environment variable's name)")
    if url is not None and not (isinstance(url, str) and re.match(r"^https?://[^\s/]+", url)):
        raise _fail(f"{path}.url", "must be an http:// or https:// URL")
    env_name = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
    for key in ("url_env", "secret_env"):
        value = data.get(key)
        if value is not None and not (isinstance(value, str) and env_name.match(value)):
            raise _fail(f"{path}.{key}", f"{value!r} is not an environment variable name")
    events = None
    if "events" in data:
        items = _list(data["events"], f"{path}.events")
        for i, e in enumerate(items):
            if e not in NOTIFY_EVENTS:
                raise _fail(
                    f"{path}.events[{i}]", f"{e!r} is not one of {', '.join(NOTIFY_EVENTS)}"
                )
        events = tuple(items)
    return TargetSpec(url=url, url_env=url_env, secret_env=data.get("secret_env"), events=events)


def parse_plan(data: Any) -> Plan:
    """Validate a plan given as data (what YAML or JSON gives)."""
    data = _mapping(data, "plan file")
    _unknown(data, _PLAN_KEYS, "")
    name = data.get("plan")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _fail("plan", f"{name!r} is not a plan name; write e.g. plan: voice_v2_rollout")
    raw_phases = _list(data.get("phases"), "phases") if "phases" in data else None
    if not raw_phases:
        raise _fail("phases", "a plan needs at least one phase")
    phases: list[Phase] = []
    for i, raw in enumerate(raw_phases):
        phase = _parse_phase(raw, f"phases[{i}]", phases[-1].percentage if phases else 0)
        if any(p.name == phase.name for p in phases):
            raise _fail(f"phases[{i}].name", f"{phase.name!r} is used twice; name phases uniquely")
        phases.append(phase)
    interval = parse_seconds(
        data.get("interval", "1m"), "interval", minimum=0.999, maximum=MAX_INTERVAL
    )
    window = parse_seconds(data.get("window", "1h"), "window")
    recent = parse_seconds(data.get("recent", "2m"), "recent")
    if window < 60 or recent < 60:
        raise _fail(
            "window" if window < 60 else "recent", "must be at least 1m (data is per minute)"
        )
    min_samples = data.get("min_samples", 100)
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 1:
        raise _fail("min_samples", f"must be a whole number of at least 1, got {min_samples!r}")
    confidence = data.get("confidence", 0.98)
    if isinstance(confidence, str):
        confidence = parse_rate(confidence, "confidence")
    if (
        not isinstance(confidence, int | float)
        or isinstance(confidence, bool)
        or not (0.5 <= confidence < 1)
    ):
        raise _fail("confidence", f"must be between 50% and 99.99%, got {confidence!r}")
    tolerance = data.get("tolerance", 0.1)
    if isinstance(tolerance, str):
        tolerance = parse_rate(tolerance, "tolerance")
    if not isinstance(tolerance, int | float) or isinstance(tolerance, bool) or tolerance < 0:
        raise _fail("tolerance", f"must be a fraction such as 0.1 (10%), got {tolerance!r}")
    operation = data.get("operation")
    if operation is not None and not (
        isinstance(operation, str) and _OUTCOME_NAME.match(operation)
    ):
        raise _fail("operation", f"{operation!r} is not an operation name")
    guardrails = tuple(
        parse_gate(g, f"guardrails[{i}]")
        for i, g in enumerate(_list(data.get("guardrails", []), "guardrails"))
    )
    notify = tuple(
        _parse_target(t, f"notify[{i}]")
        for i, t in enumerate(_list(data.get("notify", []), "notify"))
    )
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _fail("description", "must be text")
    srm = data.get("srm", True)
    if not isinstance(srm, bool):
        raise _fail("srm", f"must be true (hold on a sample ratio mismatch) or false, got {srm!r}")
    bake = 0.0
    if data.get("bake") is not None:
        bake = parse_seconds(data["bake"], "bake")
    return Plan(
        name=name,
        phases=tuple(phases),
        guardrails=guardrails,
        description=description,
        interval=interval,
        window=window,
        recent=recent,
        min_samples=min_samples,
        confidence=float(confidence),
        tolerance=float(tolerance),
        matrix=_parse_matrix(data["matrix"]) if "matrix" in data else Matrix(),
        notify=notify,
        operation=operation,
        srm=srm,
        bake=bake,
    )


def load_plan(text: str, source: str = "plan") -> Plan:
    """Parse YAML text; errors start with ``source`` (the file name) and the field's path."""
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ValidationError(f"{source}: {problem}{where}", field="plan") from None
    try:
        return parse_plan(data)
    except ValidationError as exc:
        raise ValidationError(f"{source}: {exc.message}", field=exc.field) from None


def check_features(plan: Plan, features: Sequence[str]) -> None:
    """Every feature a phase switches on must exist on the migration."""
    known = set(features)
    for j, f in enumerate(plan.matrix.p0_keep):
        if f not in known:
            raise ValidationError(
                f"matrix.p0_keep[{j}]: the migration has no feature {f!r}; its features are "
                f"{', '.join(sorted(known)) or '(none)'}",
                field=f"matrix.p0_keep[{j}]",
            )
    for i, phase in enumerate(plan.phases):
        for j, f in enumerate(phase.features or ()):
            if f not in known:
                raise ValidationError(
                    f"phases[{i}].features[{j}] (phase {phase.name!r}): the migration has no "
                    f"feature {f!r}; its "
                    f"features are {', '.join(sorted(known)) or '(none)'}",
                    field=f"phases[{i}].features[{j}]",
                )

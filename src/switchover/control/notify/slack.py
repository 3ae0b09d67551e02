"""The Slack incoming-webhook format: what a webhook target POSTs.

The body is what Slack renders (``text`` and ``blocks``, within Slack's limits, with
mrkdwn control characters escaped so a reason cannot ping a channel) plus a
``switchover`` object that a program reads: event, migration, severity, time, fields.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any

import orjson

from switchover.control.notify.base import Notification

EMOJI: Mapping[str, str] = {
    "phase_change": "⏩",
    "hold": "⏸️",
    "rollback": "⏪",
    "approval_needed": "✋",
    "completed": "✅",
}
TITLES: Mapping[str, str] = {
    "phase_change": "Phase change",
    "hold": "Hold",
    "rollback": "Rollback",
    "approval_needed": "Approval needed",
    "completed": "Completed",
}

MAX_REASONS = 10  # a Slack context block holds at most 10 elements
MAX_FIELDS = 10  # a Slack section holds at most 10 fields
_MAX_SECTION_TEXT = 2900  # Slack: 3000 characters per section text
_MAX_ITEM_TEXT = 300


def _jsonable(value: Any) -> Any:
    """Plain JSON types all the way down; anything unknown becomes its ``str``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return _jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_jsonable(v) for v in value), key=str)
    return str(value)


def _iso(at: datetime) -> str:
    """ISO 8601; a naive datetime is taken to be UTC."""
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).isoformat()


def _escape(text: str) -> str:
    """Slack mrkdwn control characters, so ``<!channel>`` in a reason pings nobody."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _reasons(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, Mapping):
        return [f"{k}: {v}" for k, v in value.items()]
    try:
        return [str(v) for v in value]
    except TypeError:
        return [str(value)]


def slack_payload(n: Notification) -> dict[str, Any]:
    """A Slack incoming-webhook body, plus the machine-readable ``switchover`` object."""
    emoji = EMOJI.get(n.event, "")
    title = TITLES.get(n.event, n.event)
    fields = dict(n.fields)

    shown: list[tuple[str, str]] = []
    if fields.get("phase") is not None:
        shown.append(("Phase", _show(fields["phase"])))
    if fields.get("percentage") is not None:
        pct = fields["percentage"]
        shown.append(("Percentage", f"{_show(pct)}%" if isinstance(pct, int | float) else str(pct)))
    shown.append(("Severity", n.severity))
    for key, value in fields.items():
        if key in ("phase", "percentage", "reasons") or value is None:
            continue
        if isinstance(value, bool | int | float | str):
            shown.append((str(key).replace("_", " ").capitalize(), _show(value)))
    shown = shown[:MAX_FIELDS]

    reasons = _reasons(fields.get("reasons"))
    if len(reasons) > MAX_REASONS:
        more = len(reasons) - (MAX_REASONS - 1)
        reasons = [*reasons[: MAX_REASONS - 1], f"… and {more} more"]

    headline = f"{emoji} *{_escape(n.migration)}* · {title} ({n.severity})"
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _clip(f"{headline}\n{_escape(n.text)}", _MAX_SECTION_TEXT),
            },
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{label}*\n{_escape(_clip(str(value), 200))}"}
                for label, value in shown
            ],
        },
    ]
    if reasons:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"• {_escape(_clip(r, _MAX_ITEM_TEXT))}"}
                    for r in reasons
                ],
            }
        )
    return {
        "text": _clip(f"{emoji} {_escape(n.text)}", _MAX_SECTION_TEXT),
        "blocks": blocks,
        "switchover": {
            "event": n.event,
            "migration": n.migration,
            "severity": n.severity,
            "at": _iso(n.at),
            "fields": _jsonable(fields),
        },
    }


def slack_body(n: Notification) -> bytes:
    """:func:`slack_payload` as the UTF-8 JSON bytes that are signed and sent."""
    payload = slack_payload(n)
    try:
        return orjson.dumps(payload, default=str)
    except (TypeError, orjson.JSONEncodeError):  # e.g. an int beyond 64 bits
        return json.dumps(payload, default=str, ensure_ascii=False).encode()

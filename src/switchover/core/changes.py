"""What an audit row changed, field by field: the CLI's audit table and the dashboard's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

UNTRACKED = frozenset({"version", "created_at", "updated_at", "updated_by"})
"""Bookkeeping every change moves; listing it would hide what changed."""


def changed_fields(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> list[tuple[str, Any, Any]]:
    """``(field, old, new)`` for each field that differs, one level into mappings
    (``features.stt``); the order of ``after``'s fields, then those only ``before`` had."""
    out: list[tuple[str, Any, Any]] = []
    for key in [*after, *(k for k in before if k not in after)]:
        old, new = before.get(key), after.get(key)
        if key in UNTRACKED or old == new:
            continue
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            out.extend(
                (f"{key}.{sub}", old.get(sub), new.get(sub))
                for sub in sorted(set(old) | set(new))
                if old.get(sub) != new.get(sub)
            )
        else:
            out.append((key, old, new))
    return out

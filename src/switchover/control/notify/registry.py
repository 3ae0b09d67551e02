"""Targets by kind name: ``make_target("webhook", url=...)``.

An unknown kind is an error that lists the known ones; nothing falls back to a default.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from switchover.control.notify.base import Target
from switchover.control.notify.memory import MemoryTarget
from switchover.control.notify.noop import NoopTarget
from switchover.control.notify.webhook import WebhookTarget
from switchover.errors import ValidationError

KINDS: Mapping[str, Callable[..., Target]] = MappingProxyType(
    {
        "memory": MemoryTarget,
        "noop": NoopTarget,
        "webhook": WebhookTarget,
    }
)
"""Every target kind, by the name a configuration gives it."""


def _options(factory: Callable[..., Target]) -> list[str]:
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in inspect.signature(factory).parameters.values() if p.kind in named]


def make_target(kind: str, **options: Any) -> Target:
    """A new target of ``kind`` built from ``options``; ValidationError on anything unknown."""
    factory = KINDS.get(kind) if isinstance(kind, str) else None
    if factory is None:
        raise ValidationError(
            f"notification target kind {kind!r} is unknown; use one of: {', '.join(KINDS)}",
            field="kind",
        )
    try:
        inspect.signature(factory).bind(**options)
    except TypeError:
        accepted = _options(factory)
        takes = f"takes only {', '.join(accepted)}" if accepted else "takes no options"
        raise ValidationError(
            f"a {kind} notification target {takes}; got {', '.join(sorted(options))}",
            field="kind",
        ) from None
    try:
        return factory(**options)
    except ValueError as exc:  # the message names the option (URL, events) and never a secret
        raise ValidationError(f"{kind} notification target: {exc}", field="kind") from exc

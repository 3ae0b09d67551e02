"""switchover: move AI voice and chat agents from legacy to candidate with zero downtime.

>>> import switchover
>>> client = switchover.connect("sqlite:///./switchover.db")
>>> d = client.migration("voice_v2").decide("stt", {"user_id": "42"})
>>> d.side, d.reason
"""

import typing as _typing

from switchover.core.clock import Clock, ManualClock, SystemClock
from switchover.core.decision import Decision, Reason, Side
from switchover.core.migration import Migration, Override, State
from switchover.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    LockHeldError,
    NotFoundError,
    StoreError,
    SwitchoverError,
    ValidationError,
)

if _typing.TYPE_CHECKING:
    from switchover.core.redact import Redactor
    from switchover.sdk.circuit import CircuitPolicy
    from switchover.sdk.client import Client, MigrationHandle, connect

__version__ = "0.1.0"
_LAZY = {
    "Client": "switchover.sdk.client",
    "MigrationHandle": "switchover.sdk.client",
    "connect": "switchover.sdk.client",
    "CircuitPolicy": "switchover.sdk.circuit",
    "Redactor": "switchover.core.redact",
}


def __getattr__(name: str) -> _typing.Any:
    """The SDK loads on first use: ``switchover --help`` and the store do not need it."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'switchover' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AuthError",
    "CircuitPolicy",
    "Client",
    "Clock",
    "ConflictError",
    "Decision",
    "ForbiddenError",
    "LockHeldError",
    "ManualClock",
    "Migration",
    "MigrationHandle",
    "NotFoundError",
    "Override",
    "Reason",
    "Redactor",
    "Side",
    "State",
    "StoreError",
    "SwitchoverError",
    "SystemClock",
    "ValidationError",
    "__version__",
    "connect",
]

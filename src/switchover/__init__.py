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
    from switchover.sdk.client import Client, MigrationHandle, connect

__version__ = "0.1.0"
_SDK = frozenset({"Client", "MigrationHandle", "connect"})


def __getattr__(name: str) -> _typing.Any:
    """The SDK loads on first use: ``switchover --help`` and the store do not need it."""
    if name in _SDK:
        from switchover.sdk import client

        return getattr(client, name)
    raise AttributeError(f"module 'switchover' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AuthError",
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
    "Side",
    "State",
    "StoreError",
    "SwitchoverError",
    "SystemClock",
    "ValidationError",
    "__version__",
    "connect",
]

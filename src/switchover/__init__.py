"""switchover: move AI voice and chat agents from legacy to candidate with zero downtime.

>>> import switchover
>>> client = switchover.connect("sqlite:///./switchover.db")
>>> d = client.migration("voice_v2").decide("stt", {"user_id": "42"})
>>> d.side, d.reason
"""

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
from switchover.sdk.client import Client, MigrationHandle, connect

__version__ = "0.1.0"

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

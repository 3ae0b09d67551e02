"""The errors switchover raises, one tree under :class:`SwitchoverError`.

::

    SwitchoverError                 code            CLI exit  HTTP
    ├── ValidationError             invalid         2         422
    │   └── InactiveError           inactive        2         400
    ├── NotFoundError               not_found       3         404
    ├── ConflictError               conflict        4         409
    ├── AuthError                   unauthorized    5         401
    │   └── ForbiddenError          forbidden       5         403
    ├── LockHeldError               locked          6         409
    ├── StoreError                  store           7         503
    ├── SecretKeyError              secret_key      8         503
    └── DataCheckError              data_check      9         409

Every message names the field that is wrong and how to fix it. A field written in
backticks (`` `target_percentage` ``) is a reference: ``message`` shows it plain, and each
entry point words it its own way with :meth:`SwitchoverError.worded` (the CLI as
``--target-percentage``, the API as the JSON key, the dashboard as the form's label). Errors from
third-party libraries are translated at the boundary with ``raise ... from exc``
so that callers only ever catch this tree. Messages never contain secrets.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = [
    "AuthError",
    "ConflictError",
    "DataCheckError",
    "ForbiddenError",
    "InactiveError",
    "LockHeldError",
    "NotFoundError",
    "SecretKeyError",
    "StoreError",
    "SwitchoverError",
    "ValidationError",
]


_FIELD_REF = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)`")


class SwitchoverError(Exception):
    """Root of every error switchover raises on purpose."""

    code = "error"
    exit_code = 1
    http_status = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        plain = _FIELD_REF.sub(r"\1", message)
        super().__init__(plain)
        self.template = message
        self.message = plain
        self.field = field

    def worded(self, label: Callable[[str], str]) -> str:
        """The message with each field reference in the caller's words."""
        return _FIELD_REF.sub(lambda m: label(m.group(1)), self.template)

    def to_dict(self) -> dict[str, str | None]:
        return {"code": self.code, "field": self.field, "message": self.message}


class ValidationError(SwitchoverError):
    """Input that cannot be accepted; ``field`` names it."""

    code = "invalid"
    exit_code = 2
    http_status = 422


class NotFoundError(SwitchoverError):
    code = "not_found"
    exit_code = 3
    http_status = 404


class ConflictError(SwitchoverError):
    """A write lost a race, or would duplicate something that exists."""

    code = "conflict"
    exit_code = 4
    http_status = 409

    def __init__(
        self, message: str, *, field: str | None = None, current_version: int | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.current_version = current_version


class AuthError(SwitchoverError):
    code = "unauthorized"
    exit_code = 5
    http_status = 401


class ForbiddenError(AuthError):
    code = "forbidden"
    http_status = 403


class LockHeldError(SwitchoverError):
    code = "locked"
    exit_code = 6
    http_status = 409


class StoreError(SwitchoverError):
    """The store could not be reached or refused the operation."""

    code = "store"
    exit_code = 7
    http_status = 503


class InactiveError(ValidationError):
    """The thing exists but is switched off (an inactive agent: seed 000 answers 400)."""

    code = "inactive"
    http_status = 400


class SecretKeyError(SwitchoverError):
    """Stored secrets cannot be encrypted or decrypted with SWITCHOVER_SECRET_KEY.

    A 503: the server is misconfigured for this answer, not broken, and says how to fix it.
    """

    code = "secret_key"
    exit_code = 8
    http_status = 503


class DataCheckError(SwitchoverError):
    """The data failed a critical validation check (seed 003 §6.2); nothing was written."""

    code = "data_check"
    exit_code = 9
    http_status = 409

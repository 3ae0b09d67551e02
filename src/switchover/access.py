"""API tokens: created once, stored only as a SHA-256 hash, checked per request."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from switchover.core.access import Role, parse_role
from switchover.core.clock import Clock, SystemClock
from switchover.core.migration import validate_name
from switchover.errors import AuthError, ForbiddenError, ValidationError
from switchover.store.ports import Repository as Store
from switchover.store.records import TokenRecord

TOKEN_PREFIX = "swo_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role

    def require(self, needed: Role) -> None:
        if not self.role.allows(needed):
            raise ForbiddenError(
                f"token {self.name!r} has the role {self.role.value}; this needs "
                f"{needed.value} or higher",
                field="token",
            )


class TokenService:
    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or SystemClock()

    def create(self, name: str, role: str, *, actor: str, replace: bool = False) -> str:
        """Create a token and return it; this is the only time it is shown. With
        ``replace`` a token of the same name is replaced: the old value stops working."""
        try:
            validate_name(name)
        except ValidationError:
            raise ValidationError(
                f"token name {name!r} is not valid: use lowercase letters, digits, '_', '.', '-'",
                field="name",
            ) from None
        parsed = parse_role(role)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = TokenRecord(
            name=name,
            role=parsed.value,
            token_hash=hash_token(token),
            created_at=self.clock.now(),
            created_by=actor,
            revoked_at=None,
        )
        with self.store.transaction() as tx:
            tx.insert_token(record, replace=replace)
        return token

    def list(self) -> list[TokenRecord]:
        with self.store.read() as tx:
            return tx.list_tokens()

    def revoke(self, name: str) -> None:
        with self.store.transaction() as tx:
            tx.revoke_token(name, self.clock.now())

    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise AuthError(
                "no token: send 'Authorization: Bearer <token>' (create one with "
                "'switchover token create NAME --role viewer')",
                field="token",
            )
        with self.store.read() as tx:
            record = tx.token_by_hash(hash_token(token))
        if record is None or record.revoked_at is not None:
            raise AuthError("the token is not valid or was revoked", field="token")
        return Principal(record.name, Role(record.role))

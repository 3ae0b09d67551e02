"""What the services need from a store, as Protocols: one store interface, two engines.

:class:`~switchover.store.repository.Store` (SQLAlchemy on SQLite or PostgreSQL) and
:class:`~switchover.store.memory.MemoryStore` (a process's memory: the simulator, unit
tests) both fit. The services (rollout, plans, the controller, the evidence cache) are
written against these, never against an engine.

A :class:`Repository` opens units of work. :meth:`Repository.transaction` commits when its
block ends cleanly and leaves nothing changed when it raises; :meth:`Repository.read`
never keeps what is written in it. A migration and a plan are written with
compare-and-swap on their ``version``: a writer that read an older one gets
:class:`~switchover.errors.ConflictError`. A :class:`Lock` makes work exclusive across
the processes that share the store (the controller's leader, a data-migration run).

``store/agents.py`` and the data-migration runs still reach the SQL connection
(``Tx.conn``) and need the SQLAlchemy store.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from switchover.core.clock import Clock
from switchover.core.migration import Migration
from switchover.core.plan_state import PlanState
from switchover.core.rollup import Rollup, RollupKey, StoredRollup
from switchover.store.records import AuditEntry, RollupParts, TokenRecord, VerdictRecord


class Transaction(Protocol):
    """Repository operations inside one unit of work."""

    # migrations: the master switch, percentage, features, tenants (compare-and-swap)

    def get_migration(self, name: str, *, for_update: bool = False) -> Migration:
        """The migration, or NotFoundError naming the known ones."""
        ...

    def migration_names(self) -> list[str]: ...

    def list_migrations(self) -> list[Migration]: ...

    def insert_migration(self, m: Migration) -> None:
        """ConflictError if the name is taken."""
        ...

    def replace_migration(self, new: Migration, *, expected_version: int) -> None:
        """Write ``new`` if the stored version is still ``expected_version``, else
        ConflictError with the current version."""
        ...

    # audit: one row per change, who, when, why, before and after

    def add_audit(
        self,
        *,
        migration: str,
        action: str,
        actor: str,
        at: datetime,
        reason: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        version: int,
    ) -> None: ...

    def list_audit(self, migration: str, *, limit: int = 100) -> list[AuditEntry]:
        """Newest first."""
        ...

    # known tenants

    def add_known_tenants(self, migration: str, tenants: Sequence[str], at: datetime) -> int:
        """How many of ``tenants`` were new."""
        ...

    def known_tenants(self, migration: str) -> list[str]: ...

    # API tokens

    def insert_token(self, record: TokenRecord, *, replace: bool = False) -> None:
        """``replace``: a token of that name gets the new hash and role (the old one dies)."""

    def token_by_hash(self, token_hash: str) -> TokenRecord | None: ...

    def list_tokens(self) -> list[TokenRecord]: ...

    def revoke_token(self, name: str, at: datetime) -> None: ...

    # rollups: appended by recorders, merged by readers

    def insert_rollups(self, items: Sequence[tuple[RollupKey, Rollup]]) -> None: ...

    def rollups(
        self,
        migration: str,
        since_minute: int,
        until_minute: int,
        operation: str | None = None,
        *,
        max_id: int | None = None,
    ) -> list[StoredRollup]: ...

    def rollup_parts(
        self, migration: str, since_minute: int, until_minute: int, *, max_id: int
    ) -> Iterator[RollupParts]: ...

    def max_rollup_id(self) -> int: ...

    def rollups_after(
        self, last_id: int, *, limit: int = 5000
    ) -> list[tuple[int, StoredRollup]]: ...

    def prune_rollups(self, before_minute: int) -> int: ...

    # shadow comparisons

    def add_shadow_samples(
        self, samples: Sequence[dict[str, Any]], *, keep_per_migration: int
    ) -> None: ...

    def shadow_samples(self, migration: str, *, limit: int = 50) -> list[dict[str, Any]]: ...

    # change feed: a number that grows with every change to a migration

    def store_version(self) -> int: ...

    def bump_store_version(self) -> int: ...

    # plans and verdicts (the controller's state; store/control.py wraps these)

    def find_plan(self, migration: str, *, for_update: bool = False) -> PlanState | None: ...

    def list_plans(self) -> list[PlanState]: ...

    def put_plan(self, state: PlanState) -> None:
        """Insert or replace the plan of a migration (a new apply starts over)."""
        ...

    def update_plan(self, state: PlanState, *, expected_version: int) -> None:
        """ConflictError unless the stored plan is still at ``expected_version``."""
        ...

    def insert_verdict(
        self,
        *,
        migration: str,
        interval: int,
        at: datetime,
        phase_index: int,
        phase: str,
        action: str,
        severity: str,
        summary: str,
        data: dict[str, Any],
        actor: str,
    ) -> int | None:
        """The new verdict's id; None when this interval already has one."""
        ...

    def list_verdicts(self, migration: str, *, limit: int = 20) -> list[VerdictRecord]:
        """Newest first."""
        ...


class Lock(Protocol):
    """Exclusive work across processes; never waits."""

    def acquire(self) -> bool:
        """Take the lock if it is free (or already ours)."""
        ...

    def renew(self) -> bool:
        """Still ours? (and keep it so)"""
        ...

    def release(self) -> None: ...

    def require(self, what: str) -> None:
        """Acquire or raise LockHeldError naming who holds it."""
        ...


class Repository(Protocol):
    """A store: units of work, the change feed's version, exclusive locks."""

    def transaction(self) -> AbstractContextManager[Transaction]:
        """Committed when the block ends cleanly; nothing changed when it raises."""
        ...

    def read(self) -> AbstractContextManager[Transaction]:
        """For reading: whatever is written in it is not kept."""
        ...

    def snapshot(self) -> tuple[int, list[Migration]]:
        """Every migration and the store version they belong to, read consistently."""
        ...

    def store_version(self) -> int: ...

    def lock(
        self, name: str, holder: str, *, ttl: float = 30.0, clock: Clock | None = None
    ) -> Lock:
        """The lock ``name`` as ``holder`` would hold it (not taken yet)."""
        ...

    def dispose(self) -> None: ...

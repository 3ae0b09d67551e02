"""The store in a process's memory: for the simulator and unit tests, no database.

:class:`MemoryStore` fits :class:`~switchover.store.ports.Repository` with the semantics of
the SQL store: the same rows (JSON columns go through JSON, so a caller gets back what
SQLite would give), the same compare-and-swap on versions and the same errors, one audit
row per change as the services write them, and a unit of work that leaves nothing changed
when its block raises. Where the engines differ it behaves as SQLite: no length limits
on strings, NaN allowed in JSON.

One re-entrant lock serialises every unit of work, reads included: the store is for one
process, and a test never sees half of another thread's transaction. Its locks
(:class:`MemoryLock`) are leases held in the store, as SQLite's lock rows are.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from switchover.core.clock import Clock, SystemClock
from switchover.core.migration import Migration
from switchover.core.plan_state import PlanState
from switchover.core.rollup import Rollup, RollupKey, StoredRollup
from switchover.errors import LockHeldError
from switchover.store import records as rec
from switchover.store.records import AuditEntry, RollupParts, TokenRecord, VerdictRecord
from switchover.store.rollup_parts import parts_of

__all__ = ["MemoryLock", "MemoryStore", "MemoryTx"]

_Row = SimpleNamespace


def _json(value: Any) -> Any:
    """What a JSON column gives back: dict keys as strings, tuples as lists, fresh objects."""
    return json.loads(json.dumps(value))


@dataclass
class _Tables:
    migrations: dict[str, _Row] = field(default_factory=dict)
    audit: list[_Row] = field(default_factory=list)
    known_tenants: dict[tuple[str, str], datetime] = field(default_factory=dict)
    tokens: dict[str, _Row] = field(default_factory=dict)
    rollups: list[_Row] = field(default_factory=list)
    shadow_samples: list[_Row] = field(default_factory=list)
    plans: dict[str, _Row] = field(default_factory=dict)
    verdicts: list[_Row] = field(default_factory=list)
    verdict_keys: set[tuple[str, int]] = field(default_factory=set)
    store_version: int = 0
    last_ids: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("audit", "rollups", "shadow", "verdicts"), 0)
    )


class MemoryTx:
    """Repository operations on the store's tables, each change undoable until the end."""

    def __init__(self, tables: _Tables) -> None:
        self._t = tables
        self._undo: list[Callable[[], None]] = []
        self._ids = dict(tables.last_ids)
        self._version = tables.store_version

    # the unit of work ----------------------------------------------------------------

    def _rollback(self) -> None:
        while self._undo:
            self._undo.pop()()
        self._t.last_ids = self._ids
        self._t.store_version = self._version

    def _next_id(self, table: str) -> int:
        self._t.last_ids[table] += 1
        return self._t.last_ids[table]

    def _set(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        missing = object()
        old = table.get(key, missing)
        table[key] = value

        def undo() -> None:
            if old is missing:
                del table[key]
            else:
                table[key] = old

        self._undo.append(undo)

    def _delete(self, table: dict[Any, Any], key: Any) -> None:
        if key in table:
            old = table.pop(key)
            self._undo.append(lambda: table.__setitem__(key, old))

    def _append(self, rows: list[_Row], row: _Row) -> None:
        rows.append(row)
        self._undo.append(rows.pop)

    def _replace_rows(self, name: str, keep: list[_Row]) -> None:
        old = getattr(self._t, name)
        setattr(self._t, name, keep)
        self._undo.append(lambda: setattr(self._t, name, old))

    # migrations -------------------------------------------------------------------

    def get_migration(self, name: str, *, for_update: bool = False) -> Migration:
        row = self._t.migrations.get(name)
        if row is None:
            raise rec.missing_migration(name, self.migration_names())
        return rec.migration_from_row(row)

    def migration_names(self) -> list[str]:
        return sorted(self._t.migrations)

    def list_migrations(self) -> list[Migration]:
        return [rec.migration_from_row(self._t.migrations[n]) for n in self.migration_names()]

    def _migration_row(self, m: Migration) -> _Row:
        values = rec.migration_values(m)
        if not 0 <= values["percentage"] <= 100:  # the table's check constraint
            raise rec.constraint_conflict()
        values["features"] = _json(values["features"])
        values["tenants"] = _json(values["tenants"])
        values["feature_percentages"] = _json(values["feature_percentages"])
        return _Row(**values)

    def insert_migration(self, m: Migration) -> None:
        exists = self._t.migrations.get(m.name)
        if exists is not None:
            raise rec.duplicate_migration(m.name, exists.version)
        self._set(self._t.migrations, m.name, self._migration_row(m))
        self.bump_store_version()

    def replace_migration(self, new: Migration, *, expected_version: int) -> None:
        current = self._t.migrations.get(new.name)
        if current is None:
            raise rec.missing_migration(new.name)
        if current.version != expected_version:
            raise rec.stale_migration(new.name, int(current.version), expected_version)
        row = self._migration_row(new)
        row.created_at = current.created_at
        self._set(self._t.migrations, new.name, row)
        self.bump_store_version()

    # audit ------------------------------------------------------------------------

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
    ) -> None:
        row = _Row(
            id=self._next_id("audit"),
            migration=migration,
            action=action,
            actor=actor,
            at=at,
            reason=reason,
            before=_json(before),
            after=_json(after),
            version=version,
        )
        self._append(self._t.audit, row)

    def list_audit(self, migration: str, *, limit: int = 100) -> list[AuditEntry]:
        rows = [r for r in reversed(self._t.audit) if r.migration == migration][:limit]
        return [rec.audit_from_row(_copy(r, "before", "after")) for r in rows]

    # known tenants ------------------------------------------------------------------

    def add_known_tenants(self, migration: str, tenants: Sequence[str], at: datetime) -> int:
        new = [x for x in dict.fromkeys(tenants) if (migration, x) not in self._t.known_tenants]
        for tenant in new:
            self._set(self._t.known_tenants, (migration, tenant), at)
        return len(new)

    def known_tenants(self, migration: str) -> list[str]:
        return sorted(x for m, x in self._t.known_tenants if m == migration)

    # tokens -------------------------------------------------------------------------

    def insert_token(self, record: TokenRecord, *, replace: bool = False) -> None:
        if record.name in self._t.tokens and not replace:
            raise rec.duplicate_token(record.name)
        if any(r.token_hash == record.token_hash for r in self._t.tokens.values()):
            raise rec.constraint_conflict()  # the hash is unique
        row = _Row(
            name=record.name,
            role=record.role,
            token_hash=record.token_hash,
            created_at=record.created_at,
            created_by=record.created_by,
            revoked_at=None,
        )
        self._set(self._t.tokens, record.name, row)

    def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        for row in self._t.tokens.values():
            if row.token_hash == token_hash:
                return rec.token_from_row(row)
        return None

    def list_tokens(self) -> list[TokenRecord]:
        return [rec.token_from_row(self._t.tokens[n]) for n in sorted(self._t.tokens)]

    def revoke_token(self, name: str, at: datetime) -> None:
        row = self._t.tokens.get(name)
        if row is None or row.revoked_at is not None:
            raise rec.no_active_token(name)
        self._set(self._t.tokens, name, _Row(**{**vars(row), "revoked_at": at}))

    # rollups ------------------------------------------------------------------------

    def insert_rollups(self, items: Sequence[tuple[RollupKey, Rollup]]) -> None:
        """Append partial rollups; readers merge them, so writers never overwrite."""
        for key, r in items:
            values = rec.rollup_values(key, r)
            values["data"] = json.dumps(values["data"])  # decoded afresh by each reader
            if values["first_chunk"] is not None:
                values["first_chunk"] = json.dumps(values["first_chunk"])
            self._append(self._t.rollups, _Row(id=self._next_id("rollups"), **values))

    def _rollup_rows(
        self, migration: str, since_minute: int, until_minute: int, max_id: int | None
    ) -> Iterator[_Row]:
        for row in self._t.rollups:
            if (
                row.migration == migration
                and since_minute <= row.minute < until_minute
                and (max_id is None or row.id <= max_id)
            ):
                yield row

    def rollups(
        self,
        migration: str,
        since_minute: int,
        until_minute: int,
        operation: str | None = None,
        *,
        max_id: int | None = None,
    ) -> list[StoredRollup]:
        """Rollups with ``since_minute <= minute < until_minute`` (and ``id <= max_id``)."""
        rows = [
            r
            for r in self._rollup_rows(migration, since_minute, until_minute, max_id)
            if operation is None or r.operation == operation
        ]
        rows.sort(key=lambda r: (r.minute, r.id))
        return [rec.stored_rollup(_decoded(r)) for r in rows]

    def rollup_parts(
        self, migration: str, since_minute: int, until_minute: int, *, max_id: int
    ) -> Iterator[RollupParts]:
        for r in list(self._rollup_rows(migration, since_minute, until_minute, max_id)):
            yield parts_of(r)

    def max_rollup_id(self) -> int:
        return max((r.id for r in self._t.rollups), default=0)

    def rollups_after(self, last_id: int, *, limit: int = 5000) -> list[tuple[int, StoredRollup]]:
        """Rollup rows appended after ``last_id``, oldest first: an incremental feed."""
        rows = [r for r in self._t.rollups if r.id > last_id][:limit]
        return [(int(r.id), rec.stored_rollup(_decoded(r))) for r in rows]

    def prune_rollups(self, before_minute: int) -> int:
        keep = [r for r in self._t.rollups if r.minute >= before_minute]
        pruned = len(self._t.rollups) - len(keep)
        if pruned:
            self._replace_rows("rollups", keep)
        return pruned

    def add_shadow_samples(
        self, samples: Sequence[dict[str, Any]], *, keep_per_migration: int
    ) -> None:
        if not samples:
            return
        for s in samples:
            values = {**s, "sample": _json(s["sample"])}
            self._append(self._t.shadow_samples, _Row(id=self._next_id("shadow"), **values))
        for migration in {s["migration"] for s in samples}:
            ids = sorted(r.id for r in self._t.shadow_samples if r.migration == migration)
            if len(ids) > keep_per_migration:
                cutoff = ids[-keep_per_migration - 1]
                keep = [
                    r for r in self._t.shadow_samples if r.migration != migration or r.id > cutoff
                ]
                self._replace_rows("shadow_samples", keep)

    def shadow_samples(self, migration: str, *, limit: int = 50) -> list[dict[str, Any]]:
        rows = [r for r in reversed(self._t.shadow_samples) if r.migration == migration][:limit]
        return [rec.shadow_sample_from_row(_copy(r, "sample")) for r in rows]

    # change feed --------------------------------------------------------------------

    def store_version(self) -> int:
        return self._t.store_version

    def bump_store_version(self) -> int:
        self._t.store_version += 1
        return self._t.store_version

    # plans and verdicts -------------------------------------------------------------

    def find_plan(self, migration: str, *, for_update: bool = False) -> PlanState | None:
        row = self._t.plans.get(migration)
        return None if row is None else rec.plan_from_row(row)

    def list_plans(self) -> list[PlanState]:
        return [rec.plan_from_row(self._t.plans[m]) for m in sorted(self._t.plans)]

    def put_plan(self, state: PlanState) -> None:
        """Insert or replace the plan of a migration (a new apply starts over)."""
        self._set(self._t.plans, state.migration, _Row(**rec.plan_values(state)))

    def update_plan(self, state: PlanState, *, expected_version: int) -> None:
        current = self._t.plans.get(state.migration)
        if current is None or current.version != expected_version:
            raise rec.stale_plan(state.migration)
        self._set(self._t.plans, state.migration, _Row(**rec.plan_values(state)))

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
        """Store a verdict; None when this interval already has one (another leader's)."""
        key = (migration, interval)
        if key in self._t.verdict_keys:
            return None
        values = rec.verdict_values(
            migration=migration,
            interval=interval,
            at=at,
            phase_index=phase_index,
            phase=phase,
            action=action,
            severity=severity,
            summary=summary,
            data=_json(data),
            actor=actor,
        )
        row = _Row(id=self._next_id("verdicts"), **values)
        self._append(self._t.verdicts, row)
        self._t.verdict_keys.add(key)
        self._undo.append(lambda: self._t.verdict_keys.discard(key))
        return int(row.id)

    def list_verdicts(self, migration: str, *, limit: int = 20) -> list[VerdictRecord]:
        rows = [r for r in reversed(self._t.verdicts) if r.migration == migration][:limit]
        return [rec.verdict_from_row(_copy(r, "data")) for r in rows]


def _decoded(row: _Row) -> _Row:
    fields = vars(row)
    first_chunk = fields.get("first_chunk")
    return _Row(
        **{
            **fields,
            "data": json.loads(row.data),
            "first_chunk": json.loads(first_chunk) if first_chunk else None,
        }
    )


def _copy(row: _Row, *json_columns: str) -> _Row:
    """The row with fresh copies of its JSON columns: a caller's changes stay its own."""
    return _Row(**{**vars(row), **{n: _json(getattr(row, n)) for n in json_columns}})


class MemoryStore:
    """A store in memory; see the module's docstring for what it shares with SQL."""

    is_postgres = False

    def __init__(self) -> None:
        self._tables = _Tables()
        self._mutex = threading.RLock()
        self._leases: dict[str, tuple[str, datetime, datetime]] = {}
        self._leases_mutex = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[MemoryTx]:
        """A unit of work: kept when the block ends cleanly, undone when it raises."""
        with self._mutex:
            tx = MemoryTx(self._tables)
            try:
                yield tx
            except BaseException:
                tx._rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[MemoryTx]:
        """For reading; as on SQL, what is written here is not kept."""
        with self._mutex:
            tx = MemoryTx(self._tables)
            try:
                yield tx
            finally:
                tx._rollback()

    def snapshot(self) -> tuple[int, list[Migration]]:
        with self.read() as tx:
            return tx.store_version(), tx.list_migrations()

    def store_version(self) -> int:
        with self.read() as tx:
            return tx.store_version()

    def lock(
        self, name: str, holder: str, *, ttl: float = 30.0, clock: Clock | None = None
    ) -> MemoryLock:
        return MemoryLock(self, name, holder, ttl=ttl, clock=clock)

    def dispose(self) -> None:
        return None


class MemoryLock:
    """A lease in the store, as SQLite's lock row: taken when free, expired or ours,
    renewed by its holder, taken over by another once it has expired."""

    def __init__(
        self,
        store: MemoryStore,
        name: str,
        holder: str,
        *,
        ttl: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self.clock = clock or SystemClock()
        self.held = False

    def acquire(self) -> bool:
        """Take the lock if it is free (or already ours); never waits."""
        if self.held:
            return self.renew()
        self.held = self._lease(insert=True)
        return self.held

    def renew(self) -> bool:
        if not self.held:
            return False
        self.held = self._lease(insert=False)
        return self.held

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        leases = self.store._leases
        with self.store._leases_mutex:
            current = leases.get(self.name)
            if current is not None and current[0] == self.holder:
                del leases[self.name]

    def holder_info(self) -> dict[str, Any] | None:
        with self.store._leases_mutex:
            current = self.store._leases.get(self.name)
        if current is None:
            return None
        holder, acquired_at, expires_at = current
        return {
            "holder": holder,
            "acquired_at": acquired_at.isoformat(),
            "expires_at": expires_at.isoformat(),
        }

    def require(self, what: str) -> None:
        """Acquire or raise :class:`LockHeldError` naming who holds it."""
        if self.acquire():
            return
        info = self.holder_info()
        who = f"{info['holder']} (since {info['acquired_at']})" if info else "another process"
        raise LockHeldError(f"{what} is already running: the lock {self.name!r} is held by {who}")

    def __enter__(self) -> MemoryLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _lease(self, *, insert: bool) -> bool:
        now = self.clock.now()
        expires = now + timedelta(seconds=self.ttl)
        leases = self.store._leases
        with self.store._leases_mutex:
            current = leases.get(self.name)
            if current is None:
                if not insert:
                    return False
                leases[self.name] = (self.holder, now, expires)
                return True
            holder, acquired_at, expires_at = current
            if holder == self.holder:
                leases[self.name] = (holder, acquired_at, expires)
                return True
            if expires_at < now:
                leases[self.name] = (self.holder, now, expires)
                return True
            return False

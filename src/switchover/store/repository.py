"""The store: one interface over SQLite and PostgreSQL.

Every write goes through :meth:`Store.transaction`, a unit of work that commits
only when its block ends without an exception, so a failed command writes nothing.
A migration is written with compare-and-swap on its ``version``: a writer that read
an older version gets :class:`ConflictError` naming the current one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from switchover.core.migration import Migration, Override, State
from switchover.core.rollup import Rollup, RollupKey, StoredRollup
from switchover.errors import ConflictError, NotFoundError, StoreError
from switchover.store import tables as t
from switchover.store.engine import create_store_engine, is_postgres

NOTIFY_CHANNEL = "switchover_changes"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    migration: str
    action: str
    actor: str
    at: datetime
    reason: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    version: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "migration": self.migration,
            "action": self.action,
            "actor": self.actor,
            "at": self.at.isoformat(),
            "reason": self.reason,
            "before": self.before,
            "after": self.after,
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class TokenRecord:
    name: str
    role: str
    token_hash: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _is_missing_schema(exc: Exception) -> bool:
    text = str(getattr(exc, "orig", exc)).lower()
    return "no such table" in text or ("relation" in text and "does not exist" in text)


def _store_error(exc: Exception) -> StoreError:
    orig = getattr(exc, "orig", exc)
    if _is_missing_schema(exc):
        return StoreError(
            "the store has no switchover schema yet: run 'switchover init' "
            "(or 'switchover serve') with the same --db first"
        )
    return StoreError(
        f"the store is unreachable or refused the operation ({type(orig).__name__}); "
        "check --db / SWITCHOVER_DATABASE_URL and that the database is running"
    )


def _row_to_migration(row: Any) -> Migration:
    tenants: dict[str, Override] = {}
    for tenant in row.tenants.get("allow", []):
        tenants[tenant] = Override.ALLOW
    for tenant in row.tenants.get("deny", []):
        tenants[tenant] = Override.DENY
    return Migration(
        name=row.name,
        description=row.description,
        legacy_label=row.legacy_label,
        candidate_label=row.candidate_label,
        enabled=bool(row.enabled),
        percentage=int(row.percentage),
        features=dict(row.features),
        tenants=tenants,
        stickiness=row.stickiness,
        tenant_key=row.tenant_key,
        state=State(row.state),
        version=int(row.version),
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
        updated_by=row.updated_by,
    )


def _migration_values(m: Migration) -> dict[str, Any]:
    return {
        "name": m.name,
        "description": m.description,
        "legacy_label": m.legacy_label,
        "candidate_label": m.candidate_label,
        "enabled": m.enabled,
        "percentage": m.percentage,
        "features": dict(sorted(m.features.items())),
        "tenants": {"allow": m.allowed_tenants, "deny": m.denied_tenants},
        "stickiness": m.stickiness,
        "tenant_key": m.tenant_key,
        "state": m.state.value,
        "version": m.version,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "updated_by": m.updated_by,
    }


class RollupParts(NamedTuple):
    """A rollup row as charts read it (:meth:`Tx.rollup_parts`)."""

    key: RollupKey
    count: int
    errors: int
    fallbacks: int
    outcomes: dict[str, float]
    sketch: dict[str, Any]
    """``LatencySketch.to_dict()``"""


class Tx:
    """Repository operations inside one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # migrations -------------------------------------------------------------------

    def get_migration(self, name: str, *, for_update: bool = False) -> Migration:
        query = sa.select(t.migrations).where(t.migrations.c.name == name)
        if for_update and self.conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        if row is None:
            known = self.migration_names()
            hint = (
                f"; known migrations: {', '.join(known)}"
                if known
                else ("; create one with 'switchover migration create NAME'")
            )
            raise NotFoundError(f"migration {name!r} does not exist{hint}", field="name")
        return _row_to_migration(row)

    def migration_names(self) -> list[str]:
        return list(
            self.conn.execute(sa.select(t.migrations.c.name).order_by(t.migrations.c.name))
            .scalars()
            .all()
        )

    def list_migrations(self) -> list[Migration]:
        rows = self.conn.execute(sa.select(t.migrations).order_by(t.migrations.c.name))
        return [_row_to_migration(r) for r in rows]

    def insert_migration(self, m: Migration) -> None:
        exists = self.conn.execute(
            sa.select(t.migrations.c.version).where(t.migrations.c.name == m.name)
        ).first()
        if exists is not None:
            raise ConflictError(
                f"migration {m.name!r} already exists (version {exists.version}); "
                "choose another name or change it with 'switchover rollout set'",
                field="name",
                current_version=exists.version,
            )
        self.conn.execute(t.migrations.insert().values(**_migration_values(m)))
        self.bump_store_version()

    def replace_migration(self, new: Migration, *, expected_version: int) -> None:
        """Write ``new`` if the stored version is still ``expected_version``."""
        values = _migration_values(new)
        del values["name"], values["created_at"]
        result = self.conn.execute(
            t.migrations.update()
            .where(t.migrations.c.name == new.name)
            .where(t.migrations.c.version == expected_version)
            .values(**values)
        )
        if result.rowcount != 1:
            current = self.conn.execute(
                sa.select(t.migrations.c.version).where(t.migrations.c.name == new.name)
            ).scalar()
            if current is None:
                raise NotFoundError(f"migration {new.name!r} does not exist", field="name")
            raise ConflictError(
                f"migration {new.name!r} was changed by someone else: it is at version "
                f"{current}, not {expected_version}; read it again and retry",
                field="version",
                current_version=int(current),
            )
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
        self.conn.execute(
            t.audit_log.insert().values(
                migration=migration,
                action=action,
                actor=actor,
                at=at,
                reason=reason,
                before=before,
                after=after,
                version=version,
            )
        )

    def list_audit(self, migration: str, *, limit: int = 100) -> list[AuditEntry]:
        rows = self.conn.execute(
            sa.select(t.audit_log)
            .where(t.audit_log.c.migration == migration)
            .order_by(t.audit_log.c.id.desc())
            .limit(limit)
        )
        return [
            AuditEntry(
                id=r.id,
                migration=r.migration,
                action=r.action,
                actor=r.actor,
                at=_utc(r.at),  # type: ignore[arg-type]
                reason=r.reason,
                before=r.before,
                after=r.after,
                version=r.version,
            )
            for r in rows
        ]

    # known tenants ------------------------------------------------------------------

    def add_known_tenants(self, migration: str, tenants: Sequence[str], at: datetime) -> int:
        existing = set(self.known_tenants(migration))
        new = [x for x in dict.fromkeys(tenants) if x not in existing]
        if new:
            self.conn.execute(
                t.known_tenants.insert(),
                [{"migration": migration, "tenant": x, "added_at": at} for x in new],
            )
        return len(new)

    def known_tenants(self, migration: str) -> list[str]:
        return list(
            self.conn.execute(
                sa.select(t.known_tenants.c.tenant)
                .where(t.known_tenants.c.migration == migration)
                .order_by(t.known_tenants.c.tenant)
            ).scalars()
        )

    # tokens -------------------------------------------------------------------------

    def insert_token(self, record: TokenRecord) -> None:
        exists = self.conn.execute(
            sa.select(t.tokens.c.name).where(t.tokens.c.name == record.name)
        ).first()
        if exists is not None:
            raise ConflictError(
                f"a token named {record.name!r} already exists; choose another name "
                "or revoke it first with 'switchover token revoke'",
                field="name",
            )
        self.conn.execute(
            t.tokens.insert().values(
                name=record.name,
                role=record.role,
                token_hash=record.token_hash,
                created_at=record.created_at,
                created_by=record.created_by,
                revoked_at=None,
            )
        )

    def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        row = self.conn.execute(
            sa.select(t.tokens).where(t.tokens.c.token_hash == token_hash)
        ).first()
        return _token(row) if row is not None else None

    def list_tokens(self) -> list[TokenRecord]:
        rows = self.conn.execute(sa.select(t.tokens).order_by(t.tokens.c.name))
        return [_token(r) for r in rows]

    def revoke_token(self, name: str, at: datetime) -> None:
        result = self.conn.execute(
            t.tokens.update()
            .where(t.tokens.c.name == name)
            .where(t.tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        if result.rowcount != 1:
            raise NotFoundError(f"no active token named {name!r}", field="name")

    # rollups ------------------------------------------------------------------------

    def insert_rollups(self, items: Sequence[tuple[RollupKey, Rollup]]) -> None:
        """Append partial rollups; readers merge them, so writers never overwrite."""
        if not items:
            return
        self.conn.execute(
            t.rollups.insert(),
            [
                {
                    "minute": key.minute,
                    "migration": key.migration,
                    "operation": key.operation,
                    "side": key.side,
                    "count": r.count,
                    "errors": r.errors,
                    "fallbacks": r.fallbacks,
                    "data": r.to_dict(),
                }
                for key, r in items
            ],
        )

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
        query = (
            sa.select(
                t.rollups.c.minute,
                t.rollups.c.migration,
                t.rollups.c.operation,
                t.rollups.c.side,
                t.rollups.c.data,
            )
            .where(t.rollups.c.migration == migration)
            .where(t.rollups.c.minute >= since_minute)
            .where(t.rollups.c.minute < until_minute)
            .order_by(t.rollups.c.minute, t.rollups.c.id)
        )
        if operation is not None:
            query = query.where(t.rollups.c.operation == operation)
        if max_id is not None:
            query = query.where(t.rollups.c.id <= max_id)
        return [_stored_rollup(r) for r in self.conn.execute(query)]

    def rollup_parts(
        self, migration: str, since_minute: int, until_minute: int, *, max_id: int
    ) -> Iterator[RollupParts]:
        """What a chart reads of the rollups with ``since_minute <= minute <
        until_minute`` and ``id <= max_id``: counts, outcomes and the latency sketch,
        without tenants and error types, which are most of a row's JSON. Rows are
        decoded as they are iterated (inside the transaction), so a caller that merges
        and drops them never holds many: the dashboard's first load of 7 days is about
        2.5 times faster this way than through :meth:`rollups`."""
        c = t.rollups.c
        query = (
            sa.select(
                c.minute,
                c.migration,
                c.operation,
                c.side,
                c.count,
                c.errors,
                c.fallbacks,
                c.data["outcomes"].label("outcomes"),
                c.data["sketch"].label("sketch"),
            )
            .where(c.migration == migration)
            .where(c.minute >= since_minute)
            .where(c.minute < until_minute)
            .where(c.id <= max_id)
        )
        for r in self.conn.execute(query):
            yield RollupParts(
                RollupKey(int(r.minute), r.migration, r.operation, r.side),
                int(r.count),
                int(r.errors),
                int(r.fallbacks),
                r.outcomes or {},
                r.sketch or {},
            )

    def max_rollup_id(self) -> int:
        return int(self.conn.execute(sa.select(sa.func.max(t.rollups.c.id))).scalar() or 0)

    def rollups_after(self, last_id: int, *, limit: int = 5000) -> list[tuple[int, StoredRollup]]:
        """Rollup rows appended after ``last_id``, oldest first: an incremental feed."""
        rows = self.conn.execute(
            sa.select(
                t.rollups.c.id,
                t.rollups.c.minute,
                t.rollups.c.migration,
                t.rollups.c.operation,
                t.rollups.c.side,
                t.rollups.c.data,
            )
            .where(t.rollups.c.id > last_id)
            .order_by(t.rollups.c.id)
            .limit(limit)
        )
        return [(int(r.id), _stored_rollup(r)) for r in rows]

    def prune_rollups(self, before_minute: int) -> int:
        result = self.conn.execute(t.rollups.delete().where(t.rollups.c.minute < before_minute))
        return int(result.rowcount or 0)

    def add_shadow_samples(
        self, samples: Sequence[dict[str, Any]], *, keep_per_migration: int
    ) -> None:
        if not samples:
            return
        self.conn.execute(t.shadow_samples.insert(), list(samples))
        for migration in {s["migration"] for s in samples}:
            cutoff = self.conn.execute(
                sa.select(t.shadow_samples.c.id)
                .where(t.shadow_samples.c.migration == migration)
                .order_by(t.shadow_samples.c.id.desc())
                .offset(keep_per_migration)
                .limit(1)
            ).scalar()
            if cutoff is not None:
                self.conn.execute(
                    t.shadow_samples.delete()
                    .where(t.shadow_samples.c.migration == migration)
                    .where(t.shadow_samples.c.id <= cutoff)
                )

    def shadow_samples(self, migration: str, *, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            sa.select(t.shadow_samples)
            .where(t.shadow_samples.c.migration == migration)
            .order_by(t.shadow_samples.c.id.desc())
            .limit(limit)
        )
        return [
            {
                "migration": r.migration,
                "operation": r.operation,
                "at": _utc(r.at).isoformat(),  # type: ignore[union-attr]
                "kind": r.kind,
                **r.sample,
            }
            for r in rows
        ]

    # change feed --------------------------------------------------------------------

    def store_version(self) -> int:
        return int(
            self.conn.execute(
                sa.select(t.store_version.c.version).where(t.store_version.c.id == 1)
            ).scalar_one()
        )

    def bump_store_version(self) -> int:
        self.conn.execute(
            t.store_version.update()
            .where(t.store_version.c.id == 1)
            .values(version=t.store_version.c.version + 1)
        )
        version = self.store_version()
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(
                sa.text("SELECT pg_notify(:channel, :payload)"),
                {"channel": NOTIFY_CHANNEL, "payload": str(version)},
            )
        return version


def _stored_rollup(row: Any) -> StoredRollup:
    return StoredRollup(
        RollupKey(int(row.minute), row.migration, row.operation, row.side),
        Rollup.from_dict(row.data),
    )


def _token(row: Any) -> TokenRecord:
    return TokenRecord(
        name=row.name,
        role=row.role,
        token_hash=row.token_hash,
        created_at=_utc(row.created_at),  # type: ignore[arg-type]
        created_by=row.created_by,
        revoked_at=_utc(row.revoked_at),
    )


@contextmanager
def _translated() -> Iterator[None]:
    """Driver errors that mean "the store is not there (or not set up)" become StoreError."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        raise _store_error(exc) from exc
    except sa.exc.ProgrammingError as exc:
        if _is_missing_schema(exc):
            raise _store_error(exc) from exc
        raise


class Store:
    """Opens transactions on one engine and translates driver errors."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str) -> Store:
        return cls(create_store_engine(url))

    @property
    def is_postgres(self) -> bool:
        return is_postgres(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A unit of work: committed when the block ends cleanly, rolled back otherwise."""
        with _translated():
            try:
                with self.engine.begin() as conn:
                    yield Tx(conn)
            except sa.exc.IntegrityError as exc:
                raise ConflictError(
                    "the change conflicts with what is stored (a duplicate or a broken "
                    "constraint); read the current state and retry"
                ) from exc

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with _translated(), self.engine.connect() as conn:
            yield Tx(conn)

    def snapshot(self) -> tuple[int, list[Migration]]:
        """Every migration and the store version they belong to, read consistently."""
        with self.transaction() as tx:
            return tx.store_version(), tx.list_migrations()

    def store_version(self) -> int:
        with self.read() as tx:
            return tx.store_version()

    def dispose(self) -> None:
        self.engine.dispose()

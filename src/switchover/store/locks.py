"""Exclusive work across processes: one controller leader, one data-migration run.

On PostgreSQL the lock is a session advisory lock held on a connection of its own:
it disappears with the process (or its connection), so a crashed holder never blocks
anyone. A row in ``locks`` says who holds it, for error messages. SQLite has no
advisory locks, so the row itself is the lock: a lease that the holder renews and
that others may take once it has expired.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from switchover.core.clock import Clock, SystemClock
from switchover.errors import ConflictError, LockHeldError
from switchover.store import tables as t
from switchover.store.records import utc as _utc


class Store(Protocol):
    """What a lock needs of the store: its engine (and the repository builds locks, so
    importing it here would be a cycle)."""

    engine: Engine


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_try_advisory_lock``."""
    digest = hashlib.blake2b(f"switchover:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_PID_AT_HOST = re.compile(r"pid=(\d+)@(\S+)$")


def local_holder(label: str) -> str:
    """``label pid=PID@HOST``: a holder that a later process on this host can tell is dead."""
    return f"{label} pid={os.getpid()}@{socket.gethostname()}"


def _dead_here(holder: str) -> bool:
    m = _PID_AT_HOST.search(holder)
    if m is None or m.group(2) != socket.gethostname():
        return False
    try:
        os.kill(int(m.group(1)), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


class NamedLock:
    def __init__(
        self,
        store: Store,
        name: str,
        holder: str,
        *,
        ttl: float = 30.0,
        clock: Clock | None = None,
        table: sa.Table = t.locks,
    ) -> None:
        self.table = table
        self.store = store
        self.name = name
        self.holder = holder
        self.ttl = ttl
        self.clock = clock or SystemClock()
        self._conn: Connection | None = None
        self.held = False

    # public -----------------------------------------------------------------------

    def acquire(self) -> bool:
        """Take the lock if it is free (or already ours); never waits."""
        if self.held:
            return self.renew()
        if not self.store.is_postgres:
            self._break_dead_local_holder()
        ok = self._acquire_pg() if self.store.is_postgres else self._lease(insert=True)
        self.held = ok
        return ok

    def renew(self) -> bool:
        """Still ours? On PostgreSQL: is our connection alive; on SQLite: extend the lease."""
        if not self.held:
            return False
        if self.store.is_postgres:
            try:
                assert self._conn is not None
                self._conn.execute(sa.text("SELECT 1"))
            except Exception:
                self._drop_connection()
                self.held = False
                return False
            with contextlib.suppress(Exception):
                self._write_row()  # informational: the advisory lock is what counts
            return True
        self.held = self._lease(insert=False)
        return self.held

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        with contextlib.suppress(Exception), self.store.transaction() as tx:
            tx.conn.execute(
                self.table.delete()
                .where(self.table.c.name == self.name)
                .where(self.table.c.holder == self.holder)
            )
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.execute(
                    sa.text("SELECT pg_advisory_unlock(:k)"), {"k": advisory_key(self.name)}
                )
            self._drop_connection()

    def holder_info(self) -> dict[str, Any] | None:
        with self.store.read() as tx:
            row = tx.conn.execute(
                sa.select(self.table).where(self.table.c.name == self.name)
            ).first()
        if row is None:
            return None
        return {
            "holder": row.holder,
            "acquired_at": _utc(row.acquired_at).isoformat(),  # type: ignore[union-attr]
            "expires_at": _utc(row.expires_at).isoformat(),  # type: ignore[union-attr]
        }

    def require(self, what: str) -> None:
        """Acquire or raise :class:`LockHeldError` naming who holds it."""
        if self.acquire():
            return
        info = self.holder_info()
        who = f"{info['holder']} (since {info['acquired_at']})" if info else "another process"
        raise LockHeldError(f"{what} is already running: the lock {self.name!r} is held by {who}")

    def __enter__(self) -> NamedLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # PostgreSQL ---------------------------------------------------------------------

    def _acquire_pg(self) -> bool:
        conn = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            # A holder renews (SELECT 1) far more often than ``ttl``. If it stops, because
            # it hangs or a network in between stalls, PostgreSQL ends its session after
            # ``ttl`` idle and the advisory lock goes with it: a standby takes over, and the
            # stalled holder's next statement fails, so it never acts as leader again.
            conn.execute(sa.text(f"SET idle_session_timeout = {int(self.ttl * 1000)}"))
            got = conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": advisory_key(self.name)}
            ).scalar()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        try:
            self._write_row()
        except Exception:
            # the row only says who holds it; without it, do not keep the lock either
            self.held = True
            self.release()
            raise
        return True

    def _write_row(self) -> None:
        now = self.clock.now()
        with self.store.transaction() as tx:
            updated = tx.conn.execute(
                self.table.update()
                .where(self.table.c.name == self.name)
                .values(holder=self.holder, expires_at=now + timedelta(seconds=self.ttl))
            ).rowcount
            if updated == 0:
                tx.conn.execute(
                    self.table.insert().values(
                        name=self.name,
                        holder=self.holder,
                        acquired_at=now,
                        expires_at=now + timedelta(seconds=self.ttl),
                    )
                )

    def _drop_connection(self) -> None:
        """Close our lock connection for good: a pooled one would keep the lock alive."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.invalidate()
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    # SQLite lease --------------------------------------------------------------------

    def _break_dead_local_holder(self) -> None:
        """A lease whose holder was killed on this very host need not wait out its expiry."""
        info = self.holder_info()
        if info is None or info["holder"] == self.holder or not _dead_here(info["holder"]):
            return
        with contextlib.suppress(ConflictError), self.store.transaction() as tx:
            tx.conn.execute(
                self.table.delete()
                .where(self.table.c.name == self.name)
                .where(self.table.c.holder == info["holder"])
            )

    def _lease(self, *, insert: bool) -> bool:
        now: datetime = self.clock.now()
        expires = now + timedelta(seconds=self.ttl)
        try:
            with self.store.transaction() as tx:
                taken = tx.conn.execute(
                    self.table.update()
                    .where(self.table.c.name == self.name)
                    .where(
                        sa.or_(self.table.c.holder == self.holder, self.table.c.expires_at < now)
                    )
                    .values(
                        holder=self.holder,
                        expires_at=expires,
                        acquired_at=sa.case(
                            (self.table.c.holder == self.holder, self.table.c.acquired_at),
                            else_=now,
                        ),
                    )
                ).rowcount
                if taken:
                    return True
                if not insert:
                    return False
                exists = tx.conn.execute(
                    sa.select(self.table.c.name).where(self.table.c.name == self.name)
                ).first()
                if exists is not None:
                    return False
                tx.conn.execute(
                    self.table.insert().values(
                        name=self.name, holder=self.holder, acquired_at=now, expires_at=expires
                    )
                )
                return True
        except ConflictError:
            return False

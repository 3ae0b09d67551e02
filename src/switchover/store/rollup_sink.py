"""The recorder's sink into the store: append partial rollups, prune past the retention.

A flush is one transaction. A batch with an idempotency key (:class:`~switchover.core.rollup.Batch`)
stores the key in it too, so a retried batch whose first write did commit is not
counted twice. A row the store refuses (a value too long or too large for its column,
a number JSON cannot hold) is skipped, row by row inside savepoints, and reported in
the :class:`~switchover.core.rollup.WriteReport`: it never blocks the rest of the batch,
nor later flushes. A store that cannot be reached still fails the whole write, so that
the recorder keeps the batch and tries again.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import sqlalchemy as sa

from switchover.core.rollup import Rollup, RollupKey, WriteReport, batch_key
from switchover.store import ingest_keys, rollup_hours
from switchover.store.repository import Store

DEFAULT_RETENTION_DAYS = 7.0
DEFAULT_KEEP_SAMPLES = 200
PRUNE_EVERY_SECONDS = 3600.0

log = logging.getLogger("switchover.store")

T = TypeVar("T")


class StoreSink:
    """Appends partial rollups; prunes those older than the retention once an hour."""

    def __init__(
        self,
        store: Store,
        *,
        retention_days: float = DEFAULT_RETENTION_DAYS,
        keep_samples: int = DEFAULT_KEEP_SAMPLES,
        time_fn: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.retention_days = retention_days
        self.keep_samples = keep_samples
        self._time = time_fn
        self._last_prune: float | None = None

    def write(
        self, rollups: Sequence[tuple[RollupKey, Rollup]], samples: Sequence[dict[str, Any]]
    ) -> WriteReport | None:
        """Store the batch; None when all of it was stored, else what was not and why."""
        now = self._time()
        key = batch_key(rollups)
        refused_samples = 0
        reasons: list[str] = []
        rows: list[dict[str, Any]] = []
        for sample in samples:
            try:
                rows.append(sample_row(sample, now))
            except (KeyError, TypeError, ValueError, OverflowError, OSError) as exc:
                refused_samples += 1
                if not reasons:
                    reasons.append(
                        f"a sample without migration and operation or a good at ({exc!r:.80})"
                    )
        refused: list[tuple[RollupKey, Rollup]] = []
        replay = False
        with self.store.transaction() as tx:
            if key is not None:
                replay = (
                    ingest_keys.claim(tx, "rollups", key, len(rollups), utc_at(now)) is not None
                )
            if not replay:
                refused, reason = _each_or_skip(tx, list(rollups), tx.insert_rollups)
                reasons += [reason] if reason else []
                bad_rows, reason = _each_or_skip(tx, rows, partial(_add_samples, tx, self))
                refused_samples += len(bad_rows)
                reasons += [reason] if reason else []
            due = self._prune_due(now)
            if due:
                tx.prune_rollups(retention_cutoff(now, self.retention_days))
                ingest_keys.prune(tx, now)
        if due:
            self._last_prune = now
            self.settle_hours(now)
        if refused or refused_samples:
            log.warning(
                "switchover: the store refused %d rollup(s) (%d calls: %s) and %d sample(s) "
                "of a flush and kept the rest: %s",
                len(refused),
                sum(r.count for _, r in refused),
                ", ".join(f"{k.migration}/{k.operation[:63]}/{k.side}" for k, _ in refused[:5])
                or "-",
                refused_samples,
                "; ".join(reasons),
            )
        if not (refused or refused_samples or replay):
            return None
        return WriteReport(
            refused=tuple(refused),
            refused_samples=refused_samples,
            reason="; ".join(reasons) or None,
            replay=replay,
        )

    def prune_if_due(self) -> None:
        """Drop rollups past the retention, at most once every PRUNE_EVERY_SECONDS."""
        now = self._time()
        if self._prune_due(now):
            with self.store.transaction() as tx:
                tx.prune_rollups(retention_cutoff(now, self.retention_days))
                ingest_keys.prune(tx, now)
            self._last_prune = now
            self.settle_hours(now)

    def settle_hours(self, now: float) -> None:
        """Merge the settled minutes into hourly and five-minute rows for long charts, and
        drop those past their own retention (:mod:`switchover.store.rollup_hours`). A
        failure is logged: it never costs a flush."""
        try:
            rollup_hours.settle_all(self.store, int(now // 60))
            with self.store.transaction() as tx:
                for level in rollup_hours.LEVELS:
                    rollup_hours.prune(tx.conn, retention_cutoff(now, level.retention_days), level)
        except sa.exc.SQLAlchemyError as exc:
            log.warning("switchover: hourly rollups not settled this time: %s", _describe(exc))

    def _prune_due(self, now: float) -> bool:
        return self._last_prune is None or now - self._last_prune >= PRUNE_EVERY_SECONDS


def _add_samples(tx: Any, sink: StoreSink, rows: list[dict[str, Any]]) -> None:
    tx.add_shadow_samples(rows, keep_per_migration=sink.keep_samples)


def retention_cutoff(now: float, retention_days: float) -> int:
    """The first minute still kept."""
    return int((now - retention_days * 86400) // 60)


def utc_at(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def refused_by_the_store(exc: BaseException) -> bool:
    """Whether the store refused the rows themselves (a value it cannot keep), rather than
    being unreachable or broken: only then are rows skipped."""
    if isinstance(exc, sa.exc.DBAPIError):
        return isinstance(exc, sa.exc.DataError | sa.exc.IntegrityError)
    return isinstance(exc, sa.exc.StatementError | OverflowError | ValueError | TypeError)


@contextlib.contextmanager
def savepoint(tx: Any) -> Iterator[None]:
    """A savepoint in ``tx`` on a SQL store (undone when the block raises)."""
    conn = getattr(tx, "conn", None)
    if conn is None:
        yield
        return
    with conn.begin_nested():
        yield


def _describe(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0][:200] if str(orig).strip() else ""
    return f"{type(orig).__name__}: {text}" if text else type(orig).__name__


def _each_or_skip(
    tx: Any, items: list[T], write: Callable[[list[T]], None]
) -> tuple[list[T], str | None]:
    """Write ``items`` at once; if the store refuses a row, again one by one, skipping the
    ones it refuses. The refused items, and the first reason."""
    if not items:
        return [], None
    try:
        with savepoint(tx):
            write(items)
        return [], None
    except Exception as exc:
        if not refused_by_the_store(exc) or getattr(tx, "conn", None) is None:
            raise  # unreachable, or no savepoints to retry row by row in
    refused: list[T] = []
    reason: str | None = None
    for item in items:
        try:
            with savepoint(tx):
                write([item])
        except Exception as exc:
            if not refused_by_the_store(exc):
                raise
            refused.append(item)
            reason = reason or _describe(exc)
    return refused, reason


def sample_row(sample: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A shadow sample as the store keeps it: its key fields in columns, the rest as JSON."""
    body = {k: v for k, v in sample.items() if k not in ("migration", "operation", "kind", "at")}
    return {
        "migration": sample["migration"],
        "operation": sample["operation"],
        "kind": sample.get("kind", "mismatch"),
        "at": datetime.fromtimestamp(sample.get("at", now), UTC),
        "sample": body,
    }

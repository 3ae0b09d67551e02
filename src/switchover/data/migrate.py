"""A data migration run: seed 003 §3.2's steps, in batches, resumable after a crash.

Steps: ``backup`` → ``validate`` (v1) → ``transform`` → ``catchup`` → ``outcomes`` →
``metrics`` → ``verify`` → ``enable`` (optional) → ``done``.

Each batch commits together with the run's checkpoint (step, last key, counts), so a
run killed at any point resumes from the last committed batch with exact counts: the
batch that was in flight rolled back as a whole. Every step also selects only the rows
still to do (configs not on v2, calls without a canonical outcome, v2 configs without
metrics), so running again, or resuming from an older checkpoint, changes nothing that
is already done. One run at a time holds the data-migration lock (an advisory lock on
PostgreSQL, a lease row on SQLite) and a second is refused with the holder's run id.

The tables are read as they are declared (:mod:`switchover.data.layout`): any key type,
joins on the declared foreign keys, v2 values written as each column's type takes them.
Before anything is written, and in the dry run alike, :meth:`Migrator.preflight`
checks the columns and their types, that the lock is free, that no earlier run was
left unfinished (a new run would back up its half-migrated rows: finish it with
``--resume RUN`` or undo it with ``--abandon RUN``), the v1 rows, and the transform on
one row. On PostgreSQL each batch reads its rows ``FOR UPDATE`` and writes them with
one set-based ``UPDATE … FROM unnest(…)`` (:mod:`switchover.data.bulk`): a legacy
write to a row's v1 columns waits for the batch that holds the row instead of slipping
in between its read and its write, and the ``catchup`` step migrates again the rows
such a write changed after their batch.
"""

from __future__ import annotations

import importlib
import math
import operator
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.engine import Connection

from switchover.core.clock import Clock
from switchover.core.outcomes import OUTCOMES, infer_outcome, p95
from switchover.core.transform import V1_FIELDS, V2_FIELDS, Transform, check_v2, to_v2
from switchover.data import backup as backups
from switchover.data import bulk
from switchover.data import layout as lay
from switchover.data import reflect as r
from switchover.data import schema as s
from switchover.data.checks import Checker, Report
from switchover.data.source import Progress, Scope, Source, no_progress
from switchover.errors import (
    ConflictError,
    DataCheckError,
    NotFoundError,
    SwitchoverError,
    ValidationError,
)
from switchover.store.locks import NamedLock, local_holder

STEPS = (
    "backup", "validate", "transform", "catchup", "outcomes", "metrics", "verify", "enable",
    "done",
)  # fmt: skip
LOCK_NAME = backups.LOCK_NAME
MAX_BATCH = 10_000
RENEW_EVERY = 10.0
"""Seconds between renewals of the run's lock (its lease lasts 300 s)."""


def eligible(layout: lay.Layout, alias: str = "voice_agent_configs") -> str:
    return layout.eligible(alias)


_NOT_V2 = "schema_version IS NULL OR schema_version <> 'v2'"
_CANONICAL = ", ".join(f"'{o}'" for o in OUTCOMES)
_NEEDS_OUTCOME = f"outcome IS NULL OR outcome NOT IN ({_CANONICAL})"


@dataclass
class MigrateOptions:
    batch_size: int = 100
    tenant_ids: list[str] | None = None
    skip_backup: bool = False
    skip_invalid: bool = False
    transform: str | None = None
    throttle_ms: int = 0
    enable_rollout: str | None = None
    initial_percentage: int = 5

    def check(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ValidationError(
                f"--batch-size must be between 1 and {MAX_BATCH}, not {self.batch_size}",
                field="batch_size",
            )
        if self.throttle_ms < 0:
            raise ValidationError("--throttle-ms must be 0 or more", field="throttle_ms")
        if not 0 <= self.initial_percentage <= 100:
            raise ValidationError(
                "--initial-percentage must be between 0 and 100", field="initial_percentage"
            )
        load_transform(self.transform)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Counts:
    configs_migrated: int = 0
    configs_skipped: int = 0
    calls_updated: int = 0
    metrics_generated: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class Preview:
    configs_to_migrate: int
    calls_to_update: int
    metrics_to_generate: int
    invalid_configs: int
    validation: Report
    samples: list[dict[str, Any]] = field(default_factory=list)
    columns_to_add: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": True,
            "configs_to_migrate": self.configs_to_migrate,
            "calls_to_update": self.calls_to_update,
            "metrics_to_generate": self.metrics_to_generate,
            "invalid_configs": self.invalid_configs,
            "validation": self.validation.to_dict(),
            "samples": self.samples,
            "columns_to_add": self.columns_to_add,
        }


@dataclass
class RunRecord:
    id: str
    status: str
    step: str
    cursor: str | None
    counts: Counts
    options: MigrateOptions
    backup_id: str | None
    holder: str | None
    error: str | None
    started_at: str
    updated_at: str
    finished_at: str | None
    verification: dict[str, Any] | None = None
    rollout: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["counts"] = self.counts.to_dict()
        d["options"] = self.options.to_dict()
        return d


def load_transform(path: str | None) -> Transform:
    """``None`` → the built-in v1→v2 transform; else ``package.module:function`` or
    ``package.module.function``."""
    if not path:
        return to_v2
    mod_name, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    if not mod_name or not attr:
        raise ValidationError(
            f"--transform {path!r} is not a dotted path: write package.module:function",
            field="transform",
        )
    try:
        fn = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValidationError(
            f"--transform {path!r} cannot be imported ({type(exc).__name__}): check the module "
            "is on PYTHONPATH and defines the function",
            field="transform",
        ) from None
    if not callable(fn):
        raise ValidationError(f"--transform {path!r} is not a function", field="transform")
    return fn  # type: ignore[no-any-return]


def _run_from_row(row: tuple[Any, ...]) -> RunRecord:
    (
        rid,
        status,
        step,
        cursor,
        counts,
        options,
        backup_id,
        holder,
        error,
        started,
        updated,
        finished,
    ) = row
    return RunRecord(
        id=rid,
        status=status,
        step=step,
        cursor=cursor,
        counts=Counts(**orjson.loads(counts)),
        options=MigrateOptions(**orjson.loads(options)),
        backup_id=backup_id,
        holder=holder,
        error=error,
        started_at=started,
        updated_at=updated,
        finished_at=finished,
    )


_RUN_COLS = (
    "id, status, step, cursor, counts, options, backup_id, holder, error, started_at, "
    "updated_at, finished_at"
)


def list_runs(source: Source, limit: int = 50) -> list[RunRecord]:
    if not source.has(s.runs):
        return []
    with source.connect() as conn:
        rows = source.fetch(
            conn,
            f"SELECT {_RUN_COLS} FROM {s.runs.name} ORDER BY started_at DESC, id DESC "
            f"LIMIT {int(limit)}",
        )
    return [_run_from_row(row) for row in rows]


def get_run(source: Source, run_id: str) -> RunRecord:
    if source.has(s.runs):
        with source.connect() as conn:
            rows = source.fetch(
                conn, f"SELECT {_RUN_COLS} FROM {s.runs.name} WHERE id = ?", (run_id,)
            )
        if rows:
            return _run_from_row(rows[0])
    raise NotFoundError(
        f"no data migration run {run_id!r} in {source.where}: list them with "
        "`switchover data runs`",
        field="resume",
    )


EnableRollout = Callable[[str, int, str], dict[str, Any]]
"""``enable(migration_name, percentage, run_id)``: switch the rollout on (the CLI passes
the rollout service's, so this layer needs no store of its own)."""

UNFINISHED = ("running", "failed")
_PLANNED = {
    "transform": (s.configs.name, s.tenants.name),
    "outcomes": (s.calls.name,),
    "metrics": (s.configs.name, s.metrics.name, s.calls.name),
}
"""The tables each step's queries need fresh planner statistics of."""
_WRITES = {
    "transform": (s.configs.name,),
    "catchup": (s.configs.name,),
    "outcomes": (s.calls.name,),
    "metrics": (s.metrics.name,),
}
"""The tables each step writes: their statistics go stale while it runs."""


def _ahead(step: str) -> tuple[str, ...]:
    """The tables the next step with :data:`_PLANNED` tables needs statistics of that
    no step until then writes: they can be analyzed while ``step`` runs."""
    after = STEPS[STEPS.index(step) + 1 :]
    nxt = next((n for n in after if n in _PLANNED), None)
    if nxt is None:
        return ()
    written = {t for n in (step, *after[: after.index(nxt)]) for t in _WRITES.get(n, ())}
    return tuple(t for t in _PLANNED[nxt] if t not in written)


def unfinished_runs(source: Source) -> list[RunRecord]:
    return [r for r in list_runs(source, limit=500) if r.status in UNFINISHED]


class Migrator:
    def __init__(
        self,
        source: Source,
        clock: Clock,
        *,
        progress: Progress = no_progress,
        enable: EnableRollout | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.source = source
        self.clock = clock
        self.progress = progress
        self.enable = enable
        self.log = log or (lambda _msg: None)
        self._verification: dict[str, Any] | None = None
        self._rollout: dict[str, Any] | None = None
        self._layout: lay.Layout | None = None
        self._xids: set[str] = set()
        """The transactions of this process's transform batches (PostgreSQL)."""
        self._renewed = time.monotonic()
        self._analyzing: Future[None] | None = None
        self._fresh: set[str] = set()
        """Tables this process analyzed that no step has written since (the server's
        own modification counts reach its statistics views up to a second late)."""

    # pre-flight ------------------------------------------------------------------------

    @property
    def layout(self) -> lay.Layout:
        if self._layout is None:
            with self.source.connect() as conn:
                self._layout = lay.load(conn)
        return self._layout

    def preflight(self, options: MigrateOptions) -> lay.Layout:
        """What the real run checks before writing, in the order a user fixes them:
        options, tables, columns and types, the lock, unfinished runs."""
        options.check()
        src = self.source
        src.require(s.tenants, s.configs, s.calls, s.metrics)
        self._layout = None
        layout = self.layout
        if src.has(s.data_locks):
            self._lock("pre-flight check", ensure=False).release()
        self._refuse_unfinished()
        return layout

    def _refuse_unfinished(self) -> None:
        left = unfinished_runs(self.source)
        if not left:
            return
        run = left[0]
        undo = (
            f"undo it with `switchover data migrate --abandon {run.id}` (restores its "
            f"backup {run.backup_id})"
            if run.backup_id
            else f"or mark it abandoned with `switchover data migrate --abandon {run.id}` (it "
            "has no backup: its changes stay)"
        )
        raise ConflictError(
            f"run {run.id} did not finish ({run.status} at step {run.step}"
            + (f": {run.error}" if run.error else "")
            + "); a new run would back up its half-migrated rows. Finish it with "
            f"`switchover data migrate --resume {run.id}`, or {undo}",
            field="resume",
        )

    # dry run ---------------------------------------------------------------------------

    def preview(
        self,
        options: MigrateOptions,
        *,
        samples: int = 3,
        checks: tuple[str, ...] = (
            "data_integrity",
            "foreign_keys",
            "duplicates",
            "value_constraints",
        ),
    ) -> Preview:
        """Every pre-flight check of the real run, counts, the v1 checks and
        before/after samples; writes nothing."""
        layout = self.preflight(options)
        src = self.source
        scope = Scope(options.tenant_ids)
        fn = load_transform(options.transform)
        now = self._now_iso()
        ok = eligible(layout)
        with src.connect() as conn:
            todo_where, params = scope.join(_NOT_V2)
            to_migrate, invalid = src.fetch(
                conn,
                f"SELECT COUNT(CASE WHEN {ok} THEN 1 END), COUNT(CASE WHEN NOT ({ok}) THEN 1 END) "
                f"FROM voice_agent_configs WHERE {todo_where}",
                params,
            )[0]
            cw, cp = scope.join(_NEEDS_OUTCOME)
            calls = src.scalar(conn, f"SELECT COUNT(*) FROM voice_agent_calls WHERE {cw}", cp)
            mw, mp = scope.join(
                "NOT EXISTS (SELECT 1 FROM voice_agent_metrics m WHERE "
                f"m.{r.quote(layout.metrics_ref)} = c.{r.quote(layout.configs.key)})",
                f"c.schema_version = 'v2' OR ({eligible(layout, 'c')})",
                column="c.tenant_id",
            )
            metrics = src.scalar(conn, f"SELECT COUNT(*) FROM voice_agent_configs c WHERE {mw}", mp)
            rows = src.fetch(
                conn,
                f"SELECT {_v1_columns(layout)} FROM voice_agent_configs WHERE {todo_where} "
                f"AND {ok} ORDER BY {r.quote(layout.configs.key)} LIMIT {max(0, int(samples))}",
                params,
            )
        sample = []
        for row in rows:
            before = dict(zip(V1_FIELDS, row, strict=True))
            after = self._apply(fn, before, now)
            sample.append(
                {"id": str(before["id"]), "before": _short(before), "after": _short(after)}
            )
        report = Checker(src, scope).run(checks) if checks else Report([])
        return Preview(to_migrate, calls, metrics, invalid, report, sample, list(layout.missing_v2))

    # run -------------------------------------------------------------------------------

    def migrate(self, options: MigrateOptions) -> RunRecord:
        src = self.source
        # read-only: every pre-flight check, counts, the transform on one row, and the
        # critical v1 checks unless --skip-invalid, which leaves failing rows on v1 (the
        # transform selects eligible rows only and the verify step reports the rest)
        todo = self.preview(
            options,
            samples=1,
            checks=() if options.skip_invalid else ("data_integrity", "foreign_keys"),
        )
        if not (todo.configs_to_migrate or todo.calls_to_update or todo.metrics_to_generate):
            return self._up_to_date(options, todo)
        if not options.skip_invalid:
            _refuse_invalid(todo.validation)
        src.ensure_own()
        run_id = self._now().strftime("run_%Y%m%d_%H%M%S_") + secrets.token_hex(2)
        lock = self._lock(run_id)
        try:
            self._refuse_unfinished()  # again, under the lock: no run can slip in between
            added = src.ensure_v2_columns()
            if added:
                self.log(f"added v2 columns to voice_agent_configs: {', '.join(added)}")
                self._layout = None
            now = self._now_iso()
            with src.begin() as conn:
                src.execute(
                    conn,
                    f"INSERT INTO {s.runs.name} ({_RUN_COLS}) VALUES "
                    "(?, 'running', ?, NULL, ?, ?, NULL, ?, NULL, ?, ?, NULL)",
                    (
                        run_id,
                        "validate" if options.skip_backup else "backup",
                        orjson.dumps(Counts().to_dict()).decode(),
                        orjson.dumps(options.to_dict()).decode(),
                        lock.holder,
                        now,
                        now,
                    ),
                )
            self.log(f"run {run_id} started")
            return self._drive(run_id, lock)
        finally:
            lock.release()

    def resume(self, run_id: str) -> RunRecord:
        src = self.source
        run = get_run(src, run_id)
        if run.status == "completed":
            return run
        if run.status == "abandoned":
            raise ConflictError(
                f"run {run_id} was abandoned (its backup restored): start a new one with "
                "`switchover data migrate`",
                field="resume",
            )
        run.options.check()
        lock = self._lock(run_id)
        try:
            with src.begin() as conn:
                src.execute(
                    conn,
                    f"UPDATE {s.runs.name} SET status = 'running', error = NULL, holder = ?, "
                    "updated_at = ? WHERE id = ?",
                    (lock.holder, self._now_iso(), run_id),
                )
            self.log(f"run {run_id} resumed at step {run.step}")
            return self._drive(run_id, lock)
        finally:
            lock.release()

    def abandon(self, run_id: str, *, progress: Progress = no_progress) -> dict[str, Any]:
        """Undo an unfinished run: restore its backup and mark it ``abandoned``, in one
        transaction under the lock. A run without a backup is only marked."""
        src = self.source
        run = get_run(src, run_id)
        if run.status not in UNFINISHED:
            how = (
                "undo a finished run with `switchover rollback NAME --level data "
                f"--backup-id {run.backup_id}`"
                if run.status == "completed"
                else "there is nothing left to undo"
            )
            raise ConflictError(f"run {run_id} is {run.status}: {how}", field="abandon")
        now = self._now_iso()
        mark = (
            f"UPDATE {s.runs.name} SET status = 'abandoned', finished_at = ?, updated_at = ? "
            "WHERE id = ?"
        )
        if run.backup_id is None:
            lock = self._lock(f"abandon of {run_id}")
            try:
                with src.begin() as conn:
                    src.execute(conn, mark, (now, now, run_id))
            finally:
                lock.release()
            return {"run": run_id, "backup_id": None, "restored": None}
        with backups.prepared(src, run.backup_id, holder=f"abandon of {run_id}") as restoration:
            result = restoration.run(
                progress, then=lambda conn: src.execute(conn, mark, (now, now, run_id))
            )
        return {"run": run_id, "backup_id": run.backup_id, **result}

    # internals ---------------------------------------------------------------------------

    def _up_to_date(self, options: MigrateOptions, todo: Preview) -> RunRecord:
        """Nothing left to do: no run, no backup, no write at all."""
        now = self._now_iso()
        self.log("nothing to migrate: every config in scope is on v2 with its metrics")
        self._enable_rollout(options, "")
        record = RunRecord(
            id="",
            status="up_to_date",
            step="done",
            cursor=None,
            counts=Counts(configs_skipped=todo.invalid_configs),
            options=options,
            backup_id=None,
            holder=None,
            error=None,
            started_at=now,
            updated_at=now,
            finished_at=now,
        )
        record.rollout = self._rollout
        return record

    def _now(self) -> datetime:
        return self.clock.now()

    def _now_iso(self) -> str:
        return self._now().isoformat(timespec="seconds").replace("+00:00", "Z")

    def _lock(self, run_id: str, *, ensure: bool = True) -> NamedLock:
        if ensure:
            self.source.ensure_own()
        lock = NamedLock(
            self.source.store,
            LOCK_NAME,
            local_holder(run_id),
            ttl=300.0,
            clock=self.clock,
            table=s.data_locks,
        )
        lock.require("a data migration or restore")
        return lock

    def _apply(self, fn: Transform, row: Mapping[str, Any], now: str) -> dict[str, Any]:
        try:
            out = fn(row, now)
            if not isinstance(out, dict):
                out = dict(out)
        except SwitchoverError:
            raise
        except Exception as exc:
            raise ValidationError(
                f"the transform failed on config {str(row.get('id'))!r}: {type(exc).__name__}",
                field="transform",
            ) from None
        if fn is not to_v2:
            problems = check_v2(out)
            if problems:
                field, how = problems[0]
                raise ValidationError(
                    f"the transform's output for config {str(row.get('id'))!r}: {field} {how}",
                    field=f"transform.{field}",
                )
        return out

    def _drive(self, run_id: str, lock: NamedLock) -> RunRecord:
        src = self.source
        run = get_run(src, run_id)
        scope = Scope(run.options.tenant_ids)
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="switchover-analyze") as pool:
                while run.step != "done":
                    lock.renew()
                    self._renewed = time.monotonic()
                    self._analyzed()
                    if run.step in _PLANNED:
                        self._analyze(_PLANNED[run.step])
                    if not src.sqlite and _ahead(run.step):
                        # on a connection of its own, while this step writes other tables
                        self._analyzing = pool.submit(self._analyze, _ahead(run.step))
                    handler = getattr(self, f"_step_{run.step}")
                    handler(run, scope, lock)
                    self._fresh.difference_update(_WRITES.get(run.step, ()))
                    run = get_run(src, run_id)
        except BaseException as exc:
            message = getattr(exc, "message", None) or type(exc).__name__
            try:
                with src.begin() as conn:
                    src.execute(
                        conn,
                        f"UPDATE {s.runs.name} SET status = 'failed', error = ?, "
                        "updated_at = ? WHERE id = ?",
                        (message, self._now_iso(), run_id),
                    )
            except Exception:
                pass
            raise
        now = self._now_iso()
        with src.begin() as conn:
            src.execute(
                conn,
                f"UPDATE {s.runs.name} SET status = 'completed', finished_at = ?, "
                "updated_at = ? WHERE id = ?",
                (now, now, run_id),
            )
        done = get_run(src, run_id)
        done.verification = self._verification
        done.rollout = self._rollout
        return done

    def _analyzed(self) -> None:
        """Wait for the statistics being gathered ahead of the next step."""
        analyzing, self._analyzing = self._analyzing, None
        if analyzing is not None:
            analyzing.result()

    def _analyze(self, tables: tuple[str, ...]) -> None:
        """Fresh planner statistics on PostgreSQL: a table just filled or rewritten has
        none, and the planner then picks plans that grow with every batch."""
        tables = tuple(t for t in tables if t not in self._fresh)
        if self.source.sqlite or not tables:
            return
        with self.source.begin() as conn:
            stale = self.source.fetch(
                conn,
                "SELECT relname FROM pg_stat_user_tables WHERE relname = ANY(CAST(? AS text[])) "
                "AND (last_analyze IS NULL AND last_autoanalyze IS NULL "
                "OR n_mod_since_analyze > GREATEST(n_live_tup, 1000) / 10)",
                ("{" + ",".join(tables) + "}",),
            )
            for (table,) in stale:  # only tables changed by a tenth since their statistics
                names = ", ".join(r.quote(c) for c in self._planned_columns(table))
                self.source.execute(conn, f"ANALYZE {r.quote(table)} ({names})")
        self._fresh.update(tables)

    def _planned_columns(self, table: str) -> list[str]:
        """The columns the steps' queries filter, join and order on: the statistics of
        a prompt or a v2 document cost most of an ANALYZE and steer no plan."""
        layout = self.layout
        shape = {
            s.tenants.name: layout.tenants,
            s.configs.name: layout.configs,
            s.calls.name: layout.calls,
            s.metrics.name: layout.metrics,
        }[table]
        wanted = {
            s.configs.name: ("tenant_id", "name", "schema_version"),
            s.calls.name: (layout.config_ref, "tenant_id", "outcome"),
            s.metrics.name: (layout.metrics_ref, "tenant_id"),
        }.get(table, ())
        return list(dict.fromkeys(c for c in (shape.key, *wanted) if shape.has(c)))

    def _advance(
        self, conn: Connection, run: RunRecord, step: str, *, counts: bool = False, **extra: Any
    ) -> None:
        """Move the run to ``step``. The stored counts are the batches' own (see
        :meth:`_add`); ``counts`` writes ``run.counts`` over them."""
        sets = ["step = ?", "cursor = NULL", "updated_at = ?"]
        params: list[Any] = [step, self._now_iso()]
        if counts:
            sets.append("counts = ?")
            params.append(orjson.dumps(run.counts.to_dict()).decode())
        for k, v in extra.items():
            sets.append(f"{k} = ?")
            params.append(v)
        self.source.execute(
            conn, f"UPDATE {s.runs.name} SET {', '.join(sets)} WHERE id = ?", (*params, run.id)
        )

    def _checkpoint(
        self, conn: Connection, run: RunRecord, cursor: Any, count: str, n: int
    ) -> None:
        """The batch's cursor, and its ``n`` rows added to the stored ``count``."""
        self._add(conn, run, count, n, cursor=str(cursor))

    def _add(
        self, conn: Connection, run: RunRecord, count: str, n: int, *, cursor: str | None = None
    ) -> None:
        """Add ``n`` to one stored count, in SQL: a lane (:meth:`_lane`) adds to its own
        count in transactions of its own while the step's batches add to theirs, so
        neither may write the counts it holds in memory over the other's."""
        if self.source.sqlite:
            added = "json_set(counts, ?, COALESCE(json_extract(counts, ?), 0) + ?)"
            args: tuple[Any, ...] = (f"$.{count}", f"$.{count}", n)
        else:
            added = (
                "CAST(jsonb_set(CAST(counts AS jsonb), CAST(? AS text[]), to_jsonb(COALESCE("
                "CAST(CAST(counts AS jsonb) ->> ? AS bigint), 0) + CAST(? AS bigint))) AS text)"
            )
            args = ("{" + count + "}", count, n)
        moved = ("cursor = ?, ", (cursor,)) if cursor is not None else ("", ())
        self.source.execute(
            conn,
            f"UPDATE {s.runs.name} SET {moved[0]}counts = {added}, updated_at = ? WHERE id = ?",
            (*moved[1], *args, self._now_iso(), run.id),
        )

    def _pause(self, run: RunRecord, lock: NamedLock) -> None:
        """The throttle, and the lock's lease renewed once every :data:`RENEW_EVERY`
        seconds (a round trip and a commit of its own: at every batch of 100 rows it
        cost more than the batch)."""
        if run.options.throttle_ms:
            time.sleep(run.options.throttle_ms / 1000)
        if time.monotonic() - self._renewed >= RENEW_EVERY:
            lock.renew()
            self._renewed = time.monotonic()

    # steps ---------------------------------------------------------------------------------

    def _step_backup(self, run: RunRecord, scope: Scope, lock: NamedLock) -> None:
        with self.source.begin() as conn:
            info = backups.create(
                self.source, conn, scope, now=self._now(), run_id=run.id, progress=self.progress
            )
            self._advance(conn, run, "validate", backup_id=info.id)
        self.log(
            f"backup {info.id}: {info.configs} configs, {info.calls} calls, "
            f"{info.metrics} metrics, sha256 {info.checksum}"
        )

    def _step_validate(self, run: RunRecord, scope: Scope, lock: NamedLock) -> None:
        if not run.options.skip_invalid:
            _refuse_invalid(Checker(self.source, scope).run(("data_integrity", "foreign_keys")))
        with self.source.begin() as conn:
            self._advance(conn, run, "transform")

    def _batched(
        self,
        run: RunRecord,
        lock: NamedLock,
        *,
        step: str,
        then: str,
        count: str,
        source: str,
        key: str,
        columns: str,
        where: str,
        params: tuple[Any, ...],
        write: Callable[[Connection, Any, str], None],
        lock_rows: bool = False,
        prepare: Callable[[list[tuple[Any, ...]], str], Any] | None = None,
    ) -> None:
        """Keyset batches from the run's cursor: each batch is written, counted and
        checkpointed in one transaction; no rows left → advance to ``then``.
        ``lock_rows``: the batch's rows are read ``FOR UPDATE`` (PostgreSQL).
        ``prepare``: the batch's Python work (``write`` gets what it returns instead of
        the rows); on PostgreSQL it runs on the next batch while the database writes
        the previous one (:meth:`_overlapped`)."""
        src = self.source
        lock_rows = lock_rows and not src.sqlite

        def read(conn: Connection, cursor: str | None) -> list[tuple[Any, ...]]:
            return self._read_batch(
                conn, run, cursor, source=source, key=key, columns=columns, where=where,
                params=params, lock_rows=lock_rows,
            )  # fmt: skip

        with src.connect() as conn:
            cond, args = _after(cursor=run.cursor, key=key, where=where, params=params)
            left = src.scalar(conn, f"SELECT COUNT(*) FROM {source} WHERE {cond}", args)
        total = getattr(run.counts, count) + left
        if prepare is not None and not src.sqlite:
            self._overlapped(run, lock, step, then, count, total, read, prepare, write)
            return
        cursor = run.cursor
        with src.connect() as held:
            while True:
                now = self._now_iso()
                with src.transaction(held) as conn:
                    rows = read(conn, cursor)
                    if not rows:
                        self._advance(conn, run, then)
                        return
                    write(conn, rows if prepare is None else prepare(rows, now), now)
                    cursor = str(rows[-1][0])
                    setattr(run.counts, count, getattr(run.counts, count) + len(rows))
                    self._checkpoint(conn, run, cursor, count, len(rows))
                self.progress(step, getattr(run.counts, count), total)
                self._pause(run, lock)

    def _read_batch(
        self,
        conn: Connection,
        run: RunRecord,
        cursor: str | None,
        *,
        source: str,
        key: str,
        columns: str,
        where: str,
        params: tuple[Any, ...],
        lock_rows: bool = False,
    ) -> list[tuple[Any, ...]]:
        """The next batch after ``cursor`` in key order (``lock_rows``: ``FOR UPDATE``)."""
        cond, args = _after(cursor=cursor, key=key, where=where, params=params)
        return self.source.fetch(
            conn,
            f"SELECT {columns} FROM {source} WHERE {cond} ORDER BY {key} "
            f"LIMIT {run.options.batch_size}{' FOR UPDATE' if lock_rows else ''}",
            args,
        )

    def _overlapped(
        self,
        run: RunRecord,
        lock: NamedLock,
        step: str,
        then: str,
        count: str,
        total: int,
        read: Callable[[Connection, str | None], list[tuple[Any, ...]]],
        prepare: Callable[[list[tuple[Any, ...]], str], Any],
        write: Callable[[Connection, Any, str], None],
    ) -> None:
        """:meth:`_batched` with two transactions in flight: while a writer thread
        writes, checkpoints and commits batch n, this thread reads batch n + 1 (its own
        transaction, its own row locks: the batches share no row) and runs its Python
        work. Batches commit in order, each with its checkpoint, so a crash leaves a
        prefix of them, as one transaction at a time would; a failure in either thread
        rolls back its batch, and the batch before it is committed first."""
        src = self.source

        def land(tx: Any, conn: Connection, payload: Any, cursor: str, n: int, now: str) -> None:
            try:
                write(conn, payload, now)
                setattr(run.counts, count, getattr(run.counts, count) + n)
                self._checkpoint(conn, run, cursor, count, n)
            except BaseException as exc:
                tx.__exit__(type(exc), exc, exc.__traceback__)
                raise
            tx.__exit__(None, None, None)

        cursor = run.cursor
        pending: Future[None] | None = None
        with (
            src.connect() as one,
            src.connect() as other,
            ThreadPoolExecutor(1, thread_name_prefix="switchover-batch") as writer,
        ):
            held = (one, other)
            n = 0
            try:
                while True:
                    now = self._now_iso()
                    tx = src.transaction(held[n % 2])
                    n += 1
                    conn = tx.__enter__()
                    try:
                        rows = read(conn, cursor)
                        payload = prepare(rows, now) if rows else None
                        if pending is not None:
                            landed, pending = pending, None
                            landed.result()
                            self.progress(step, getattr(run.counts, count), total)
                            self._pause(run, lock)
                        if not rows:
                            self._advance(conn, run, then)
                    except BaseException as exc:
                        tx.__exit__(type(exc), exc, exc.__traceback__)
                        raise
                    if not rows:
                        tx.__exit__(None, None, None)
                        return
                    cursor = str(rows[-1][0])
                    pending = writer.submit(land, tx, conn, payload, cursor, len(rows), now)
            finally:
                if pending is not None:  # the batch before a failure still lands
                    pending.result()

    def _update(
        self, conn: Connection, table: r.Table, columns: list[str], rows: list[tuple[Any, ...]]
    ) -> None:
        bulk.update(self.source, conn, table, columns, rows)

    def _step_transform(self, run: RunRecord, scope: Scope, lock: NamedLock) -> None:
        layout = self.layout
        fn = load_transform(run.options.transform)
        where, params = scope.join(_NOT_V2, eligible(layout))
        self._batched(
            run, lock, step="transform", then="catchup", count="configs_migrated",
            source="voice_agent_configs", key=r.quote(layout.configs.key),
            columns=_v1_columns(layout), where=where, params=params,
            prepare=lambda rows, now: self._v2_rows(layout, fn, rows, now),
            write=lambda conn, out, _now: self._write_v2_rows(conn, layout, out),
            lock_rows=True,
        )  # fmt: skip

    def _outcome_columns(self) -> str:
        return f"{r.quote(self.layout.calls.key)}, status, duration_seconds, outcome"

    def _step_catchup(self, run: RunRecord, scope: Scope, lock: NamedLock) -> None:
        """A legacy write that waited on a batch's row locks lands after the batch: on
        PostgreSQL the row's ``xmin`` is then no longer one of the run's batch
        transactions, and the row is migrated again from its new v1 values (after a
        resume, whose batches this process did not see, every row the run migrated)."""
        src = self.source
        if src.sqlite:
            # one writer at a time: a legacy write between a batch's read and its write
            # makes the batch's write fail (SQLITE_BUSY), and the run resumes from it
            with src.begin() as conn:
                self._advance(conn, run, "outcomes")
            return
        layout = self.layout
        fn = load_transform(run.options.transform)
        ours = "{" + ",".join(sorted(self._xids)) + "}"
        where, _ = scope.join(
            "schema_version = 'v2'",
            "migrated_at >= ?",
            "CAST(xmin AS text) NOT IN (SELECT unnest(CAST(? AS text[])))",
        )
        with src.begin() as conn:
            rows = src.fetch(
                conn,
                f"SELECT {_v1_columns(layout)} FROM voice_agent_configs WHERE {where} "
                f"ORDER BY {r.quote(layout.configs.key)} FOR UPDATE",
                (run.started_at, ours, *(scope.tenant_ids or ())),
            )
            if rows:
                self._write_v2(conn, layout, fn, rows, self._now_iso())
                self.log(f"{len(rows)} config(s) written by legacy during a batch: migrated again")
            self._advance(conn, run, "outcomes")

    def _write_v2(
        self,
        conn: Connection,
        layout: lay.Layout,
        fn: Transform,
        rows: list[tuple[Any, ...]],
        now: str,
    ) -> None:
        self._write_v2_rows(conn, layout, self._v2_rows(layout, fn, rows, now))

    def _v2_rows(
        self, layout: lay.Layout, fn: Transform, rows: list[tuple[Any, ...]], now: str
    ) -> list[tuple[Any, ...]]:
        """The v2 values of v1 rows, each tuple ending with the row's key."""
        encoders = self._encoders(layout)
        apply = self._apply
        out = []
        if not any(encoders):  # PostgreSQL without array columns: no per-value call
            values = operator.itemgetter(*V2_FIELDS)
            for row in rows:
                out.append(
                    (*values(apply(fn, dict(zip(V1_FIELDS, row, strict=True)), now)), row[0])
                )
            return out
        fields = list(zip(V2_FIELDS, encoders, strict=True))
        for row in rows:
            v2 = apply(fn, dict(zip(V1_FIELDS, row, strict=True)), now)
            out.append((*(v2[f] if enc is None else enc(v2[f]) for f, enc in fields), row[0]))
        return out

    def _encoders(self, layout: lay.Layout) -> list[Callable[[Any], Any] | None]:
        """Each v2 field's encoder, or ``None`` where the value goes as it is."""
        sqlite = self.source.sqlite
        return [
            layout.encoder(f, sqlite=sqlite)
            if sqlite or (layout.configs.has(f) and layout.configs[f].kind == r.ARRAY)
            else None  # PostgreSQL: the batch document carries objects and lists as they are
            for f in V2_FIELDS
        ]

    def _write_v2_rows(
        self, conn: Connection, layout: lay.Layout, out: list[tuple[Any, ...]]
    ) -> None:
        self._update(conn, layout.configs, list(V2_FIELDS), out)
        if not self.source.sqlite:
            self._xids.add(str(self.source.scalar(conn, "SELECT mod(txid_current(), 4294967296)")))

    def _step_outcomes(self, run: RunRecord, scope: Scope, lock: NamedLock) -> None:
        """The calls' canonical outcomes. On PostgreSQL the ``metrics`` step's batches
        run beside them (:meth:`_lane`, throttled alike): both are the database's work,
        on tables the other does not write, and one connection keeps one core busy."""
        layout = self.layout
        where, params = scope.join(_NEEDS_OUTCOME)
        stop = threading.Event()
        with ThreadPoolExecutor(1, thread_name_prefix="switchover-metrics") as pool:
            lane = None if self.source.sqlite else pool.submit(self._metrics_lane, run, scope, stop)
            try:
                self._batched(
                    run, lock, step="outcomes", then="metrics", count="calls_updated",
                    source="voice_agent_calls", key=r.quote(layout.calls.key),
                    columns=self._outcome_columns(), where=where, params=params,
                    prepare=lambda rows, _now: _outcomes(rows),
                    write=lambda conn, out, _: self._update(conn, layout.calls, ["outcome"], out),
                )  # fmt: skip
            except BaseException:
                stop.set()
                raise
            if lane is None:
                return
            done, finished = self._awaited(lane, lock)
            self.log(f"{done} metrics row(s) generated beside the outcomes")
            if finished:  # every v2 config has its row: the metrics step would find none
                with self.source.begin() as conn:
                    self._advance(conn, run, "verify")

    def _awaited(self, lane: Future[tuple[int, bool]], lock: NamedLock) -> tuple[int, bool]:
        """The lane's result, the run's lock renewed meanwhile as between batches (on
        PostgreSQL that checks the advisory lock's connection and refreshes the row
        naming its holder)."""
        while True:
            try:
                return lane.result(timeout=RENEW_EVERY)
            except TimeoutError:
                lock.renew()
                self._renewed = time.monotonic()

    def _metrics_lane(
        self, run: RunRecord, scope: Scope, stop: threading.Event
    ) -> tuple[int, bool]:
        self._analyzed()
        self._analyze(tuple(t for t in _PLANNED["metrics"] if t != s.calls.name))
        try:
            return self._lane(run, "metrics_generated", self._metrics_batches(scope), stop)
        finally:
            self._fresh.discard(s.metrics.name)

    def _lane(
        self, run: RunRecord, count: str, spec: dict[str, Any], stop: threading.Event
    ) -> tuple[int, bool]:
        """A step's batches beside another step, on a connection of their own, until
        none is left (returns the rows done and ``True``) or ``stop`` is set. Each
        batch commits with its rows added to ``count`` (:meth:`_add`), so a crash loses
        at most the batch in flight. The lane keeps no cursor: when its own step comes,
        it selects only the rows still to do."""
        src = self.source
        reads = {k: spec[k] for k in ("source", "key", "columns", "where", "params")}
        done = 0
        cursor: str | None = None
        with src.connect() as held:
            while not stop.is_set():
                now = self._now_iso()
                with src.transaction(held) as conn:
                    rows = self._read_batch(conn, run, cursor, **reads)
                    if not rows:
                        return done, True
                    spec["write"](conn, rows, now)
                    self._add(conn, run, count, len(rows))
                cursor = str(rows[-1][0])
                done += len(rows)
                if run.options.throttle_ms:
                    time.sleep(run.options.throttle_ms / 1000)
        return done, False

    def _step_metrics(self, run: RunRecord, scope: Scope, lock: NamedLock) -> None:
        spec = self._metrics_batches(scope)
        self._batched(
            run, lock, step="metrics", then="verify", count="metrics_generated", **spec,
            prepare=lambda rows, _now: rows,
        )  # fmt: skip

    def _metrics_batches(self, scope: Scope) -> dict[str, Any]:
        """One metrics row per v2 config: its calls, their average duration and p95
        latency. NaN or infinity (a broken call record) would make the average and the
        p95 NaN or infinite: such values count as calls, not as durations or latencies.
        On PostgreSQL each batch's calls are aggregated in the database (count, sum and
        count of finite durations, ``percentile_disc(0.95)``: the nearest rank, as
        :func:`p95`) and only the average's rounding is left to Python."""
        src = self.source
        layout = self.layout
        ref = r.quote(layout.config_ref)
        ckey = r.quote(layout.configs.key)
        # OFFSET 0 keeps the anti-join a probe per config: as a merge join PostgreSQL
        # reads the metrics index from its start at every batch, and the step grows
        # with the square of the table
        fence = "" if src.sqlite else " OFFSET 0"
        where, params = scope.join(
            "c.schema_version = 'v2'",
            f"NOT EXISTS (SELECT 1 FROM voice_agent_metrics m WHERE "
            f"m.{r.quote(layout.metrics_ref)} = c.{ckey}{fence})",
            column="c.tenant_id",
        )
        columns = [
            layout.metrics_ref, "tenant_id", "total_calls", "avg_duration_seconds",
            "p95_latency_ms", "generated_at",
        ]  # fmt: skip
        in_range = f"FROM voice_agent_calls WHERE {ref} >= ? AND {ref} <= ?"

        def aggregated(conn: Connection, first: Any, last: Any) -> dict[Any, tuple[Any, ...]]:
            finite = "CAST({0} AS double precision) NOT IN ('NaN', 'Infinity', '-Infinity')"
            dur, lat = "duration_seconds", "latency_ms"
            rows = src.fetch(
                conn,
                f"SELECT {ref}, COUNT(*), "
                f"SUM(CAST({dur} AS double precision)) FILTER (WHERE {finite.format(dur)}), "
                f"COUNT({dur}) FILTER (WHERE {finite.format(dur)}), "
                f"percentile_disc(0.95) WITHIN GROUP (ORDER BY CAST({lat} AS double "
                f"precision)) FILTER (WHERE {finite.format(lat)}) {in_range} GROUP BY {ref}",
                (first, last),
            )
            return {row[0]: row[1:] for row in rows}

        def collected(conn: Connection, first: Any, last: Any) -> dict[Any, tuple[Any, ...]]:
            per: dict[Any, tuple[list[float], list[float], list[int]]] = {}
            for cid, dur, lat in src.fetch(
                conn, f"SELECT {ref}, duration_seconds, latency_ms {in_range}", (first, last)
            ):
                slot = per.get(cid)
                if slot is None:
                    slot = per[cid] = ([], [], [0])
                slot[2][0] += 1
                dur, lat = _num(dur), _num(lat)
                if dur is not None and math.isfinite(dur):
                    slot[0].append(dur)
                if lat is not None and math.isfinite(lat):
                    slot[1].append(lat)
            return {
                cid: (n[0], sum(durs), len(durs), p95(lats)) for cid, (durs, lats, n) in per.items()
            }

        summarise = collected if src.sqlite else aggregated

        def write(conn: Connection, configs: list[tuple[Any, ...]], now: str) -> None:
            per = summarise(conn, configs[0][0], configs[-1][0])
            rows = []
            for cid, tenant in configs:
                n, total, timed, p = per.get(cid, (0, None, 0, None))
                avg = round(total / timed, 3) if timed else None
                rows.append((cid, tenant, n, avg, p, now))
            bulk.insert(src, conn, layout.metrics, columns, rows)

        return {
            "source": "voice_agent_configs c", "key": f"c.{ckey}",
            "columns": f"c.{ckey}, c.tenant_id", "where": where, "params": params,
            "write": write,
        }  # fmt: skip

    def _step_verify(self, run: RunRecord, scope: Scope, lock: NamedLock) -> None:
        src = self.source
        report = Checker(src, scope, skip_invalid=run.options.skip_invalid).run()
        self._verification = report.to_dict()
        with src.connect() as conn:
            where, params = scope.join(_NOT_V2)
            skipped = src.scalar(
                conn, f"SELECT COUNT(*) FROM voice_agent_configs WHERE {where}", params
            )
        run.counts.configs_skipped = skipped
        failed = report.critical_failed
        if failed:
            first = failed[0]
            raise DataCheckError(
                f"verification failed: {first.name}: {first.message} "
                f"(e.g. {'; '.join(first.examples[:3])}); restore with `switchover rollback "
                f"NAME --level data --backup-id {run.backup_id}`"
            )
        with src.begin() as conn:
            self._advance(conn, run, "enable", counts=True)

    def _step_enable(self, run: RunRecord, scope: Scope, lock: NamedLock) -> None:
        self._enable_rollout(run.options, run.id)
        with self.source.begin() as conn:
            self._advance(conn, run, "done")

    def _enable_rollout(self, options: MigrateOptions, run_id: str) -> None:
        if not options.enable_rollout:
            return
        if self.enable is None:
            raise ValidationError(
                "--enable-rollout needs the switchover store; run it from the CLI",
                field="enable_rollout",
            )
        self._rollout = self.enable(options.enable_rollout, options.initial_percentage, run_id)


def _after(
    *, cursor: str | None, key: str, where: str, params: tuple[Any, ...]
) -> tuple[str, tuple[Any, ...]]:
    """``where`` for the rows past ``cursor`` in ``key`` order, and its parameters."""
    return (where, params) if cursor is None else (f"{key} > ? AND ({where})", (cursor, *params))


def _outcomes(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``(outcome, key)`` of ``(key, status, duration_seconds, outcome)`` call rows."""
    return [(infer_outcome(st, _num(d), o), cid) for cid, st, d, o in rows]


def _num(value: Any) -> Any:
    """numeric columns come back as Decimal: as float for the outcome and metrics rules."""
    return float(value) if isinstance(value, Decimal) else value


def _v1_columns(layout: lay.Layout) -> str:
    """The v1 fields a transform reads, the key first (whatever the key column's name)."""
    return ", ".join(r.quote(layout.configs.key) if f == "id" else r.quote(f) for f in V1_FIELDS)


def _refuse_invalid(report: Report) -> None:
    failed = report.critical_failed
    if failed:
        first = failed[0]
        raise DataCheckError(
            f"v1 data failed {first.name} ({first.message}; e.g. "
            f"{'; '.join(first.examples[:3])}). Nothing was migrated. Fix the rows, or "
            "run again with --skip-invalid to leave them on v1"
        )


def _short(row: Mapping[str, Any], limit: int = 160) -> dict[str, Any]:
    """A row for a diff preview, long strings cut."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, str) and len(v) > limit:
            out[k] = v[:limit] + f"… ({len(v)} chars)"
        elif isinstance(v, dict):
            out[k] = _short(v, limit)
        else:
            out[k] = v
    return out

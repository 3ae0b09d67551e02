"""The validation checks of seed 003 §6.2, run on the source database.

=================  =========  ==============================================================
check              severity   fails when
=================  =========  ==============================================================
record_count       critical   the configs or calls in scope differ in number from the
                              newest backup of that scope, or a v2 config has no metrics
                              row (or more than one)
data_integrity     critical   a v1 row lacks id, tenant_id or name; a v2 row's
                              voice_config, personality or capabilities is not valid JSON
                              of the v2 shape, or its assistant_type is unknown
foreign_keys       critical   a config's tenant, a call's config or a metrics row's
                              config does not exist
schema_version     high       a config in scope is not on v2
duplicates         medium     two enabled configs of one tenant share a name (case-blind)
value_constraints  medium     a language is not a tag like ``es`` or ``es-MX``, a v2 config
                              has an empty special instruction or speed/pitch out of
                              range, a call has a negative duration or latency
=================  =========  ==============================================================

``fix`` repairs what is safe to repair and says exactly what it changed: duplicates
keep the oldest enabled config and disable the others; languages are rewritten in
canonical form when they are recognisable; empty special instructions are dropped;
speed and pitch are clamped. Critical problems are never "fixed". It holds the
data-migration lock (no run or restore meanwhile) and first takes a backup of the
scope, in the transaction that makes the fixes (``backups`` lists it as taken before
``validate --fix``); when nothing needs fixing, neither is kept.

Warnings (seed 003 §6.3) do not fail the validation: calls whose outcome is still in a
legacy format (``COMPLETED``, ``no answer``), and configs a run left on v1 on purpose
with ``--skip-invalid``. Those configs are judged exactly as the run judged them: when
the newest completed run covering the scope used ``--skip-invalid``, the critical
checks look at migrated configs, and the ones left on v1 are listed as a warning with
the same count the run reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from sqlalchemy.engine import Connection

from switchover.core.clock import Clock, SystemClock
from switchover.core.outcomes import OUTCOMES
from switchover.core.transform import ASSISTANT_TYPES, normalize_language
from switchover.data import layout as lay
from switchover.data import reflect as r
from switchover.data import schema as s
from switchover.data.source import Scope, Source
from switchover.errors import ValidationError
from switchover.store.locks import NamedLock, local_holder

SEVERITY = {
    "record_count": "critical",
    "data_integrity": "critical",
    "foreign_keys": "critical",
    "schema_version": "high",
    "duplicates": "medium",
    "value_constraints": "medium",
}
CHECKS = tuple(SEVERITY)
SPEED = (0.5, 2.0)
PITCH = (-20.0, 20.0)
EXAMPLES = 10


@dataclass
class CheckResult:
    name: str
    severity: str
    passed: bool
    problems: int
    message: str
    examples: list[str] = field(default_factory=list)
    fixed: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    checks: list[CheckResult]
    warnings: list[str] = field(default_factory=list)
    backup_id: str | None = None
    """The backup ``--fix`` took before changing anything."""

    @property
    def critical_failed(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed and c.severity == "critical"]

    @property
    def ok(self) -> bool:
        return not self.critical_failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "total": len(self.checks),
            "passed": sum(c.passed for c in self.checks),
            "failed": sum(not c.passed for c in self.checks),
            "warnings": self.warnings,
            "backup_id": self.backup_id,
            "checks": [c.to_dict() for c in self.checks],
        }


def parse_checks(names: Iterable[str] | None) -> tuple[str, ...]:
    wanted: list[str] = []
    for raw in names or ():
        for part in raw.split(","):
            name = part.strip().lower().replace("-", "_")
            if not name:
                continue
            if name not in SEVERITY:
                raise ValidationError(
                    f"--check {part.strip()!r} is not a check; use one of: {', '.join(CHECKS)}",
                    field="check",
                )
            wanted.append(name)
    return tuple(dict.fromkeys(wanted)) or CHECKS


def _result(name: str, problems: list[str], ok_msg: str, bad_msg: str) -> CheckResult:
    n = len(problems)
    return CheckResult(
        name=name,
        severity=SEVERITY[name],
        passed=n == 0,
        problems=n,
        message=ok_msg if n == 0 else bad_msg.format(n=n),
        examples=problems[:EXAMPLES],
    )


class _NothingFixed(Exception):
    def __init__(self, results: list[CheckResult]) -> None:
        self.results = results


@dataclass
class _Scan:
    """One read of the scope's configs: ``data_integrity``'s v2 shape problems, and the
    rows ``value_constraints`` must look at closely."""

    shape: list[str] = field(default_factory=list)
    values: list[tuple[Any, ...]] = field(default_factory=list)


class Checker:
    """Runs checks on one scope. ``skip_invalid``: judge v1 configs as a run with
    ``--skip-invalid`` does (its verify step); by default, as the newest completed run
    covering the scope did."""

    def __init__(
        self,
        source: Source,
        scope: Scope,
        *,
        skip_invalid: bool | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.source = source
        self.scope = scope
        self.skip_invalid = skip_invalid
        self.clock = clock or SystemClock()
        self.v2 = True
        self.left_by: str | None = None
        self._layout: lay.Layout | None = None
        self._scan: _Scan | None = None
        self._shared = False

    @property
    def layout(self) -> lay.Layout:
        assert self._layout is not None
        return self._layout

    @property
    def migrated_only(self) -> bool:
        return self.left_by is not None

    def run(self, names: Iterable[str] = CHECKS, *, fix: bool = False) -> Report:
        src = self.source
        src.require(s.tenants, s.configs, s.calls, s.metrics)
        with src.connect() as conn:
            self._layout = lay.load(conn)
        self.v2 = src.has_v2_columns()  # a v1 table before `migrate` adds the v2 columns
        self.left_by = self._skipping_run()
        names = list(names)
        self._scan = None
        self._shared = {"data_integrity", "value_constraints"} <= set(names)
        if fix:
            return self._fix(names)
        if self._shared and not src.sqlite:
            return self._overlapped(names)
        with src.begin() as conn:
            results = [getattr(self, name)(conn, False) for name in names]
            warnings = self._warnings(conn)
        return Report(results, warnings)

    def _overlapped(self, names: list[str]) -> Report:
        """PostgreSQL, read only: the scan of every config (Python parsing documents)
        runs on a connection of its own in a thread while this one runs the checks that
        are SQL, then the two that need the scan; the report keeps the order asked."""
        src = self.source
        with ThreadPoolExecutor(1, thread_name_prefix="switchover-scan") as pool:

            def scan() -> _Scan:
                with src.begin() as conn:
                    return self._scanned(conn)

            scanning = pool.submit(scan)
            needs = {"data_integrity", "value_constraints"}
            done: dict[str, CheckResult] = {}
            try:
                with src.begin() as conn:
                    for name in [n for n in names if n not in needs]:
                        done[name] = getattr(self, name)(conn, False)
                    warnings = self._warnings(conn)
                    scanning.result()
                    for name in [n for n in names if n in needs]:
                        done[name] = getattr(self, name)(conn, False)
            finally:
                scanning.cancel()
        return Report([done[name] for name in names], warnings)

    def _fix(self, names: list[str]) -> Report:
        """Under the lock, in one transaction: a backup of the scope, then the fixes. The
        backup is dropped with the transaction when there was nothing to fix."""
        from switchover.data import backup as backups

        src = self.source
        src.ensure_own()
        lock = NamedLock(
            src.store, backups.LOCK_NAME, local_holder("validate --fix"), ttl=300.0,
            table=s.data_locks,
        )  # fmt: skip
        lock.require("a data migration or restore")
        try:
            with src.begin() as conn:
                info = backups.create(
                    src, conn, self.scope, now=self.clock.now(), run_id=None, kind="pre-fix"
                )
                results = [getattr(self, name)(conn, True) for name in names]
                if not any(c.fixed for c in results):
                    raise _NothingFixed(results)
                warnings = self._warnings(conn)
        except _NothingFixed as nothing:
            with src.connect() as conn:
                warnings = self._warnings(conn)
            return Report(nothing.results, warnings)
        finally:
            lock.release()
        return Report(results, warnings, backup_id=info.id)

    def _skipping_run(self) -> str | None:
        """The run whose ``--skip-invalid`` left v1 configs of this scope on purpose."""
        if self.skip_invalid is not None:
            return "this run" if self.skip_invalid else None
        src = self.source
        if not src.has(s.runs):
            return None
        mine = set(self.scope.tenant_ids or ())
        with src.connect() as conn:
            runs = src.fetch(
                conn,
                f"SELECT id, options FROM {s.runs.name} WHERE status = 'completed' "
                "ORDER BY finished_at DESC, id DESC LIMIT 500",
            )
        for run_id, options in runs:
            opts = orjson.loads(options)
            theirs = opts.get("tenant_ids")
            if theirs is not None and (not mine or not mine <= set(theirs)):
                continue
            return str(run_id) if opts.get("skip_invalid") else None
        return None

    def _warnings(self, conn: Connection) -> list[str]:
        src = self.source
        out: list[str] = []
        canonical = ", ".join(f"'{o}'" for o in OUTCOMES)
        where, params = self._where(f"outcome IS NOT NULL AND outcome NOT IN ({canonical})")
        legacy = src.scalar(conn, f"SELECT COUNT(*) FROM voice_agent_calls WHERE {where}", params)
        if legacy:
            out.append(
                f"{legacy} calls with legacy outcome format (`switchover data migrate` "
                "infers the canonical outcome)"
            )
        if self.left_by is not None:
            where, params = self._where(
                "schema_version IS NULL OR schema_version <> 'v2'",
                f"NOT ({self.layout.eligible()})",
            )
            ids = self._ids(
                conn,
                f"SELECT {r.quote(self.layout.configs.key)} FROM voice_agent_configs WHERE "
                f"{where} ORDER BY {r.quote(self.layout.configs.key)}",
                params,
            )
            if ids:
                shown = ", ".join(ids[:EXAMPLES]) + (" …" if len(ids) > EXAMPLES else "")
                out.append(
                    f"{len(ids)} configs left on v1 by {self.left_by} (--skip-invalid: missing "
                    f"tenant or name): {shown}"
                )
        return out

    # helpers -------------------------------------------------------------------------

    def _where(self, *parts: str, column: str = "tenant_id") -> tuple[str, tuple[str, ...]]:
        return self.scope.join(*parts, column=column)

    def _ids(self, conn: Connection, sql: str, params: tuple[Any, ...]) -> list[str]:
        return [str(row[0]) for row in self.source.fetch(conn, sql, params)]

    @property
    def _ck(self) -> str:
        return r.quote(self.layout.configs.key)

    @property
    def _kk(self) -> str:
        return r.quote(self.layout.calls.key)

    @property
    def _created(self) -> str:
        return "created_at" if self.layout.configs.has("created_at") else self._ck

    def _encoded(self, column: str, value: Any) -> Any:
        """A value ``_values`` wrote as JSON text, as the column's type takes it."""
        if isinstance(value, str) and self.layout.configs[column].kind != r.TEXT:
            value = orjson.loads(value)
        return self.layout.encode(column, value, sqlite=self.source.sqlite)

    def _v2_only(self) -> str:
        return "schema_version = 'v2'" if self.migrated_only else ""

    def _scanned(self, conn: Connection) -> _Scan:
        """``data_integrity`` and ``value_constraints`` together read every config of
        the scope once, each document parsed once (a run's verify asks for both)."""
        if self._scan is not None:
            return self._scan
        scan = _Scan()
        ck = self._ck
        where, params = self._where()
        cols = [ck, "schema_version", "CASE WHEN schema_version = 'v2' THEN 1 ELSE 0 END"]
        cols += (
            ["language", "assistant_type", "voice_config", "personality", "capabilities"]
            if self.v2
            else ["language", "NULL", "NULL", "NULL", "NULL"]
        )
        for rows in self.source.pages(
            conn, "voice_agent_configs", cols, key=ck, where=where, params=params
        ):
            for cid, version, v2, language, atype, voice_text, person_text, caps in rows:
                parse = v2 or version == "v2"
                voice = _loads(voice_text) if parse else None
                person = _loads(person_text) if parse else None
                if v2:
                    scan.shape.extend(_v2_shape(cid, atype, voice, person, _loads(caps)))
                if not _quick_ok(version if self.v2 else "v1", language, voice, person):
                    scan.values.append(
                        (cid, version, language, voice_text, person_text)
                        if self.v2
                        else (cid, "v1", language, None, None)
                    )
        self._scan = scan
        return scan

    # checks --------------------------------------------------------------------------

    def record_count(self, conn: Connection, fix: bool) -> CheckResult:
        src = self.source
        where, params = self._where()
        clause = f" WHERE {where}" if where else ""
        configs = src.scalar(conn, f"SELECT COUNT(*) FROM voice_agent_configs{clause}", params)
        calls = src.scalar(conn, f"SELECT COUNT(*) FROM voice_agent_calls{clause}", params)
        problems: list[str] = []
        basis = "no backup of this scope to compare with"
        if src.has(s.backups):
            wanted = orjson.dumps(self.scope.to_list()).decode() if self.scope.tenant_ids else None
            cond = "tenant_ids = ?" if wanted else "tenant_ids IS NULL"
            row = src.fetch(
                conn,
                f"SELECT id, configs, calls FROM {s.backups.name} WHERE {cond} "
                "ORDER BY created_at DESC, id DESC LIMIT 1",
                (wanted,) if wanted else (),
            )
            if row:
                bid, b_configs, b_calls = row[0]
                basis = f"backup {bid} had {b_configs} configs and {b_calls} calls"
                if configs < b_configs:
                    problems.append(f"{b_configs - configs} config(s) fewer than in {bid}")
                elif configs > b_configs:
                    problems.append(f"{configs - b_configs} config(s) more than in {bid}")
                if calls < b_calls:
                    problems.append(f"{b_calls - calls} call(s) fewer than in {bid}")
        v2where, v2params = self._where("c.schema_version = 'v2'", column="c.tenant_id")
        ck, ref = self._ck, r.quote(self.layout.metrics_ref)
        missing = self._ids(
            conn,
            f"SELECT c.{ck} FROM voice_agent_configs c WHERE "
            f"{v2where} AND NOT EXISTS (SELECT 1 FROM voice_agent_metrics m "
            f"WHERE m.{ref} = c.{ck}) ORDER BY c.{ck}",
            v2params,
        )
        problems.extend(f"v2 config {i} has no metrics row" for i in missing)
        return _result(
            "record_count",
            problems,
            f"{configs} configs and {calls} calls ({basis}); every v2 config has metrics",
            "{n} count problem(s): " + basis,
        )

    def data_integrity(self, conn: Connection, fix: bool) -> CheckResult:
        src = self.source
        layout, ck = self.layout, self._ck
        where, params = self._where(
            f"{layout.blank(layout.configs, 'tenant_id')} OR "
            f"{layout.blank(layout.configs, 'name')}",
            self._v2_only(),
        )
        problems = [
            f"config {i}: tenant_id or name is missing"
            for i in self._ids(
                conn, f"SELECT {ck} FROM voice_agent_configs WHERE {where} ORDER BY {ck}", params
            )
        ]
        if self._shared:
            problems.extend(self._scanned(conn).shape)
        else:
            v2where, v2params = self._where("schema_version = 'v2'")
            cols = [ck, "assistant_type", "voice_config", "personality", "capabilities"]
            if not self.v2:
                cols = [ck, "NULL", "NULL", "NULL", "NULL"]
            for rows in src.pages(
                conn, "voice_agent_configs", cols, key=ck, where=v2where, params=v2params
            ):
                for cid, atype, voice, person, caps in rows:
                    problems.extend(
                        _v2_shape(cid, atype, _loads(voice), _loads(person), _loads(caps))
                    )
        ref = r.quote(layout.config_ref)
        cwhere, cparams = self._where(f"{ref} IS NULL")
        problems.extend(
            f"call {i}: {layout.config_ref} is missing"
            for i in self._ids(
                conn, f"SELECT {self._kk} FROM voice_agent_calls WHERE {cwhere}", cparams
            )
        )
        return _result(
            "data_integrity",
            problems,
            "every required field is present and well-formed",
            "{n} row(s) with missing or malformed required fields",
        )

    def foreign_keys(self, conn: Connection, fix: bool) -> CheckResult:
        layout, ck = self.layout, self._ck
        w1, p1 = self._where(
            f"c.tenant_id IS NULL OR NOT {layout.tenant_exists('c')}",
            "c.schema_version = 'v2'" if self.migrated_only else "",
            column="c.tenant_id",
        )
        problems = [
            f"config {i}: tenant does not exist"
            for i in self._ids(conn, f"SELECT c.{ck} FROM voice_agent_configs c WHERE {w1}", p1)
        ]
        ref = r.quote(layout.config_ref)
        w2, p2 = self._where(
            f"k.{ref} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM voice_agent_configs c "
            f"WHERE c.{ck} = k.{ref})",
            column="k.tenant_id",
        )
        problems += [
            f"call {i}: config does not exist"
            for i in self._ids(conn, f"SELECT k.{self._kk} FROM voice_agent_calls k WHERE {w2}", p2)
        ]
        mref = r.quote(layout.metrics_ref)
        w3, p3 = self._where(
            f"NOT EXISTS (SELECT 1 FROM voice_agent_configs c WHERE c.{ck} = m.{mref})",
            column="m.tenant_id",
        )
        problems += [
            f"metrics {i}: config does not exist"
            for i in self._ids(conn, f"SELECT m.{mref} FROM voice_agent_metrics m WHERE {w3}", p3)
        ]
        return _result(
            "foreign_keys",
            problems,
            "every tenant and config reference resolves",
            "{n} reference(s) to rows that do not exist (fix the data, or create the tenants)",
        )

    def schema_version(self, conn: Connection, fix: bool) -> CheckResult:
        where, params = self._where("schema_version IS NULL OR schema_version <> 'v2'")
        ck = self._ck
        ids = self._ids(
            conn, f"SELECT {ck} FROM voice_agent_configs WHERE {where} ORDER BY {ck}", params
        )
        return _result(
            "schema_version",
            [f"config {i} is not on v2" for i in ids],
            "every config is on v2",
            "{n} config(s) not on v2 yet (run `switchover data migrate`)",
        )

    def duplicates(self, conn: Connection, fix: bool) -> CheckResult:
        src = self.source
        where, params = self._where("enabled = ?")
        rows = src.fetch(
            conn,
            f"SELECT {self._ck}, tenant_id, name, {self._created} FROM voice_agent_configs "
            f"WHERE {where} ORDER BY tenant_id, {self._created}, {self._ck}",
            (True, *params),
        )
        first: dict[tuple[str, str], str] = {}
        extra: list[tuple[str, str]] = []
        for cid, tenant, name, _created in rows:
            key = (str(tenant), (name or "").strip().casefold())
            if key in first:
                extra.append((str(cid), first[key]))
            else:
                first[key] = str(cid)
        result = _result(
            "duplicates",
            [f"config {c} duplicates {k} (same tenant and name, both enabled)" for c, k in extra],
            "no two enabled configs of a tenant share a name",
            "{n} enabled duplicate config(s); --fix keeps the oldest and disables the rest",
        )
        if fix and extra:
            src.executemany(
                conn,
                f"UPDATE voice_agent_configs SET enabled = ? WHERE {self._ck} = ?",
                [(False, c) for c, _ in extra],
            )
            result.fixed = [
                {
                    "table": "voice_agent_configs",
                    "id": c,
                    "field": "enabled",
                    "before": True,
                    "after": False,
                    "why": f"duplicate of {k}",
                }
                for c, k in extra
            ]
        return result

    def value_constraints(self, conn: Connection, fix: bool) -> CheckResult:
        src = self.source
        where, params = self._where()
        problems: list[str] = []
        fixes: list[dict[str, Any]] = []
        updates: list[tuple[Any, ...]] = []
        ck = self._ck
        if self._shared:
            flagged: Iterable[tuple[Any, ...]] = self._scanned(conn).values
        else:
            cols = [ck, "schema_version", "language", "voice_config", "personality"]
            if not self.v2:
                cols = [ck, "'v1'", "language", "NULL", "NULL"]
            flagged = (
                row
                for rows in src.pages(
                    conn, "voice_agent_configs", cols, key=ck, where=where, params=params
                )
                for row in rows
                if not _quick_ok(row[1], row[2], _loads_v2(row, 3), _loads_v2(row, 4))
            )
        for row in flagged:
            found, changes, new_values = _values(row)
            problems.extend(found)
            if changes:
                fixes.extend(changes)
                language, voice, person = new_values
                updates.append(
                    (
                        language,
                        self._encoded("voice_config", voice),
                        self._encoded("personality", person),
                        row[0],
                    )
                )
        cwhere, cparams = self._where("duration_seconds < 0 OR latency_ms < 0")
        problems += [
            f"call {i}: negative duration or latency (not fixable: correct it at the source)"
            for i in self._ids(
                conn, f"SELECT {self._kk} FROM voice_agent_calls WHERE {cwhere}", cparams
            )
        ]
        result = _result(
            "value_constraints",
            problems,
            "every value is within its allowed range",
            "{n} value(s) out of range or badly formatted",
        )
        if fix and updates:
            src.executemany(
                conn,
                "UPDATE voice_agent_configs SET language = ?, voice_config = ?, personality = ? "
                f"WHERE {self._ck} = ?",
                updates,
            )
            result.fixed = fixes
        return result


def _loads(text: Any) -> Any:
    """JSON text parsed; jsonb and arrays come from the driver parsed already."""
    if text is None or isinstance(text, dict | list):
        return text
    try:
        return orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError):
        return _BAD


_BAD = object()


def _v2_shape(cid: Any, atype: Any, v: Any, p: Any, c: Any) -> list[str]:
    """What is wrong with one v2 config's fields, its documents parsed."""
    out = []
    if atype not in ASSISTANT_TYPES:
        out.append(f"config {cid}: assistant_type {atype!r} is not one of {ASSISTANT_TYPES}")
    if not isinstance(v, dict) or not v.get("voice_id") or not v.get("language"):
        out.append(f"config {cid}: voice_config lacks voice_id or language")
    if not isinstance(p, dict) or not isinstance(p.get("base_prompt"), str):
        out.append(f"config {cid}: personality lacks base_prompt")
    if not isinstance(c, list) or not all(isinstance(x, str) and x for x in c):
        out.append(f"config {cid}: capabilities is not a list of names")
    return out


def _loads_v2(row: tuple[Any, ...], i: int) -> Any:
    """Column ``i`` of a ``value_constraints`` row parsed, on v2 rows only."""
    return _loads(row[i]) if row[1] == "v2" else None


def _canonical_language(value: Any) -> bool:
    return not isinstance(value, str) or normalize_language(value) == value


def _quick_ok(version: Any, language: Any, voice: Any, person: Any) -> bool:
    """True when :func:`_values` would find nothing: most rows, decided cheaply
    (``voice`` and ``person`` parsed, of a v2 row)."""
    if language is not None and not _canonical_language(language):
        return False
    if version != "v2":
        return True
    if isinstance(voice, dict) and (
        "speed" in voice or "pitch" in voice or not _canonical_language(voice.get("language"))
    ):
        return False
    if isinstance(person, dict):
        items = person.get("special_instructions")
        if isinstance(items, list) and any(isinstance(x, str) and not x.strip() for x in items):
            return False
    return True


def _clamp(value: Any, bounds: tuple[float, float]) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return min(max(value, bounds[0]), bounds[1])
    return value


def _values(row: tuple[Any, ...]) -> tuple[list[str], list[dict[str, Any]], tuple[Any, ...]]:
    """Problems in one config's values, the fixes for them, and the fixed columns."""
    cid, version, language, voice_text, person_text = row
    problems: list[str] = []
    changes: list[dict[str, Any]] = []

    def lang_fix(where: str, value: Any) -> Any:
        if value is None:
            return value
        norm = normalize_language(str(value))
        if norm == value:
            return value
        if norm is None:
            problems.append(f"config {cid}: {where} {value!r} is not a language tag (not fixable)")
            return value
        problems.append(f"config {cid}: {where} {value!r} should be written {norm!r}")
        changes.append(
            {
                "table": "voice_agent_configs",
                "id": cid,
                "field": where,
                "before": value,
                "after": norm,
            }
        )
        return norm

    new_language = lang_fix("language", language)
    voice = _loads(voice_text) if version == "v2" else None
    person = _loads(person_text) if version == "v2" else None
    new_voice, new_person = voice_text, person_text
    if isinstance(voice, dict):
        changed = False
        if "language" in voice:
            fixed = lang_fix("voice_config.language", voice["language"])
            changed |= fixed != voice["language"]
            voice["language"] = fixed
        for key, bounds in (("speed", SPEED), ("pitch", PITCH)):
            if key in voice and _clamp(voice[key], bounds) != voice[key]:
                after = _clamp(voice[key], bounds)
                problems.append(
                    f"config {cid}: voice_config.{key} {voice[key]} is outside "
                    f"{bounds[0]}..{bounds[1]}"
                )
                changes.append(
                    {
                        "table": "voice_agent_configs",
                        "id": cid,
                        "field": f"voice_config.{key}",
                        "before": voice[key],
                        "after": after,
                    }
                )
                voice[key] = after
                changed = True
        if changed:
            new_voice = orjson.dumps(voice).decode()
    if isinstance(person, dict) and isinstance(person.get("special_instructions"), list):
        items = person["special_instructions"]
        kept = [x for x in items if not (isinstance(x, str) and not x.strip())]
        if len(kept) != len(items):
            problems.append(f"config {cid}: {len(items) - len(kept)} empty special instruction(s)")
            changes.append(
                {
                    "table": "voice_agent_configs",
                    "id": cid,
                    "field": "personality.special_instructions",
                    "before": items,
                    "after": kept,
                }
            )
            person["special_instructions"] = kept
            new_person = orjson.dumps(person).decode()
    return problems, changes, (new_language, new_voice, new_person)

"""``switchover data …`` and ``rollback --level data`` end to end, on SQLite and, where
it is cheap, PostgreSQL.

The command line runs in this process (Typer's runner, stdin not a terminal; each
invocation opens its store in the Typer context and closes it when the command ends),
so that the tests stay fast; one test runs the real ``python -m switchover`` to prove
a confirmation needs ``--yes`` when stdin is not a terminal. Data is set up through the
library (seed_demo, the rollout service) when the command line is not what a test is
about.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from switchover.bootstrap import bootstrap
from switchover.cli.main import app as cli_app
from switchover.core.clock import SystemClock
from switchover.core.migration import Migration
from switchover.data.seed import seed_demo
from switchover.data.source import Source
from switchover.settings import Settings
from switchover.store.engine import redact_url

NAME = "voice_v2"
BACKUP_ID = re.compile(r"^backup_\d{8}_\d{6}$")
REDIS_URL = os.environ.get("SWITCHOVER_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
REQUIRE_SERVICES = os.environ.get("SWITCHOVER_REQUIRE_POSTGRES") == "1"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


ENV = {
    "SWITCHOVER_DATABASE_URL": None,
    "SWITCHOVER_DATA_URL": None,
    "SWITCHOVER_ACTOR": "default-actor",
    "COLUMNS": "200",
}


def run(db: str | None, *args: str) -> Result:
    """One ``switchover`` command line, in this process (stdin is not a terminal)."""
    argv = ["--db", db, *args] if db is not None else list(args)
    # each invocation builds its own store in the Typer context and closes it at the end
    result = CliRunner().invoke(cli_app, argv, env=ENV)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Result(result.exit_code, result.stdout, result.stderr)


def run_process(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command line in a subprocess whose stdin is not a terminal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHOVER_")}
    return subprocess.run(
        [sys.executable, "-m", "switchover.cli.main", "--db", db, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def ok_json(db: str | None, *args: str) -> Any:
    proc = run(db, *args, "--json")
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return json.loads(proc.stdout)


def each(db: str | None, *calls: tuple[str, ...]) -> list[Result]:
    return [run(db, *args) for args in calls]


def flat(text: str) -> str:
    return " ".join(text.split())


# --- the database, seen from outside ----------------------------------------------------


def dump(url: str) -> dict[str, tuple[list[str], list[str]]]:
    """Every table of the database (store tables too): columns and all rows."""
    engine = sa.create_engine(url)
    try:
        insp = sa.inspect(engine)
        out: dict[str, tuple[list[str], list[str]]] = {}
        with engine.connect() as conn:
            for name in sorted(insp.get_table_names()):
                cols = [c["name"] for c in insp.get_columns(name)]
                rows = conn.execute(sa.text(f'SELECT * FROM "{name}"')).all()
                out[name] = (cols, sorted(repr(tuple(r)) for r in rows))
        return out
    finally:
        engine.dispose()


def query(url: str, text: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(text), params or {})
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


def rows_of(
    url: str, table: str, where: str = "", params: dict[str, Any] | None = None
) -> set[Any]:
    return set(query(url, f"SELECT * FROM {table} {where}", params))


def seed(url: str, *, configs: int = 200, calls: int = 600, users: int = 40) -> dict[str, int]:
    src = Source(url)
    try:
        return seed_demo(src, configs=configs, calls=calls, users=users, now=SystemClock().now())
    finally:
        src.dispose()


def store_with_migration(url: str, *, percentage: int = 0, killed: bool = False) -> None:
    a = bootstrap(Settings(database_url=url), migrate=True)
    try:
        a.rollout.create(NAME, features=["stt", "tts"], actor="setup", reason="test")
        if percentage:
            a.rollout.set_percentage(NAME, percentage, actor="setup", reason="canary")
        if killed:
            a.rollout.kill(NAME, actor="setup", reason="not yet")
    finally:
        a.close()


def migration(url: str) -> Migration:
    a = bootstrap(Settings(database_url=url))
    try:
        return a.rollout.get(NAME)
    finally:
        a.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'agents.db'}"


# --- seed-demo ---------------------------------------------------------------------------


def test_seed_demo_reports_its_counts_and_refuses_a_non_empty_database(data_url: str) -> None:
    out = ok_json(
        data_url, "data", "seed-demo", "--configs", "200", "--calls", "600", "--users", "40"
    )
    assert out == {
        "source": redact_url(data_url),
        "tenants": 10,  # configs / 20
        "configs": 202,  # 200 and 2 duplicates written twice
        "calls": 600,
        "users": 40,
        "orphan_configs": 1,
        "duplicate_configs": 2,
    }
    counts = {
        t: query(data_url, f"SELECT COUNT(*) FROM {t}")[0][0]
        for t in ("tenants", "voice_agent_configs", "voice_agent_calls", "user_voice_settings")
    }
    assert counts == {
        "tenants": 10,
        "voice_agent_configs": 202,
        "voice_agent_calls": 600,
        "user_voice_settings": 40,
    }
    orphans = query(
        data_url,
        "SELECT COUNT(*) FROM voice_agent_configs WHERE tenant_id NOT IN (SELECT id FROM tenants)",
    )
    assert orphans == [(1,)]
    before = dump(data_url)

    again = run(data_url, "data", "seed-demo", "--configs", "10", "--calls", "10")
    assert again.returncode == 4, again.stderr
    assert "already has rows" in flat(again.stderr)
    assert dump(data_url) == before


# --- migrate: dry run, refusals, scope -------------------------------------------------------


def test_migrate_dry_run_shows_counts_and_samples_and_writes_nothing(data_url: str) -> None:
    seed(data_url)
    calls_todo = query(
        data_url,
        "SELECT COUNT(*) FROM voice_agent_calls WHERE outcome IS NULL OR outcome NOT IN "
        "('completed', 'abandoned', 'no_answer', 'voicemail', 'transferred', 'failed')",
    )[0][0]
    before = dump(data_url)
    out = ok_json(data_url, "data", "migrate", "--dry-run", "--sample", "2")
    assert out["dry_run"] is True
    assert (out["configs_to_migrate"], out["invalid_configs"]) == (201, 1)  # 1 orphan
    assert out["calls_to_update"] == calls_todo and 0 < calls_todo < 600
    assert out["metrics_to_generate"] == 201
    assert [s["id"] for s in out["samples"]] == ["cfg0000000", "cfg0000001"]
    for sample in out["samples"]:
        assert sample["before"]["id"] == sample["id"]
        assert "schema_version" not in sample["before"]
        after = sample["after"]
        assert (after["schema_version"], after["migrated_from"]) == ("v2", "v1")
        assert after["assistant_type"] in ("inbound", "outbound", "hybrid")
        assert set(after["personality"]) >= {"base_prompt", "greeting_message"}
    checks = {c["name"]: c for c in out["validation"]["checks"]}
    assert not checks["foreign_keys"]["passed"]
    assert checks["foreign_keys"]["examples"] == ["config cfg0000199: tenant does not exist"]

    human = run(data_url, "data", "migrate", "--dry-run")
    assert human.returncode == 0, human.stderr
    text = flat(human.stdout)
    assert "Configurations to migrate: 201" in text
    assert f"Calls to update: {calls_todo:,}" in text
    assert "No changes were made (dry run)" in text

    after = dump(data_url)
    assert after == before
    own = [t for t in after if t.startswith("switchover_")]
    assert own and all(after[t][1] == [] for t in own)  # no run, no backup, no lock


def test_bad_input_exits_non_zero_naming_the_field_and_writes_nothing(sqlite_url: str) -> None:
    seed(sqlite_url)
    before = dump(sqlite_url)
    cases = [
        # (args, exit code, field, words)
        (("data", "migrate", "--batch-size", "0"), 2, "batch_size", ["--batch-size", "not 0"]),
        (("data", "migrate", "--tenant-ids", " , "), 2, "tenant_ids", ["--tenant-ids"]),
        (("data", "migrate", "--transform", "nodots"), 2, "transform", ["package.module"]),
        (("data", "validate", "--check", "bogus"), 2, "check", ["'bogus'", "duplicates"]),
        (  # the migration is looked up first: a data rollback also moves its traffic
            ("rollback", NAME, "--level", "data", "--backup-id", "nope", "--yes"),
            7,
            None,
            ["switchover init"],
        ),
        (("rollback", NAME, "--level", "data"), 2, "backup_id", ["--backup-id"]),
        (
            ("data", "copy-keys", "--redis", REDIS_URL, "--from", "*", "--to", "v2:"),
            2,
            "from",
            ["no fixed prefix", "voice:cache:*"],
        ),
    ]
    results = each(sqlite_url, *(args for args, *_ in cases))
    for (args, code, field, words), proc in zip(cases, results, strict=True):
        message = flat(proc.stderr)
        assert proc.returncode == code, (args, proc.returncode, proc.stderr)
        assert (f"error ({field}):" if field else "error:") in message, (args, message)
        for word in words:
            assert word in message, (args, word, message)
    assert dump(sqlite_url) == before

    # the real command line, stdin not a terminal: --skip-backup asks, so it needs --yes
    proc = run_process(sqlite_url, "data", "migrate", "--skip-backup")
    assert proc.returncode == 2, proc.stderr
    message = flat(proc.stderr)
    assert "no backup to restore" in message  # the warning
    assert "error (yes):" in message and "Add --yes to confirm" in message
    assert "Traceback" not in proc.stderr
    assert dump(sqlite_url) == before


def test_migrate_tenant_ids_only_touches_those_tenants_and_backups_lists_it(
    sqlite_url: str,
) -> None:
    db = sqlite_url
    seed(db)
    mine = ("t00001", "t00002")
    scope = {"a": mine[0], "b": mine[1]}
    in_scope = "WHERE tenant_id IN (:a, :b)"
    others = "WHERE tenant_id NOT IN (:a, :b)"
    other_configs = rows_of(db, "voice_agent_configs", others, scope)
    other_calls = rows_of(db, "voice_agent_calls", others, scope)
    n_configs = len(rows_of(db, "voice_agent_configs", in_scope, scope))
    n_calls = len(rows_of(db, "voice_agent_calls", in_scope, scope))
    assert n_configs > 0 and n_calls > 0

    run_ = ok_json(db, "data", "migrate", "--tenant-ids", ",".join(mine), "--batch-size", "7")
    assert run_["status"] == "completed"
    assert run_["options"]["tenant_ids"] == list(mine)
    assert run_["counts"]["configs_migrated"] == n_configs
    assert run_["counts"]["metrics_generated"] == n_configs
    assert BACKUP_ID.match(run_["backup_id"]), run_["backup_id"]

    versions = query(
        db, f"SELECT DISTINCT schema_version FROM voice_agent_configs {in_scope}", scope
    )
    assert versions == [("v2",)]
    assert rows_of(db, "voice_agent_configs", others, scope) == other_configs
    assert rows_of(db, "voice_agent_calls", others, scope) == other_calls
    metric_tenants = query(db, "SELECT DISTINCT tenant_id FROM voice_agent_metrics")
    assert {t for (t,) in metric_tenants} == set(mine)

    listed, validated = each(
        db,
        ("data", "backups", "--json"),
        ("data", "validate", "--tenant-ids", ",".join(mine), "--json"),
    )
    assert listed.returncode == 0, listed.stderr
    (backup,) = json.loads(listed.stdout)
    assert backup["id"] == run_["backup_id"]
    assert backup["tenant_ids"] == list(mine)
    assert (backup["configs"], backup["calls"], backup["metrics"]) == (n_configs, n_calls, 0)
    assert re.fullmatch(r"[0-9a-f]{64}", backup["checksum"])
    assert re.fullmatch(r"\d+s ago", backup["age"]), backup["age"]

    assert validated.returncode == 0, validated.stderr
    checks = {c["name"]: c for c in json.loads(validated.stdout)["checks"]}
    assert checks["schema_version"]["passed"] and checks["record_count"]["passed"]
    assert run_["backup_id"] in checks["record_count"]["message"]


# --- validate ------------------------------------------------------------------------------


def test_validate_exit_codes_single_checks_and_fix(sqlite_url: str) -> None:
    db = sqlite_url
    seed(db)  # not migrated: an orphan tenant (critical), duplicates (medium)
    full, human, dup, two = each(
        db,
        ("data", "validate", "--json"),
        ("data", "validate"),
        ("data", "validate", "--check", "duplicates", "--json"),
        ("data", "validate", "--check", "duplicates,schema-version", "--json"),
    )
    assert full.returncode == 1, full.stderr
    report = json.loads(full.stdout)
    assert [c["name"] for c in report["checks"]] == [
        "record_count",
        "data_integrity",
        "foreign_keys",
        "schema_version",
        "duplicates",
        "value_constraints",
    ]
    fk = report["checks"][2]
    assert (fk["severity"], fk["passed"]) == ("critical", False)
    assert report["ok"] is False

    assert human.returncode == 1
    text = flat(human.stdout)
    assert "foreign_keys" in text and "critical" in text and "a critical check failed" in text

    assert dup.returncode == 0, dup.stderr  # a medium failure does not fail validation
    only = json.loads(dup.stdout)
    assert [c["name"] for c in only["checks"]] == ["duplicates"]
    (d,) = only["checks"]
    assert (d["severity"], d["passed"], d["problems"]) == ("medium", False, 2)
    assert sorted(d["examples"]) == [
        f"config cfg{i:07d}d duplicates cfg{i:07d} (same tenant and name, both enabled)"
        for i in (50, 150)
    ]
    assert two.returncode == 0, two.stderr
    assert [c["name"] for c in json.loads(two.stdout)["checks"]] == [
        "duplicates",
        "schema_version",
    ]

    fixed = run(db, "data", "validate", "--check", "duplicates", "--fix")
    assert fixed.returncode == 0, fixed.stderr
    text = flat(fixed.stdout)
    assert "--fix changed 2 value(s):" in text
    for i in (50, 150):
        assert (
            f"voice_agent_configs cfg{i:07d}d enabled: True → False (duplicate of cfg{i:07d})"
            in text
        )
    enabled = query(
        db,
        "SELECT id, enabled FROM voice_agent_configs WHERE id IN "
        "('cfg0000050', 'cfg0000050d', 'cfg0000150', 'cfg0000150d') ORDER BY id",
    )
    assert [(i, bool(e)) for i, e in enabled] == [
        ("cfg0000050", True),
        ("cfg0000050d", False),
        ("cfg0000150", True),
        ("cfg0000150d", False),
    ]
    after = ok_json(db, "data", "validate", "--check", "duplicates")
    assert after["checks"][0]["passed"] is True


# --- backups, rollback --level data --------------------------------------------------------


def test_rollback_level_data_restores_the_backup_and_rolls_the_migration_back(
    data_url: str,
) -> None:
    db = data_url
    store_with_migration(db, percentage=25)
    seed(db)
    data_tables = ("voice_agent_configs", "voice_agent_calls", "voice_agent_metrics")
    original = {t: rows_of(db, t) for t in data_tables}

    run_ = ok_json(db, "data", "migrate", "--skip-invalid", "--batch-size", "100")
    assert run_["status"] == "completed"
    backup_id = run_["backup_id"]
    assert query(db, "SELECT COUNT(*) FROM voice_agent_configs WHERE schema_version = 'v2'") == [
        (201,)
    ]

    # a tampered backup restores nothing, and traffic is left alone
    copy = f"switchover_{backup_id}_voice_agent_configs"
    (name,) = query(db, f"SELECT name FROM {copy} WHERE id = 'cfg0000003'")[0]
    query(db, f"UPDATE {copy} SET name = 'tampered' WHERE id = 'cfg0000003'")
    before = dump(db)
    tampered = run(db, "rollback", NAME, "--level", "data", "--backup-id", backup_id, "--yes")
    assert tampered.returncode == 9, tampered.stderr
    assert "damaged" in flat(tampered.stderr) and "nothing was restored" in flat(tampered.stderr)
    assert dump(db) == before
    query(db, f"UPDATE {copy} SET name = :n WHERE id = 'cfg0000003'", {"n": name})

    # not at a terminal and no --yes: refused, nothing changed
    before = dump(db)
    unconfirmed = run(db, "rollback", NAME, "--level", "data", "--backup-id", backup_id)
    assert unconfirmed.returncode == 2
    assert "--yes" in flat(unconfirmed.stderr)
    assert dump(db) == before
    assert (migration(db).percentage, migration(db).enabled) == (25, True)

    out = ok_json(db, "rollback", NAME, "--level", "data", "--backup-id", backup_id, "--yes")
    assert out["level"] == "data" and out["checksum_verified"] is True
    assert out["restored"] == {"configs": 202, "calls": 600, "metrics": 0}
    assert out["traffic"]["level"] == "total"
    m = migration(db)
    assert (m.percentage, m.enabled) == (0, False)
    # the data is back on v1, as it was before the migration
    assert {t: rows_of(db, t) for t in data_tables} == original
    versions = {v for (v,) in query(db, "SELECT DISTINCT schema_version FROM voice_agent_configs")}
    assert "v2" not in versions


def test_rollback_level_data_of_an_unknown_migration_changes_nothing(sqlite_url: str) -> None:
    """A mistyped name (voice_v3 for voice_v2) is refused before anything is restored:
    restoring the data while live traffic stays on the candidate would be worse than both."""
    db = sqlite_url
    seed(db, configs=60, calls=100)
    run_ = ok_json(db, "data", "migrate", "--skip-invalid", "--batch-size", "100")
    migrated = rows_of(db, "voice_agent_configs")
    store_with_migration(db)  # the store exists, but holds no voice_v3
    before = dump(db)
    proc = run(
        db, "rollback", "voice_v3", "--level", "data", "--backup-id", run_["backup_id"], "-y"
    )
    assert proc.returncode == 3, proc.stderr
    assert "voice_v3" in flat(proc.stderr) and "does not exist" in flat(proc.stderr)
    assert rows_of(db, "voice_agent_configs") == migrated
    assert dump(db) == before


# --- migrate --enable-rollout ----------------------------------------------------------------


def test_migrate_enable_rollout_switches_the_migration_on_at_the_initial_percentage(
    data_url: str,
) -> None:
    db = data_url
    store_with_migration(db, killed=True)
    seed(db, configs=60, calls=100)
    before = dump(db)
    unknown = run(db, "data", "migrate", "--skip-invalid", "--enable-rollout", "nope", "--yes")
    assert unknown.returncode == 3, unknown.stderr
    assert "'nope'" in flat(unknown.stderr)
    assert dump(db) == before  # refused before any write

    out = ok_json(
        db,
        "data",
        "migrate",
        "--skip-invalid",
        "--enable-rollout",
        NAME,
        "--initial-percentage",
        "5",
        "--yes",
        "--by",
        "data-team",
    )
    assert out["status"] == "completed"
    assert out["rollout"] == {"migration": NAME, "percentage": 5, "enabled": True}
    m = migration(db)
    assert (m.enabled, m.percentage) == (True, 5)

    audit = ok_json(db, "audit", NAME)
    reason = f"data migration {out['id']} completed"
    newest = [(e["action"], e["actor"], e["reason"]) for e in audit[:2]]
    assert newest == [
        ("set_percentage", "data-team", reason),
        ("resume", "data-team", reason),
    ]
    assert (audit[0]["before"]["percentage"], audit[0]["after"]["percentage"]) == (0, 5)
    assert (audit[1]["before"]["enabled"], audit[1]["after"]["enabled"]) == (False, True)


# --- the legacy sunset: copy-keys and verify-settings -------------------------------------


@pytest.fixture
def redis_prefix() -> Iterator[tuple[Any, str]]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        message = (
            f"Redis not reachable at {REDIS_URL} ({type(exc).__name__}); start it or set "
            "SWITCHOVER_TEST_REDIS_URL to run the copy-keys tests"
        )
        if REQUIRE_SERVICES:
            pytest.fail(message + " (SWITCHOVER_REQUIRE_POSTGRES=1 makes them required)")
        pytest.skip(message)
    prefix = f"swo-test-{uuid.uuid4().hex[:10]}"
    try:
        yield client, prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_copy_keys_copies_strings_hashes_and_lists_under_the_new_prefix(
    redis_prefix: tuple[Any, str], tmp_path: Path
) -> None:
    r, p = redis_prefix
    old, new = f"{p}:voice:cache:", f"{p}:voice_v2:cache:"
    r.set(old + "greeting:es", "¡Hola! 🌮")
    r.hset(old + "menu:t1", mapping={"taco": "pastor", "precio": "25"})
    r.rpush(old + "queue:t1", "a", "b", "c")
    r.expire(old + "menu:t1", 5000)
    r.set(f"{p}:voice:other:x", "not in the pattern")
    r.set(new + "greeting:es", "fresher v2 value")  # v2 wrote it already
    args = ("data", "copy-keys", "--redis", REDIS_URL, "--from", old + "*", "--to", new)

    dry = ok_json(None, *args, "--ttl", "120", "--dry-run")
    assert (dry["dry_run"], dry["scanned"], dry["copied"], dry["skipped_existing"]) == (
        True,
        3,
        2,
        1,
    )
    assert sorted(r.scan_iter(match=new + "*")) == [(new + "greeting:es").encode()]

    out = ok_json(None, *args, "--ttl", "120")
    assert (out["dry_run"], out["scanned"], out["copied"], out["skipped_existing"]) == (
        False,
        3,
        2,
        1,
    )
    assert out["bytes"] > 0
    assert r.type(new + "menu:t1") == b"hash"
    assert r.hgetall(new + "menu:t1") == {b"taco": b"pastor", b"precio": b"25"}
    assert r.type(new + "queue:t1") == b"list"
    assert r.lrange(new + "queue:t1", 0, -1) == [b"a", b"b", b"c"]
    for key in ("menu:t1", "queue:t1"):
        assert 100 <= r.ttl(new + key) <= 120, key
    # the existing v2 key is left alone, and nothing outside the pattern moved
    assert r.get(new + "greeting:es") == b"fresher v2 value"
    assert r.ttl(new + "greeting:es") == -1
    assert not list(r.scan_iter(match=f"{p}:voice_v2:other*"))
    # a copy, not a move: the legacy keys are as they were
    assert r.get(old + "greeting:es") == "¡Hola! 🌮".encode()
    assert 4900 <= r.ttl(old + "menu:t1") <= 5000

    # --replace overwrites; --ttl 0 keeps each key's own TTL (none stays none)
    again = ok_json(None, *args, "--ttl", "0", "--replace")
    assert (again["copied"], again["skipped_existing"]) == (3, 0)
    assert r.get(new + "greeting:es") == "¡Hola! 🌮".encode()
    assert r.ttl(new + "greeting:es") == -1
    assert 4900 <= r.ttl(new + "menu:t1") <= 5000


def test_verify_settings_lists_the_users_missing_in_v2(sqlite_url: str) -> None:
    db = sqlite_url
    seed(db, configs=10, calls=0, users=40)
    assert ok_json(db, "data", "verify-settings") == {
        "legacy": 40,
        "v2": 40,
        "missing": [],
        "missing_count": 0,
        "ok": True,
    }
    query(db, "DELETE FROM voice_v2_user_settings WHERE user_id IN ('user000023', 'user000007')")
    as_json, human = each(db, ("data", "verify-settings", "--json"), ("data", "verify-settings"))
    assert as_json.returncode == 1, as_json.stderr
    assert json.loads(as_json.stdout) == {
        "legacy": 40,
        "v2": 38,
        "missing": ["user000007", "user000023"],
        "missing_count": 2,
        "ok": False,
    }
    assert human.returncode == 1
    text = flat(human.stdout)
    assert "MISSING: 40 legacy users, 38 in v2, 2 missing" in text
    assert "user000007" in text and "user000023" in text

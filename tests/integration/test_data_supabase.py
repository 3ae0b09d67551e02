"""The data migration on a real (Supabase-like) schema: uuid ids, timestamptz, jsonb, a
text[] array, numeric, an enum, bytea, real foreign keys and columns switchover does not
know. Migrate, validate and restore on SQLite and PostgreSQL, with every row hashed
before and after; an unfinished run blocks a new one until resumed or abandoned; bad
columns are refused up front, by the dry run alike, naming the table and the column."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from switchover.core.clock import ManualClock
from switchover.data import backup as backups
from switchover.data import schema as s
from switchover.data.checks import Checker
from switchover.data.migrate import MigrateOptions, Migrator, get_run, list_runs
from switchover.data.source import Scope, Source
from switchover.errors import ConflictError, DataCheckError, LockHeldError, ValidationError
from switchover.store.locks import NamedLock

sys.path.insert(0, str(Path(__file__).resolve().parent))
import supabase_schema as sb


@pytest.fixture
def source(data_url: str) -> Iterator[Source]:
    src = Source(data_url)
    yield src
    sb.drop(src.engine)
    src.dispose()


@pytest.fixture
def made(source: Source) -> dict[str, Any]:
    return sb.create(source.engine)


def migrator(source: Source) -> Migrator:
    return Migrator(source, ManualClock(sb.NOW))


def test_migrate_writes_typed_v2_values_and_restore_gives_back_identical_rows(
    source: Source, made: dict[str, Any]
) -> None:
    original = sb.digest(source.engine)
    preview = migrator(source).preview(MigrateOptions(skip_invalid=True))
    assert (preview.configs_to_migrate, preview.invalid_configs) == (38, 2)

    run = migrator(source).migrate(MigrateOptions(batch_size=7, skip_invalid=True))
    assert run.status == "completed", run.error
    assert run.counts.configs_migrated == 38
    assert run.counts.configs_skipped == 2
    assert run.counts.metrics_generated == 38
    with source.engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT voice_config, personality, capabilities, migrated_at, monthly_budget, "
                "tier, avatar FROM voice_agent_configs WHERE schema_version = 'v2' "
                "AND prompt LIKE 'Eres%' ORDER BY id LIMIT 1"
            )
        ).one()
        metrics = conn.execute(
            sa.text("SELECT total_calls, avg_duration_seconds FROM voice_agent_metrics")
        ).all()
    voice, person, caps, migrated_at = row[0], row[1], row[2], row[3]
    if source.sqlite:  # JSON text in JSONB/TEXT[]-declared columns
        import orjson

        voice, person, caps = orjson.loads(voice), orjson.loads(person), orjson.loads(caps)
    else:  # jsonb comes back parsed, text[] as a list, timestamptz as a datetime
        assert isinstance(row[0], dict) and isinstance(row[2], list)
        assert migrated_at.isoformat().startswith("2026-11-30T12:00:00")
    assert voice["language"] == "es-MX"
    assert person["special_instructions"] == [
        "Agenda citas y confirma la hora.",
        "Transfer to a human agent when asked.",
    ]
    assert caps == ["appointment_booking", "call_transfer"]
    assert len(metrics) == 38 and all(m[0] == 3 for m in metrics)
    # the unknown columns were left exactly as they were
    assert sb.digest(source.engine) != original

    backup = backups.verify(source, run.backup_id or "")
    assert (backup.configs, backup.calls, backup.metrics) == (40, 120, 0)
    assert backups.label(backup) == f"pre-run backup of {run.id}"
    restored = backups.restore(source, backup.id)
    assert restored["checksum_verified"]
    assert sb.digest(source.engine) == original  # every row, every column, every type


def test_backup_tables_keep_the_source_types(source: Source, made: dict[str, Any]) -> None:
    run = migrator(source).migrate(MigrateOptions(skip_invalid=True))
    copy = f"switchover_{run.backup_id}_voice_agent_configs"
    with source.engine.connect() as conn:
        if source.sqlite:
            declared = {r[1]: r[2] for r in conn.exec_driver_sql(f"PRAGMA table_info({copy})")}
        else:
            declared = dict(
                conn.execute(
                    sa.text(
                        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                        "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0"
                    ),
                    {"t": copy},
                ).all()
            )
    if source.sqlite:
        assert declared["created_at"] == "TIMESTAMPTZ" and declared["avatar"] == "BLOB"
    else:
        assert declared["id"] == "uuid"
        assert declared["created_at"] == "timestamp with time zone"
        assert declared["capabilities"] == "text[]"
        assert declared["monthly_budget"] == "numeric(12,4)"
        assert declared["tier"] == "agent_tier"
        assert declared["avatar"] == "bytea"
        assert declared["settings"] == "jsonb"


def test_restore_puts_back_deleted_rows_under_real_foreign_keys(
    source: Source, made: dict[str, Any]
) -> None:
    original = sb.digest(source.engine)
    run = migrator(source).migrate(MigrateOptions(skip_invalid=True))
    with source.engine.begin() as conn:  # ON DELETE CASCADE takes its calls and metrics
        conn.execute(
            sa.text("DELETE FROM voice_agent_configs WHERE id = :id"),
            {"id": _id(source, made["tenants"][0], "voice_agent_configs", "tenant_id")},
        )
    backups.restore(source, run.backup_id or "")
    assert sb.digest(source.engine) == original


def _id(source: Source, tenant: uuid.UUID, table: str, column: str) -> Any:
    with source.engine.connect() as conn:
        return conn.execute(
            sa.text(f"SELECT id FROM {table} WHERE {column} = :t ORDER BY id LIMIT 1"),
            {"t": str(tenant) if source.sqlite else tenant},
        ).scalar_one()


def test_validate_agrees_with_skip_invalid_and_warns_of_legacy_outcomes(
    source: Source, made: dict[str, Any]
) -> None:
    before = Checker(source, Scope(None)).run()
    assert any("calls with legacy outcome format" in w for w in before.warnings)
    assert not before.ok  # the two configs without a name are critical before the run

    run = migrator(source).migrate(MigrateOptions(skip_invalid=True))
    report = Checker(source, Scope(None)).run()
    assert report.ok, [c.to_dict() for c in report.critical_failed]
    left = [w for w in report.warnings if "left on v1" in w]
    assert len(left) == 1 and left[0].startswith(f"{run.counts.configs_skipped} configs")
    assert run.id in left[0]
    assert all(str(i) in left[0] for i in made["invalid"])
    assert not any("legacy outcome" in w for w in report.warnings)  # all inferred
    by_name = {c.name: c for c in report.checks}
    assert by_name["schema_version"].problems == run.counts.configs_skipped == 2


def test_validate_fix_holds_the_lock(source: Source, made: dict[str, Any]) -> None:
    migrator(source).migrate(MigrateOptions(skip_invalid=True))
    holder = NamedLock(
        source.store, backups.LOCK_NAME, "someone else pid=1@elsewhere", ttl=300.0,
        table=s.data_locks,
    )  # fmt: skip
    assert holder.acquire()
    try:
        before = sb.digest(source.engine)
        with pytest.raises(LockHeldError):
            Checker(source, Scope(None)).run(fix=True)
        assert sb.digest(source.engine) == before
    finally:
        holder.release()
    report = Checker(source, Scope(None)).run(fix=True)
    fixed = [f for c in report.checks for f in c.fixed]
    assert fixed and report.backup_id is not None
    assert backups.restore(source, report.backup_id)["checksum_verified"]


def test_an_unfinished_run_blocks_a_new_one_until_abandoned(
    source: Source, made: dict[str, Any], tmp_path: Path
) -> None:
    original = sb.digest(source.engine)
    module = f"half_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "from switchover.core.transform import to_v2\n"
        "seen = []\n"
        "def boom(row, now):\n"
        "    seen.append(row['id'])\n"
        "    if len(seen) > 20:\n"
        "        raise RuntimeError('boom')\n"
        "    return to_v2(row, now)\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        options = MigrateOptions(batch_size=5, skip_invalid=True, transform=f"{module}:boom")
        with pytest.raises(ValidationError):
            migrator(source).migrate(options)
    finally:
        sys.path.remove(str(tmp_path))
    (failed,) = list_runs(source)
    assert failed.status == "failed" and failed.step == "transform"
    assert failed.counts.configs_migrated == 15  # three batches of five committed
    half = sb.digest(source.engine)

    for attempt in (
        lambda: migrator(source).migrate(MigrateOptions(skip_invalid=True)),
        lambda: migrator(source).preview(MigrateOptions(skip_invalid=True)),
    ):
        with pytest.raises(ConflictError) as refused:
            attempt()
        text = refused.value.message
        assert f"--resume {failed.id}" in text and f"--abandon {failed.id}" in text
        assert failed.backup_id in text
    assert sb.digest(source.engine) == half  # refused: nothing written

    undone = migrator(source).abandon(failed.id)
    assert undone["backup_id"] == failed.backup_id and undone["checksum_verified"]
    assert get_run(source, failed.id).status == "abandoned"
    assert sb.digest(source.engine) == original
    with pytest.raises(ConflictError):
        migrator(source).resume(failed.id)
    again = migrator(source).migrate(MigrateOptions(skip_invalid=True))
    assert again.status == "completed" and again.counts.configs_migrated == 38


@pytest.mark.parametrize(
    ("ddl", "field"),
    [
        ("ALTER TABLE voice_agent_configs DROP COLUMN language", "voice_agent_configs.language"),
        (
            "ALTER TABLE voice_agent_calls RENAME COLUMN duration_seconds TO seconds",
            "voice_agent_calls.duration_seconds",
        ),
    ],
)
def test_a_missing_column_is_refused_by_the_dry_run_and_the_run_naming_it(
    source: Source, made: dict[str, Any], ddl: str, field: str
) -> None:
    with source.engine.begin() as conn:
        conn.exec_driver_sql(ddl)
    tables_before = sorted(sa.inspect(source.engine).get_table_names())
    rows_before = sb.digest(source.engine)
    for attempt in (
        lambda: migrator(source).preview(MigrateOptions()),
        lambda: migrator(source).migrate(MigrateOptions()),
    ):
        with pytest.raises(ValidationError) as refused:
            attempt()
        assert refused.value.field == field and field in refused.value.message
    assert sorted(sa.inspect(source.engine).get_table_names()) == tables_before
    assert sb.digest(source.engine) == rows_before


def test_a_v2_column_of_the_wrong_type_is_refused_up_front(source: Source) -> None:
    sb.create(source.engine, configs=4)
    with source.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE voice_agent_configs DROP COLUMN voice_config")
        conn.exec_driver_sql("ALTER TABLE voice_agent_configs ADD COLUMN voice_config integer")
    rows_before = sb.digest(source.engine)
    for attempt in (
        lambda: migrator(source).preview(MigrateOptions()),
        lambda: migrator(source).migrate(MigrateOptions()),
    ):
        with pytest.raises(ValidationError) as refused:
            attempt()
        assert refused.value.field == "voice_agent_configs.voice_config"
        assert "json" in refused.value.message
    assert sb.digest(source.engine) == rows_before
    assert not any(t.startswith("switchover_") for t in sa.inspect(source.engine).get_table_names())


@pytest.mark.postgres
def test_a_legacy_write_during_a_batch_is_not_lost_from_the_v2_fields(
    pg_url: str, tmp_path: Path
) -> None:
    """A legacy writer updates a config's prompt while the batch holding that config is
    between its read and its write: the writer waits for the batch's row lock, its v1
    value is kept, and the catch-up step migrates the row again from it."""
    import threading
    import time

    src = Source(pg_url)
    try:
        sb.create(src.engine, configs=30)
        with src.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(sa.text(
                "SELECT id FROM voice_agent_configs WHERE TRIM(name) <> '' ORDER BY id"
            ))]  # fmt: skip
        target = ids[12]
        module = f"slow_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{module}.py").write_text(
            "import threading, time\n"
            "from switchover.core.transform import to_v2\n"
            "reached = threading.Event()\n"
            "target = None\n"
            "def slow(row, now):\n"
            "    if str(row['id']) == target and not reached.is_set():\n"
            "        reached.set()\n"
            "        time.sleep(0.6)  # the writer is now waiting for this batch's row lock\n"
            "    return to_v2(row, now)\n"
        )
        sys.path.insert(0, str(tmp_path))
        plugin = __import__(module)
        plugin.target = str(target)
        new_prompt = "You make outbound follow-up calls for the campaign about payments."
        waited: list[float] = []

        def legacy_writer() -> None:
            assert plugin.reached.wait(30)
            engine = sa.create_engine(pg_url)
            t = time.monotonic()
            with engine.begin() as conn:
                conn.execute(
                    sa.text("UPDATE voice_agent_configs SET prompt = :p WHERE id = :id"),
                    {"p": new_prompt, "id": target},
                )
            waited.append(time.monotonic() - t)
            engine.dispose()

        writer = threading.Thread(target=legacy_writer)
        writer.start()
        run = Migrator(src, ManualClock(sb.NOW)).migrate(
            MigrateOptions(batch_size=5, skip_invalid=True, transform=f"{module}:slow")
        )
        writer.join(30)
        assert run.status == "completed", run.error
        assert waited and waited[0] >= 0.3  # it waited for the batch's row lock
        with src.engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT prompt, assistant_type, capabilities, personality "
                    "FROM voice_agent_configs WHERE id = :id"
                ),
                {"id": target},
            ).one()
        assert row[0] == new_prompt  # the legacy write is kept in v1
        assert (row[1], row[2]) == ("outbound", ["payments"])  # and reached v2
        assert row[3]["base_prompt"].startswith("You make outbound follow-up calls")
    finally:
        sys.path.remove(str(tmp_path)) if str(tmp_path) in sys.path else None
        sb.drop(src.engine)
        src.dispose()


def test_the_dry_run_checks_the_lock_like_the_run(source: Source, made: dict[str, Any]) -> None:
    source.ensure_own()
    holder = NamedLock(
        source.store, backups.LOCK_NAME, "a restore pid=1@elsewhere", ttl=300.0,
        table=s.data_locks,
    )  # fmt: skip
    assert holder.acquire()
    try:
        for attempt in (
            lambda: migrator(source).preview(MigrateOptions(skip_invalid=True)),
            lambda: migrator(source).migrate(MigrateOptions(skip_invalid=True)),
        ):
            with pytest.raises(LockHeldError) as refused:
                attempt()
            assert "a restore pid=1@elsewhere" in refused.value.message
    finally:
        holder.release()
    assert migrator(source).preview(MigrateOptions(skip_invalid=True)).configs_to_migrate == 38


def test_restore_bypasses_an_updated_at_trigger_and_turns_it_back_on(
    source: Source, made: dict[str, Any]
) -> None:
    """Supabase's moddatetime pattern: a trigger stamps updated_at on every UPDATE. On
    PostgreSQL the restore sets rows back with that trigger off (in its transaction), so
    the rows match the backup, and the trigger works again afterwards. SQLite cannot turn
    a trigger off: the restore refuses, says what to do, and restores nothing."""
    if source.sqlite:
        touch = (
            "CREATE TRIGGER touch_configs AFTER UPDATE OF name, voice_config "
            "ON voice_agent_configs BEGIN UPDATE voice_agent_configs "
            "SET updated_at = strftime('%Y-%m-%dT%H:%M:%f', 'now') WHERE id = NEW.id; END"
        )
        statements = [touch]
    else:
        statements = [
            "CREATE OR REPLACE FUNCTION swo_test_touch() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN NEW.updated_at = clock_timestamp(); RETURN NEW; END $$",
            "CREATE TRIGGER touch_configs BEFORE UPDATE ON voice_agent_configs "
            "FOR EACH ROW EXECUTE FUNCTION swo_test_touch()",
        ]
    with source.engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    try:
        original = sb.digest(source.engine)
        run = migrator(source).migrate(MigrateOptions(skip_invalid=True))
        assert run.status == "completed", run.error
        migrated = sb.digest(source.engine)
        assert migrated != original

        if source.sqlite:
            with pytest.raises(DataCheckError, match="drop it for the restore"):
                backups.restore(source, run.backup_id or "")
            assert sb.digest(source.engine) == migrated  # rolled back: nothing restored
            return
        restored = backups.restore(source, run.backup_id or "")
        assert restored["triggers_bypassed"] == ["voice_agent_configs.touch_configs"]
        assert sb.digest(source.engine) == original
        with source.engine.begin() as conn:
            mode = conn.execute(
                sa.text("SELECT tgenabled FROM pg_trigger WHERE tgname = 'touch_configs'")
            ).scalar()
            conn.execute(sa.text("UPDATE voice_agent_configs SET name = name"))
            stamped = conn.execute(
                sa.text("SELECT count(*) FROM voice_agent_configs WHERE updated_at > now()")
            ).scalar()
        assert mode == "O"
        assert stamped == 40  # the trigger fires again
    finally:
        with source.engine.begin() as conn:
            if source.sqlite:
                conn.execute(sa.text("DROP TRIGGER IF EXISTS touch_configs"))
            else:
                conn.execute(sa.text("DROP TRIGGER IF EXISTS touch_configs ON voice_agent_configs"))
                conn.execute(sa.text("DROP FUNCTION IF EXISTS swo_test_touch()"))

"""No unsafe path through ``switchover data`` and ``rollback --level data`` (issue 19).

On the Supabase-like schema of ``tests/integration/supabase_schema.py``: bad columns
exit 2 naming the table and column and write nothing, in the dry run too; a data
rollback that cannot restore leaves traffic as it was; ``migrate`` after an unfinished
run refuses and points to ``--resume`` and ``--abandon``; and a real ``switchover data
migrate`` killed with SIGKILL halfway on PostgreSQL loses nothing: the next
``migrate`` refuses, ``--resume`` finishes with exact counts, and the backup restores
every row identically.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from switchover.bootstrap import bootstrap
from switchover.cli.main import app as cli_app
from switchover.data.migrate import list_runs
from switchover.data.source import Source
from switchover.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import supabase_schema as sb

NAME = "voice_v2"
ENV = {
    "SWITCHOVER_DATABASE_URL": None,
    "SWITCHOVER_DATA_URL": None,
    "SWITCHOVER_ACTOR": "ops",
    "COLUMNS": "200",
}


def cli(db: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli_app, ["--db", db, *args], env=ENV)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def ok_json(db: str, *args: str) -> Any:
    code, out, err = cli(db, *args, "--json")
    assert code == 0, (args, out, err)
    return json.loads(out)


def traffic(db: str) -> tuple[int, bool]:
    a = bootstrap(Settings(database_url=db))
    try:
        m = a.rollout.get(NAME)
        return m.percentage, m.enabled
    finally:
        a.close()


@pytest.fixture
def db(data_url: str) -> Iterator[str]:
    """The store and the agent data in one database, a migration at 25 %."""
    a = bootstrap(Settings(database_url=data_url), migrate=True)
    try:
        a.rollout.create(NAME, features=["stt"], actor="setup", reason="test")
        a.rollout.set_percentage(NAME, 25, actor="setup", reason="canary")
    finally:
        a.close()
    engine = sa.create_engine(data_url)
    sb.create(engine, configs=24, calls_each=2)
    yield data_url
    sb.drop(engine)
    engine.dispose()


def digest(db: str) -> dict[str, str]:
    engine = sa.create_engine(db)
    try:
        return sb.digest(engine)
    finally:
        engine.dispose()


def test_a_wrong_column_type_exits_2_naming_table_and_column_and_writes_nothing(db: str) -> None:
    engine = sa.create_engine(db)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE voice_agent_configs DROP COLUMN capabilities")
        conn.exec_driver_sql("ALTER TABLE voice_agent_configs ADD COLUMN capabilities integer")
    tables = sorted(sa.inspect(engine).get_table_names())
    engine.dispose()
    before = digest(db)
    for args in (("--dry-run",), ()):
        code, _out, err = cli(db, "data", "migrate", "--skip-invalid", *args)
        assert code == 2, err
        assert "voice_agent_configs.capabilities" in err and "integer" in err.lower()
        assert "Nothing was written" in err
    engine = sa.create_engine(db)
    assert sorted(sa.inspect(engine).get_table_names()) == tables
    engine.dispose()
    assert digest(db) == before


def test_a_data_rollback_that_cannot_restore_leaves_traffic_as_it_was(db: str) -> None:
    run = ok_json(db, "data", "migrate", "--skip-invalid")
    assert run["status"] == "completed"
    engine = sa.create_engine(db)
    with engine.begin() as conn:  # the table changed shape since the backup
        conn.exec_driver_sql("ALTER TABLE voice_agent_calls ADD COLUMN sentiment text")
    engine.dispose()
    before = digest(db)
    code, _out, err = cli(
        db, "rollback", NAME, "--level", "data", "--backup-id", run["backup_id"], "--yes"
    )
    assert code == 2, err
    assert "voice_agent_calls.sentiment" in err and "nothing was restored" in err
    assert traffic(db) == (25, True)  # not rolled back: nothing could be restored
    assert digest(db) == before

    # a typo in the migration's name: exit 3, nothing restored, traffic as it was
    code, _out, err = cli(
        db, "rollback", "voice_v3", "--level", "data", "--backup-id", run["backup_id"], "-y"
    )
    assert code == 3 and "voice_v3" in err
    assert traffic(db) == (25, True) and digest(db) == before

    backups = ok_json(db, "data", "backups")
    assert backups[0]["label"] == f"pre-run backup of {run['id']}"


def _half_run(db: str, tmp_path: Path) -> str:
    """A run that failed in its transform step (a plugged-in transform raises)."""
    (tmp_path / "halfway.py").write_text(
        "from switchover.core.transform import to_v2\n"
        "seen = []\n"
        "def boom(row, now):\n"
        "    seen.append(1)\n"
        "    if len(seen) > 10:\n"
        "        raise RuntimeError('boom')\n"
        "    return to_v2(row, now)\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        code, _out, err = cli(
            db, "data", "migrate", "--skip-invalid", "--batch-size", "4",
            "--transform", "halfway:boom",
        )  # fmt: skip
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("halfway", None)
    assert code == 2 and "transform failed" in err, err
    src = Source(db)
    try:
        (run,) = list_runs(src)
    finally:
        src.dispose()
    assert run.status == "failed"
    return run.id


def test_migrate_after_a_failed_run_refuses_and_abandon_restores_its_backup(
    db: str, tmp_path: Path
) -> None:
    original = digest(db)
    run_id = _half_run(db, tmp_path)
    half = digest(db)
    assert half != original
    for args in (("--dry-run",), ()):
        code, _out, err = cli(db, "data", "migrate", "--skip-invalid", *args)
        assert code == 4, err
        assert f"--resume {run_id}" in err and f"--abandon {run_id}" in err
    assert digest(db) == half

    code, _out, err = cli(db, "data", "migrate", "--abandon", run_id)  # no --yes: refused
    assert code == 2 and "--yes" in err
    out = ok_json(db, "data", "migrate", "--abandon", run_id, "--yes")
    assert out["run"] == run_id and out["checksum_verified"] is True
    assert digest(db) == original
    runs = ok_json(db, "data", "runs")
    assert runs[0]["status"] == "abandoned"

    done = ok_json(db, "data", "migrate", "--skip-invalid")
    assert done["status"] == "completed" and done["counts"]["configs_migrated"] == 22


@pytest.mark.postgres
def test_sigkill_halfway_on_postgres_loses_nothing_and_resume_finishes(
    pg_url: str, tmp_path: Path
) -> None:
    engine = sa.create_engine(pg_url)
    sb.create(engine, configs=120, calls_each=2)
    original = sb.digest(engine)
    env = {**os.environ, "SWITCHOVER_DATABASE_URL": pg_url}
    env.pop("SWITCHOVER_DATA_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "switchover", "data", "migrate", "--skip-invalid",
         "--batch-size", "5", "--throttle-ms", "40", "--json"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    src = Source(pg_url)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # halfway through the transform step
            runs = list_runs(src) if sa.inspect(engine).has_table("switchover_data_runs") else []
            if runs and runs[0].step == "transform" and runs[0].counts.configs_migrated >= 40:
                break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.02)
        else:
            raise AssertionError("the run never reached the middle of its transform step")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        (run,) = list_runs(src)
        assert run.status == "running" and 40 <= run.counts.configs_migrated < 118
        with engine.connect() as conn:  # what the checkpoint says is what was committed
            v2 = conn.execute(
                sa.text("SELECT COUNT(*) FROM voice_agent_configs WHERE schema_version = 'v2'")
            ).scalar_one()
        assert v2 == run.counts.configs_migrated

        code, _out, err = cli(pg_url, "data", "migrate", "--skip-invalid")
        assert code == 4 and f"--resume {run.id}" in err, err
        done = ok_json(pg_url, "data", "migrate", "--resume", run.id)
        assert done["status"] == "completed"
        assert done["counts"]["configs_migrated"] == 118  # two have no name: left on v1
        assert done["counts"]["configs_skipped"] == 2
        assert done["counts"]["metrics_generated"] == 118
        with engine.connect() as conn:
            counts = conn.execute(
                sa.text(
                    "SELECT COUNT(*) FILTER (WHERE schema_version = 'v2'), "
                    "(SELECT COUNT(*) FROM voice_agent_metrics) FROM voice_agent_configs"
                )
            ).one()
        assert tuple(counts) == (118, 118)

        restored = ok_json(pg_url, "data", "restore", done["backup_id"], "--yes")
        assert restored["checksum_verified"] is True
        assert sb.digest(engine) == original
    finally:
        src.dispose()
        sb.drop(engine)
        engine.dispose()

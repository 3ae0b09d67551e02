"""The data migration loses nothing: killed with SIGKILL at random points it resumes to
exact counts, a second run changes nothing, one run at a time, and restoring the backup
gives back the original rows byte for byte. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from switchover.core.clock import ManualClock
from switchover.core.transform import to_v2
from switchover.data import backup as backups
from switchover.data import schema as s
from switchover.data.migrate import MigrateOptions, Migrator, get_run, list_runs
from switchover.data.seed import seed_demo
from switchover.data.source import Source
from switchover.errors import LockHeldError

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
TRIALS = 6
BATCH = 20


def dump(src: Source, tables: tuple[Any, ...] = s.BACKED_UP) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables, in key order, as the driver returns them."""
    out = {}
    with src.connect() as conn:
        for table in tables:
            if not src.has(table):
                continue
            key = next(iter(table.primary_key.columns)).name
            cols = ", ".join(c.name for c in table.columns)
            out[table.name] = src.fetch(conn, f"SELECT {cols} FROM {table.name} ORDER BY {key}")
    return out


def expected_counts(src: Source) -> dict[str, int]:
    with src.connect() as conn:
        configs = src.scalar(
            conn,
            "SELECT COUNT(*) FROM voice_agent_configs c WHERE EXISTS "
            "(SELECT 1 FROM tenants t WHERE t.id = c.tenant_id) AND c.name IS NOT NULL",
        )
        calls = src.scalar(
            conn,
            "SELECT COUNT(*) FROM voice_agent_calls WHERE outcome IS NULL OR outcome NOT IN "
            "('completed', 'abandoned', 'no_answer', 'voicemail', 'transferred', 'failed')",
        )
    return {"configs_migrated": configs, "calls_updated": calls, "metrics_generated": configs}


@pytest.fixture
def seeded(data_url: str) -> Source:
    src = Source(data_url)
    seed_demo(src, configs=300, calls=600, users=0, now=NOW)
    yield src
    src.dispose()


def _migrate_cmd(url: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "switchover", "data", "migrate", "--source", url,
        "--batch-size", str(BATCH), "--skip-invalid", "--json", *extra,
    ]  # fmt: skip


def _env(url: str) -> dict[str, str]:
    return {**os.environ, "SWITCHOVER_DATABASE_URL": url}


def _wait_for_run(src: Source, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if src.has(s.runs) and any(r.status == "running" for r in list_runs(src, limit=5)):
            return True
        time.sleep(0.02)
    raise AssertionError("the migrate subprocess never started a run")


def test_sigkill_at_random_points_resumes_to_exact_counts_and_restores_bytes(
    seeded: Source,
) -> None:
    src = seeded
    original = dump(src)
    want = expected_counts(src)
    v1_rows = {r[0]: r for r in original[s.configs.name]}
    rng = random.Random(20261121)
    killed_at: set[tuple[str, str | None]] = set()
    for trial in range(TRIALS):
        known = {r.id for r in list_runs(src, limit=1000)}
        proc = subprocess.Popen(
            _migrate_cmd(src.url, "--throttle-ms", "10"),
            env=_env(src.url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        started = _wait_for_run(src, proc)
        if started:
            time.sleep(rng.uniform(0.0, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        new = [r for r in list_runs(src, limit=1000) if r.id not in known]
        clock = ManualClock(NOW)
        if new:
            run = new[0]
            killed_at.add((run.step, run.cursor))
            if run.status != "completed":
                run = Migrator(src, clock).resume(run.id)
        else:  # killed before its run was recorded: nothing was written, start again
            run = Migrator(src, clock).migrate(MigrateOptions(batch_size=BATCH, skip_invalid=True))
        assert run.status == "completed", (trial, run.error)
        got = run.counts.to_dict()
        assert {k: got[k] for k in want} == want, (trial, run.step)

        migrated = dump(src)
        cols = [c.name for c in s.configs.columns]
        v2 = [dict(zip(cols, r, strict=True)) for r in migrated[s.configs.name]]
        assert sum(r["schema_version"] == "v2" for r in v2) == want["configs_migrated"]
        assert len(migrated[s.metrics.name]) == want["metrics_generated"]
        for row in v2[:: max(1, len(v2) // 25)]:
            if row["schema_version"] != "v2":
                continue
            before = dict(zip(cols, v1_rows[row["id"]], strict=True))
            expect = to_v2(before, "T")
            assert row["assistant_type"] == expect["assistant_type"]
            assert row["capabilities"] is not None
            assert row["prompt"] == before["prompt"]  # v1 columns untouched for legacy

        backup_id = get_run(src, run.id).backup_id
        assert backup_id is not None
        backups.restore(src, backup_id)
        assert dump(src) == original, f"trial {trial}: restore is not byte for byte"
    # the kills landed in different places: steps and batches
    assert len(killed_at) >= TRIALS // 2, killed_at
    assert len({step for step, _ in killed_at}) >= 2, killed_at


@pytest.mark.parametrize(
    "data_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_sigkill_while_metrics_are_made_beside_the_outcomes_resumes_to_exact_counts(
    seeded: Source,
) -> None:
    """On PostgreSQL the metrics rows are made beside the outcomes, each batch with its
    count. Killed while both are half done, the run resumes to exact counts and one
    metrics row per config, and its metrics step is not left to redo anything."""
    src = seeded
    want = expected_counts(src)
    proc = subprocess.Popen(
        _migrate_cmd(src.url, "--throttle-ms", "20"),
        env=_env(src.url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    seen = None
    while seen is None:
        assert proc.poll() is None, "the run ended before both were half done"
        assert time.monotonic() < deadline, "the run never reached the outcomes step"
        runs = list_runs(src, limit=1) if src.has(s.runs) else []
        if runs and runs[0].step == "outcomes":
            c = runs[0].counts
            if 0 < c.metrics_generated < want["metrics_generated"] and c.calls_updated > 0:
                seen = runs[0]
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed = get_run(src, seen.id)
    assert killed.status == "running"  # SIGKILL: nothing marked it failed

    run = Migrator(src, ManualClock(NOW)).resume(seen.id)
    assert run.status == "completed", run.error
    got = run.counts.to_dict()
    assert {k: got[k] for k in want} == want
    with src.connect() as conn:
        made = src.scalar(conn, "SELECT COUNT(*) FROM voice_agent_metrics")
        stale = src.scalar(
            conn,
            "SELECT COUNT(*) FROM voice_agent_calls WHERE outcome IS NULL OR outcome NOT IN "
            "('completed', 'abandoned', 'no_answer', 'voicemail', 'transferred', 'failed')",
        )
    assert made == want["metrics_generated"]
    assert stale == 0


def test_a_second_run_changes_nothing(seeded: Source) -> None:
    src = seeded
    first = Migrator(src, ManualClock(NOW)).migrate(MigrateOptions(skip_invalid=True))
    assert first.status == "completed"
    everything = (*s.SOURCE_TABLES, s.runs, s.backups)
    before = dump(src, everything), sa.inspect(src.engine).get_table_names()
    again = Migrator(src, ManualClock(NOW)).migrate(MigrateOptions(skip_invalid=True))
    assert again.status == "up_to_date"
    assert again.counts.configs_migrated == 0
    assert (dump(src, everything), sa.inspect(src.engine).get_table_names()) == before


def test_a_concurrent_run_is_refused_naming_the_holder(seeded: Source) -> None:
    src = seeded
    proc = subprocess.Popen(
        _migrate_cmd(src.url, "--throttle-ms", "50"),
        env=_env(src.url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert _wait_for_run(src, proc)
        holder = next(r for r in list_runs(src) if r.status == "running")
        before = dump(src)
        with pytest.raises(LockHeldError) as err:
            Migrator(src, ManualClock(NOW)).migrate(MigrateOptions(skip_invalid=True))
        assert holder.id in err.value.message
        assert str(proc.pid) in err.value.message
        deadline = time.monotonic() + 30
        while get_run(src, holder.id).backup_id is None and time.monotonic() < deadline:
            time.sleep(0.02)
        backup_id = get_run(src, holder.id).backup_id
        assert backup_id is not None
        with pytest.raises(LockHeldError) as refused:  # no restore under a running migration
            backups.restore(src, backup_id)
        assert holder.id in refused.value.message
        # the refused run wrote nothing: only the holder moved on meanwhile
        assert not any(r.id != holder.id and r.status == "running" for r in list_runs(src))
        assert len(dump(src)[s.metrics.name]) >= len(before[s.metrics.name])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    # the holder died: its lock does not outlive it, and a resume finishes its work
    run = Migrator(src, ManualClock(NOW)).resume(holder.id)
    assert run.status == "completed"

"""Benchmark the agent data migration: configs per second for migrate (with backup) and
for restore, at 100,000 and 1,000,000 configs, on SQLite and PostgreSQL.

Each size gets fresh demo data (``seed_demo``: one call per config, awkward cases
included; seeding is not timed). ``migrate`` is the whole run of ``switchover data
migrate --skip-invalid``: pre-flight checks, backup with its SHA-256, v1 validation,
transform, outcomes, metrics and the post-migration verification, in batches with a
checkpoint each. ``restore`` is ``rollback --level data``'s restore: checksum check,
the swap, and the checksum over the restored rows. Seed 003 reports about 8 records/s.

    .venv/bin/python bench/data.py [--quick] [--sizes 100000,1000000] [--batch-size 1000]
        [--no-postgres | --no-sqlite]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from switchover.core.clock import SystemClock
from switchover.data import backup as backups
from switchover.data.migrate import MigrateOptions, Migrator
from switchover.data.seed import seed_demo
from switchover.data.source import Source
from switchover.store.engine import create_store_engine

say = harness.say
PG_ADMIN = os.environ.get(
    "SWITCHOVER_BENCH_POSTGRES_URL",
    os.environ.get(
        "SWITCHOVER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
)
GOALS = {"sqlite": 20_000, "postgresql": 10_000}
SEED_003_RATE = 8.0


def one(url: str, size: int, batch: int) -> dict[str, Any]:
    src = Source(url)
    try:
        t = time.perf_counter()
        seed_demo(src, configs=size, calls=size, users=0, now=SystemClock().now())
        seeded = time.perf_counter() - t
        t = time.perf_counter()
        run = Migrator(src, SystemClock()).migrate(
            MigrateOptions(batch_size=batch, skip_invalid=True)
        )
        migrate_s = time.perf_counter() - t
        assert run.status == "completed" and run.backup_id, run.error
        configs = run.counts.configs_migrated + run.counts.configs_skipped
        t = time.perf_counter()
        restored = backups.restore(src, run.backup_id)
        restore_s = time.perf_counter() - t
        assert restored["checksum_verified"]
    finally:
        src.dispose()
    return {
        "configs": configs,
        "calls": size,
        "batch_size": batch,
        "seed_seconds": round(seeded, 2),
        "migrate_seconds": round(migrate_s, 2),
        "migrate_configs_per_second": round(configs / migrate_s),
        "restore_seconds": round(restore_s, 2),
        "restore_configs_per_second": round(configs / restore_s),
    }


def _pg_database() -> tuple[str, sa.Engine] | None:
    admin = create_store_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"swo_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        say(f"  PostgreSQL not reachable at {PG_ADMIN} ({type(exc).__name__}): skipped")
        admin.dispose()
        return None
    url = sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    return url, admin


def _drop_pg(url: str, admin: sa.Engine) -> None:
    name = sa.engine.make_url(url).database
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = (
        [int(x) for x in args.sizes.split(",")]
        if args.sizes
        else ([20_000] if args.quick else [100_000, 1_000_000])
    )
    meta = {"cpus": os.cpu_count(), "load_average_1min_before": os.getloadavg()[0]}
    say(f"switchover data migration benchmark: sizes {sizes}, batch {args.batch_size}")
    fig: dict[str, Any] = {"meta": meta, "sqlite": {}, "postgresql": {}}
    for size in sizes:
        if not args.no_sqlite:
            with tempfile.TemporaryDirectory(prefix="switchover-data-") as tmp:
                r = one(f"sqlite:///{Path(tmp) / 'agents.db'}", size, args.batch_size)
            fig["sqlite"][str(size)] = r
            say(_line("SQLite", size, r))
        if args.no_postgres:
            continue
        made = _pg_database()
        if made is None:
            fig["postgresql"] = {"skipped": "not reachable"}
            continue
        url, admin = made
        try:
            r = one(url, size, args.batch_size)
        finally:
            _drop_pg(url, admin)
        fig["postgresql"][str(size)] = r
        say(_line("PostgreSQL", size, r))
    meta["load_average_1min_after"] = os.getloadavg()[0]
    say()
    say("data migration summary (goal: SQLite ≥ 20,000 configs/s, PostgreSQL ≥ 10,000/s)")
    for engine, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        for size, r in fig[engine].items():
            if not isinstance(r, dict) or "migrate_configs_per_second" not in r:
                continue
            goal = GOALS[engine]
            m, rs = r["migrate_configs_per_second"], r["restore_configs_per_second"]
            say(
                f"  {label:<10} {int(size):>9,}: migrate {m:>7,}/s "
                f"({'meets' if m >= goal else 'below'} {goal:,}/s; "
                f"{m / SEED_003_RATE:,.0f}x seed 003's 8/s), restore {rs:>7,}/s"
            )
    return fig


def _line(engine: str, size: int, r: dict[str, Any]) -> str:
    return (
        f"  {engine:<10} {size:>9,} configs: seed {r['seed_seconds']} s, migrate "
        f"{r['migrate_seconds']} s = {r['migrate_configs_per_second']:,}/s, restore "
        f"{r['restore_seconds']} s = {r['restore_configs_per_second']:,}/s"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/data.py",
        description="Benchmark switchover's data migration: migrate and restore, configs/s.",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 20,000 configs")
    p.add_argument("--sizes", help="comma-separated config counts (default 100000,1000000)")
    p.add_argument("--batch-size", type=int, default=1000, help="rows per batch (1000)")
    p.add_argument("--no-postgres", action="store_true", help="SQLite only")
    p.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return harness.bench_main("bench/data.py", parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())

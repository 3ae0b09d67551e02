"""Shared fixtures: a fresh store on each engine.

PostgreSQL tests use ``SWITCHOVER_TEST_POSTGRES_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``). Where no server answers they
skip, saying how to enable them; with ``SWITCHOVER_REQUIRE_POSTGRES=1`` (set by
``.ci/run``) they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from switchover.bootstrap import App, bootstrap
from switchover.core.clock import ManualClock
from switchover.settings import Settings
from switchover.store.engine import create_store_engine
from switchover.store.schema import upgrade

PG_URL = os.environ.get(
    "SWITCHOVER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_PG = os.environ.get("SWITCHOVER_REQUIRE_POSTGRES") == "1"
TABLES = (
    "audit_log",
    "known_tenants",
    "tokens",
    "migrations",
    "rollups",
    "shadow_samples",
    "plans",
    "verdicts",
    "locks",
    "agent_keys",
    "campaign_agents",
    "phone_numbers",
    "campaigns",
    "agents",
    "ingest_keys",
    "workers",
    "rollup_hours",
    "rollup_fives",
    "rollup_settled",
)


def _pg_admin_reachable() -> str | None:
    engine = create_store_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return None
    except Exception as exc:
        return f"{type(exc).__name__}"
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of our own on the PostgreSQL server, dropped at the end of the run."""
    problem = _pg_admin_reachable()
    if problem is not None:
        message = (
            f"PostgreSQL not reachable at {PG_URL} ({problem}); start it or set "
            "SWITCHOVER_TEST_POSTGRES_URL=postgresql+psycopg://USER@HOST:PORT/DB to run these tests"
        )
        if REQUIRE_PG:
            pytest.fail(message + " (SWITCHOVER_REQUIRE_POSTGRES=1 makes them required)")
        pytest.skip(message)
    name = f"swo_test_{uuid.uuid4().hex[:10]}"
    admin = create_store_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    engine = create_store_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _reset_pg(url: str) -> None:
    engine = create_store_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY"))
        conn.execute(sa.text("UPDATE store_version SET version = 0"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty store on each engine."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        engine = create_store_engine(url)
        upgrade(engine)
        engine.dispose()
        return url
    url = request.getfixturevalue("pg_database")
    _reset_pg(url)
    _drop_data_tables(url)  # agent data a data-migration test left in the same database
    return url


def _drop_data_tables(url: str) -> None:
    from switchover.data import schema as data_schema

    engine = create_store_engine(url)
    data_schema.own.drop_all(engine)
    data_schema.meta.drop_all(engine)
    with engine.begin() as conn:  # backups' copies of the tables (switchover_backup_…)
        for name in sa.inspect(conn).get_table_names():
            if name.startswith("switchover_backup_"):
                conn.execute(sa.text(f'DROP TABLE "{name}"'))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def data_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database for agent data (seed 003's tables), empty, on each engine; on PostgreSQL
    it is the store's database, as with the default ``--source``."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'agents.db'}"
    url = request.getfixturevalue("pg_database")
    _reset_pg(url)
    _drop_data_tables(url)
    return url


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """An empty store on PostgreSQL only."""
    _reset_pg(pg_database)
    return pg_database


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def app(db_url: str, clock: ManualClock) -> Iterator[App]:
    a = bootstrap(Settings(database_url=db_url), clock=clock)
    yield a
    a.close()

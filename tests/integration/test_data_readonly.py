"""Listing and verifying backups only read. A role that may only SELECT runs them, on a
backups table as switchover makes it today and on one an older switchover made
without today's columns, and neither creates nor alters a table. PostgreSQL: SQLite
has no roles."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from switchover.core.clock import ManualClock
from switchover.data import backup as backups
from switchover.data import schema as s
from switchover.data.migrate import MigrateOptions, Migrator
from switchover.data.source import Source
from switchover.errors import ValidationError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import supabase_schema as sb

pytestmark = pytest.mark.postgres


@pytest.fixture
def source(pg_url: str) -> Iterator[Source]:
    src = Source(pg_url)
    s.own.drop_all(src.engine)
    sb.create(src.engine)
    yield src
    with src.engine.begin() as conn:
        for name in sa.inspect(conn).get_table_names():
            if name.startswith("switchover_backup_"):
                conn.execute(sa.text(f'DROP TABLE "{name}"'))
    s.own.drop_all(src.engine)
    sb.drop(src.engine)
    src.dispose()


@pytest.fixture
def reader(source: Source) -> Iterator[Source]:
    """The same database through a role that may only read."""
    role = f"swo_reader_{uuid.uuid4().hex[:8]}"
    with source.engine.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(sa.text(f"GRANT USAGE ON SCHEMA public TO {role}"))
        conn.execute(sa.text(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"))
    url = sa.engine.make_url(source.url).set(username=role, password=None)
    src = Source(url.render_as_string(hide_password=False))
    yield src
    src.dispose()
    with source.engine.begin() as conn:
        conn.execute(sa.text(f"DROP OWNED BY {role}"))
        conn.execute(sa.text(f"DROP ROLE {role}"))


def grant(source: Source, reader: Source) -> None:
    """SELECT on the tables the run made: the backup, its copies, the run."""
    with source.engine.begin() as conn:
        conn.execute(
            sa.text(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader.engine.url.username}")
        )


def _shape(source: Source) -> dict[str, list[str]]:
    with source.engine.connect() as conn:
        insp = sa.inspect(conn)
        return {t: [c["name"] for c in insp.get_columns(t)] for t in insp.get_table_names()}


def test_a_reader_lists_and_verifies_backups(source: Source, reader: Source) -> None:
    run = Migrator(source, ManualClock(sb.NOW)).migrate(MigrateOptions(skip_invalid=True))
    assert run.status == "completed", run.error
    grant(source, reader)

    listed = backups.list_backups(reader)
    assert [b.id for b in listed] == [run.backup_id]
    assert listed[0].kind == "pre-run" and listed[0].run_id == run.id
    assert backups.verify(reader, run.backup_id or "").checksum == listed[0].checksum


def test_a_backups_table_an_older_switchover_made_is_read_as_it_is(
    source: Source, reader: Source
) -> None:
    run = Migrator(source, ManualClock(sb.NOW)).migrate(MigrateOptions(skip_invalid=True))
    assert run.status == "completed", run.error
    with source.engine.begin() as conn:  # the table as it was before kind and parts
        conn.execute(sa.text(f"ALTER TABLE {s.backups.name} DROP COLUMN kind"))
        conn.execute(sa.text(f"ALTER TABLE {s.backups.name} DROP COLUMN parts"))
    grant(source, reader)
    before = _shape(source)

    listed = backups.list_backups(reader)
    assert [(b.id, b.kind, b.parts) for b in listed] == [(run.backup_id, "pre-run", [])]
    with pytest.raises(ValidationError, match="made by an older switchover"):
        backups.verify(reader, run.backup_id or "")
    assert _shape(source) == before  # nothing created, no column added

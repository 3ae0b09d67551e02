"""Several processes starting at once on one fresh SQLite file all get the schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

SCRIPT = """
import sys
from switchover.store.engine import create_store_engine
from switchover.store.schema import upgrade
upgrade(create_store_engine(sys.argv[1]))
"""


def test_first_starts_racing_on_one_fresh_file_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    procs = [
        subprocess.Popen([sys.executable, "-c", SCRIPT, url], stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    assert all(code == 0 for code, _ in results), results
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert {"migrations", "audit_log", "alembic_version"} <= tables

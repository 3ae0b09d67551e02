"""Data-migration runs and backups over HTTP, on both engines: what a dashboard reads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from switchover.api.app import create_app
from switchover.bootstrap import App
from switchover.core.clock import ManualClock
from switchover.data.migrate import MigrateOptions, Migrator
from switchover.data.seed import seed_demo
from switchover.data.source import Source

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with TestClient(create_app(app)) as c:
        yield c


def test_runs_and_backups_are_listed_for_viewers_only(app: App, client: TestClient) -> None:
    src = Source(app.settings.database_url)
    seed_demo(src, configs=60, calls=120, users=0, now=NOW)
    run = Migrator(src, ManualClock(NOW)).migrate(MigrateOptions(skip_invalid=True))
    src.dispose()
    viewer = app.tokens.create("viewer-bot", "viewer", actor="test")

    assert client.get("/v1/data/runs").status_code == 401
    headers = {"Authorization": f"Bearer {viewer}"}
    runs = client.get("/v1/data/runs", headers=headers).json()
    assert [r["id"] for r in runs] == [run.id]
    assert runs[0]["status"] == "completed"
    assert runs[0]["counts"]["configs_migrated"] == run.counts.configs_migrated > 0

    one = client.get(f"/v1/data/runs/{run.id}", headers=headers).json()
    assert one["backup_id"] == run.backup_id
    assert client.get("/v1/data/runs/run_nope", headers=headers).status_code == 404

    listed = client.get("/v1/data/backups", headers=headers).json()
    assert [b["id"] for b in listed] == [run.backup_id]
    assert listed[0]["configs"] == 61 and len(listed[0]["checksum"]) == 64

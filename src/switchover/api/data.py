"""Data-migration runs and backups over HTTP (read-only: restores need the CLI's
confirmation and run where the operator can watch them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from switchover.access import Principal
from switchover.api.auth import requires
from switchover.bootstrap import App
from switchover.core.access import Role
from switchover.data import backup as backups
from switchover.data.migrate import get_run, list_runs

Viewer = Annotated[Principal, Depends(requires(Role.VIEWER))]


def router(app: App) -> APIRouter:
    api = APIRouter(tags=["data"])

    @api.get("/v1/data/runs")
    def runs(_: Viewer, limit: int = 50) -> list[dict[str, Any]]:
        return [r.to_dict() for r in list_runs(app.data_source, limit=max(1, min(limit, 500)))]

    @api.get("/v1/data/runs/{run_id}")
    def run(run_id: str, _: Viewer) -> dict[str, Any]:
        return get_run(app.data_source, run_id).to_dict()

    @api.get("/v1/data/backups")
    def backup_list(_: Viewer) -> list[dict[str, Any]]:
        return [b.to_dict() for b in backups.list_backups(app.data_source)]

    return api

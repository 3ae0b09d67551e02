"""The worker registry over HTTP: workers send heartbeats, readers list them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from switchover.access import Principal
from switchover.api.auth import requires
from switchover.bootstrap import App
from switchover.core.access import Role
from switchover.worker.registry import WorkerRegistry

Worker = Annotated[Principal, Depends(requires(Role.WORKER))]
Viewer = Annotated[Principal, Depends(requires(Role.VIEWER))]


def router(app: App) -> APIRouter:
    api = APIRouter(tags=["workers"])
    registry = WorkerRegistry(app.store, app.clock)

    @api.post("/v1/workers/heartbeat")
    def heartbeat(
        _: Worker,
        body: Annotated[
            dict[str, Any],
            Body(
                description="instance, name, version, jobs_active, jobs_total, jobs_failed, "
                "load (0-1), max_concurrency, interval (seconds between heartbeats), "
                "migration, side (legacy|candidate)."
            ),
        ],
    ) -> dict[str, Any]:
        """A worker's heartbeat: it is listed as active until it misses three."""
        return registry.beat(body)

    @api.get("/v1/workers")
    def workers(_: Viewer) -> list[dict[str, Any]]:
        """Every worker that sent a heartbeat in the last week: name, version, jobs, load,
        last seen, and whether it is active."""
        return registry.list()

    return api

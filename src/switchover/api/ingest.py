"""Observations and rollups from services that route calls themselves (the worker role)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from switchover.access import Principal
from switchover.api.auth import requires
from switchover.bootstrap import App
from switchover.core.access import Role

Worker = Annotated[Principal, Depends(requires(Role.WORKER))]


class IngestObservations(BaseModel):
    observations: list[Any] = Field(
        ...,
        description="Each: migration, operation, side (legacy|candidate), latency_ms, ok, "
        "error_type, fallback, tenant, outcome {name: number}, at (epoch seconds).",
    )


class IngestRollups(BaseModel):
    rollups: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []


def router(app: App) -> APIRouter:
    api = APIRouter(tags=["metrics"])

    @api.post("/v1/observations")
    def ingest_observations(body: IngestObservations, _: Worker) -> dict[str, int]:
        """Calls routed by services not written in Python; validated all or nothing."""
        return {"accepted": app.metrics.ingest(body.observations)}

    @api.post("/v1/rollups")
    def ingest_rollups(body: IngestRollups, _: Worker) -> dict[str, int]:
        """Pre-aggregated rollups from ``switchover.connect("http://…")`` clients."""
        return {"accepted": app.metrics.ingest_rollups(body.rollups, body.samples)}

    return api

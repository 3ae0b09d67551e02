"""Observations and rollups from services that route calls themselves (the worker role).

Both endpoints take an idempotency key, in the ``Idempotency-Key`` header or the body's
``idempotency_key`` (one of them, or both the same): a batch sent again with the key of
one already stored (a retry after a lost answer) stores nothing and answers the count
the first one accepted, with ``"replay": true`` and the header ``Idempotent-Replayed:
true``. Keys are kept for a day.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response
from pydantic import BaseModel, Field

from switchover.access import Principal
from switchover.api.auth import requires
from switchover.bootstrap import App
from switchover.core.access import Role
from switchover.errors import ValidationError
from switchover.metrics.service import Ingested

Worker = Annotated[Principal, Depends(requires(Role.WORKER))]
KeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Names the batch: a retry with the same key is stored once (a UUID).",
    ),
]

_KEY_FIELD = Field(
    None,
    description="The batch's idempotency key, as the Idempotency-Key header (either, or both "
    "the same): a retry with the same key within a day is stored once.",
)


class IngestObservations(BaseModel):
    observations: list[Any] = Field(
        ...,
        description="Each: migration, operation, side (legacy|candidate), latency_ms (0 to "
        "86400000), ok, error_type, fallback, tenant, outcome {name: number, |number| <= "
        "1e12}, scores {name: number} (a rating per call, such as csat: 4; at most 8), "
        "at (epoch seconds, within five years of the server's clock), "
        "first_chunk_ms (streams: 0 to latency_ms).",
    )
    idempotency_key: str | None = _KEY_FIELD


class IngestRollups(BaseModel):
    rollups: list[Any] = []
    samples: list[Any] = []
    idempotency_key: str | None = _KEY_FIELD


def _one_key(header: str | None, body: str | None) -> str | None:
    if header is not None and body is not None and header != body:
        raise ValidationError(
            "the Idempotency-Key header and the body's idempotency_key differ; send one "
            "of them (or both the same)",
            field="idempotency_key",
        )
    return header if header is not None else body


def _answer(result: Ingested, key: str | None, response: Response) -> dict[str, Any]:
    if result.replay:
        response.headers["Idempotent-Replayed"] = "true"
    return result.to_dict(keyed=key is not None)


def router(app: App) -> APIRouter:
    api = APIRouter(tags=["metrics"])

    @api.post("/v1/observations")
    def ingest_observations(
        body: IngestObservations, _: Worker, response: Response, idempotency_key: KeyHeader = None
    ) -> dict[str, Any]:
        """Calls routed by services not written in Python; validated all or nothing."""
        key = _one_key(idempotency_key, body.idempotency_key)
        result = app.metrics.ingest_batch(body.observations, idempotency_key=key)
        return _answer(result, key, response)

    @api.post("/v1/rollups")
    def ingest_rollups(
        body: IngestRollups, _: Worker, response: Response, idempotency_key: KeyHeader = None
    ) -> dict[str, Any]:
        """Pre-aggregated rollups from ``switchover.connect("http://…")`` clients; validated
        all or nothing (counts, sides, names, tenants, minutes, sketches, outcome sums)."""
        key = _one_key(idempotency_key, body.idempotency_key)
        result = app.metrics.ingest_rollup_batch(body.rollups, body.samples, idempotency_key=key)
        return _answer(result, key, response)

    return api

"""OFREP, the OpenFeature Remote Evaluation Protocol: any OpenFeature SDK decides with
its stock OFREP provider.

- ``POST /ofrep/v1/evaluate/flags/{key}``: one flag (``MIGRATION`` or
  ``MIGRATION.FEATURE``) for one context;
- ``POST /ofrep/v1/evaluate/flags``: every flag for one context, with an ``ETag``; a
  request whose ``If-None-Match`` names it gets ``304 Not Modified``.

Decisions come from the server's snapshot, on the event loop, like ``/v1/decide``; the
mapping to OpenFeature is :mod:`switchover.core.flag`. Bodies and errors have the
shapes of the OFREP OpenAPI document (``evaluationSuccess``, ``evaluationFailure``,
``bulkEvaluationFailure``); a viewer token is enough, as for ``/v1/decide``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel

from switchover.access import Principal
from switchover.api.auth import requires
from switchover.core.access import Role
from switchover.core.flag import TARGETING_KEY, FlagEvaluation, evaluate, evaluate_all
from switchover.sdk.client import Client

Viewer = Annotated[Principal, Depends(requires(Role.VIEWER))]
_JSON = "application/json"


class EvaluationSuccess(BaseModel):
    key: str
    value: bool
    reason: Literal["TARGETING_MATCH", "SPLIT", "DISABLED", "ERROR"]
    variant: Literal["candidate", "legacy"]
    metadata: dict[str, str | int | bool] = {}


class EvaluationFailure(BaseModel):
    key: str
    errorCode: Literal[
        "PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT", "GENERAL", "FLAG_NOT_FOUND"
    ]
    errorDetails: str = ""
    metadata: dict[str, str | int | bool] = {}


class BulkEvaluationSuccess(BaseModel):
    flags: list[EvaluationSuccess | EvaluationFailure]


class BulkEvaluationFailure(BaseModel):
    errorCode: Literal["PARSE_ERROR", "INVALID_CONTEXT", "GENERAL"]
    errorDetails: str = ""


_CONTEXT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The evaluation context. 'targetingKey' is the migration's stickiness "
    "key unless the context carries that key itself (e.g. user_id); the tenant key "
    "(e.g. tenant_id) selects tenant overrides.",
    "properties": {TARGETING_KEY: {"type": "string"}},
    "additionalProperties": True,
}
_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            _JSON: {
                "schema": {
                    "type": "object",
                    "properties": {"context": _CONTEXT_SCHEMA},
                    "example": {"context": {TARGETING_KEY: "user-42", "tenant_id": "acme"}},
                }
            }
        },
    }
}


class _BadRequest(Exception):
    def __init__(self, code: str, details: str) -> None:
        self.code = code
        self.details = details


async def _context(request: Request) -> Mapping[str, Any]:
    """The request's context; a body the OFREP schema refuses raises :class:`_BadRequest`.

    A body without ``context`` is an empty one: the Python OFREP provider sends ``{}``
    when its client has no context."""
    raw = await request.body()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        detail = "the body is not JSON" if raw.strip() else "the request has no body"
        raise _BadRequest("PARSE_ERROR", f'{detail}: send {{"context": {{...}}}}') from None
    if not isinstance(body, dict):
        raise _BadRequest("PARSE_ERROR", 'the body must be an object: {"context": {...}}')
    context = body.get("context", {})
    if not isinstance(context, dict):
        raise _BadRequest("INVALID_CONTEXT", "`context` must be an object")
    if TARGETING_KEY in context and not isinstance(context[TARGETING_KEY], str):
        raise _BadRequest("INVALID_CONTEXT", f"`{TARGETING_KEY}` must be a string")
    return context


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type=_JSON)


_STATUS = {"FLAG_NOT_FOUND": 404, "GENERAL": 500}


async def _loaded(client: Client) -> None:
    """Before answering 'not found' or 'not loaded': one refresh, off the event loop (a
    migration made through another replica a moment ago is found)."""
    await run_in_threadpool(client.refresh)


def _etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


def ofrep_routes() -> APIRouter:
    router = APIRouter(prefix="/ofrep/v1", tags=["ofrep"])

    @router.post(
        "/evaluate/flags/{key}",
        openapi_extra=_REQUEST_BODY,
        responses={
            200: {"model": EvaluationSuccess, "description": "The flag's value for the context"},
            400: {"model": EvaluationFailure, "description": "A context it cannot decide on"},
            404: {"model": EvaluationFailure, "description": "FLAG_NOT_FOUND"},
            500: {"model": EvaluationFailure, "description": "GENERAL: no snapshot loaded"},
        },
    )
    async def evaluate_flag(key: str, request: Request, _: Viewer) -> Response:
        """One flag, ``MIGRATION`` or ``MIGRATION.FEATURE``: true is the candidate."""
        try:
            context = await _context(request)
        except _BadRequest as bad:
            return _json({"key": key, "errorCode": bad.code, "errorDetails": bad.details}, 400)
        client: Client = request.app.state.snapshot
        result = evaluate(key, client.compiled, context)
        if result.error_code in _STATUS:
            await _loaded(client)
            result = evaluate(key, client.compiled, context)
            if result.error_code == "FLAG_NOT_FOUND" and not client.health()["loaded"]:
                result = FlagEvaluation(
                    key,
                    None,
                    None,
                    "ERROR",
                    "GENERAL",
                    "the store is unreachable and no snapshot is loaded yet",
                )
        status = 200 if result.ok else _STATUS.get(result.error_code or "", 400)
        return _json(result.to_ofrep(), status)

    @router.post(
        "/evaluate/flags",
        openapi_extra=_REQUEST_BODY,
        responses={
            200: {
                "model": BulkEvaluationSuccess,
                "description": "Every flag for the context",
                "headers": {"ETag": {"schema": {"type": "string"}}},
            },
            304: {"description": "Not modified: the If-None-Match ETag is current"},
            400: {"model": BulkEvaluationFailure, "description": "A context it cannot read"},
            500: {"model": BulkEvaluationFailure, "description": "GENERAL: no snapshot loaded"},
        },
    )
    async def evaluate_flags(
        request: Request,
        _: Viewer,
        if_none_match: Annotated[str | None, Header()] = None,
    ) -> Response:
        """Every migration and every ``MIGRATION.FEATURE``, with an ``ETag``."""
        try:
            context = await _context(request)
        except _BadRequest as bad:
            return _json({"errorCode": bad.code, "errorDetails": bad.details}, 400)
        client: Client = request.app.state.snapshot
        health = client.health()
        if not health["loaded"]:
            await _loaded(client)
            health = client.health()
            if not health["loaded"]:
                details = "the store is unreachable and no snapshot is loaded yet"
                return _json({"errorCode": "GENERAL", "errorDetails": details}, 500)
        flags = []
        for name in health["migrations"]:
            compiled = client.compiled(name)
            if compiled is not None:  # None: gone in a refresh meanwhile
                flags.extend(e.to_ofrep() for e in evaluate_all(compiled, context))
        body = orjson.dumps({"flags": flags})
        etag = _etag(body)
        if _matches(if_none_match, etag):
            return Response(status_code=304, headers={"ETag": etag})
        return Response(body, 200, headers={"ETag": etag}, media_type=_JSON)

    return router

"""The HTTP API: the CLI's operations, plus batch decisions for services not in Python."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from switchover import commands
from switchover.access import Principal
from switchover.api import schemas
from switchover.api.agents import router as agent_routes
from switchover.api.auth import TokenCache, requires
from switchover.api.data import router as data_routes
from switchover.api.ingest import router as ingest_routes
from switchover.api.ofrep import ofrep_routes
from switchover.api.plans import router as plan_routes
from switchover.api.workers import router as worker_routes
from switchover.bootstrap import App
from switchover.commands import model as cmd
from switchover.core.access import Role
from switchover.core.migration import require_feature
from switchover.core.timewindow import parse_duration
from switchover.errors import NotFoundError, StoreError, SwitchoverError, ValidationError
from switchover.metrics.charts import ChartCache
from switchover.metrics.prometheus import StoreCollector
from switchover.sdk.client import Client
from switchover.sdk.sources import StoreSource
from switchover.web.actions import DemoControl
from switchover.web.routes import dashboard_routes, mount_static
from switchover.web.session import LoginCodes

Viewer = Annotated[Principal, Depends(requires(Role.VIEWER))]
Worker = Annotated[Principal, Depends(requires(Role.WORKER))]
Operator = Annotated[Principal, Depends(requires(Role.OPERATOR))]
Admin = Annotated[Principal, Depends(requires(Role.ADMIN))]


_log = logging.getLogger("switchover.api")
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No token, or a token that is not valid or was revoked"},
    403: {"description": "The token's role may not do this"},
    404: {"description": "The migration (or the thing named) does not exist"},
    409: {"description": "A conflict: someone changed it first (current_version), or a lock"},
    422: {"description": "Invalid input: error.field names the field, error.message the fix"},
    503: {"description": "The store cannot be reached"},
}
"""Every route may answer these, in the shape {"error": {"code", "field", "message"}}."""


class ORJSONResponse(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _error_response(exc: SwitchoverError) -> ORJSONResponse:
    body: dict[str, Any] = {"error": exc.to_dict()}
    current = getattr(exc, "current_version", None)
    if current is not None:
        body["error"]["current_version"] = current
    return ORJSONResponse(body, status_code=exc.http_status)


def _from_request_validation(exc: RequestValidationError) -> ValidationError:
    """FastAPI's schema errors in our error shape: the field and how to fix it."""
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(loc) or "body"
    problem = first.get("msg", "is not valid")
    return ValidationError(
        f"{field}: {problem}; see the request schema at /docs", field=field.split(".")[0]
    )


def _allowed(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE and getattr(route, "methods", None):
            methods |= set(route.methods)
    return sorted(methods)


TimeParam = Annotated[
    str | None,
    Query(
        description="An ISO 8601 date-time, e.g. 2026-11-30T12:00:00Z (UTC when no offset).",
        json_schema_extra={"format": "date-time"},
    ),
]


def _instant(value: str | None, field: str) -> datetime | None:
    """An ISO 8601 date-time (not a bare number: that is ambiguous), UTC if naive."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"`{field}` {value!r} is not an ISO 8601 date-time; write e.g. 2026-11-30T12:00:00Z",
            field=field,
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _who(who: Principal, body: schemas.Change) -> dict[str, Any]:
    return {
        "actor": who.name,
        "reason": body.reason or "",
        "expected_version": body.expected_version,
    }


def _run(request: Request, command: cmd.MigrationCommand | cmd.CreateMigration) -> dict[str, Any]:
    """Handle a migration command; the answer is the migration, with what changed.

    This process's own decisions see the change at once, not a poll later.
    """
    outcome = commands.handle(request.app.state.app, command)
    request.app.state.snapshot.refresh()
    assert outcome.migration is not None
    return {
        **outcome.migration.to_dict(),
        "message": outcome.message,
        "changes": [c.to_dict() for c in outcome.changes],
        "notes": list(outcome.notes),
    }


def create_app(
    app: App,
    *,
    snapshot_client: Client | None = None,
    demo: DemoControl | None = None,
    charts: ChartCache | None = None,
) -> FastAPI:
    """The API and the dashboard over ``app``'s services.

    Decisions come from an in-process snapshot. ``demo`` is the first run's simulated
    traffic: it runs while the server does, and the dashboard shows operators its controls.
    """

    @asynccontextmanager
    async def lifespan(api: FastAPI):  # type: ignore[no-untyped-def]
        client = snapshot_client or Client(
            StoreSource(app.settings.database_url),
            refresh_interval=app.settings.refresh_interval,
        )
        api.state.snapshot = client
        if demo is not None:
            demo.start()
        try:
            yield
        finally:
            # before uvicorn returns: it re-raises SIGTERM afterwards, ending the process
            if demo is not None:
                demo.stop()
            if snapshot_client is None:
                client.close()
            api.state.token_cache.close()

    api = FastAPI(
        title="switchover",
        version="0.1.0",
        description="Move AI agents from legacy to candidate with zero downtime.",
        default_response_class=ORJSONResponse,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    api.state.app = app
    api.state.token_cache = TokenCache(app.tokens)
    api.state.demo = demo
    api.state.login_codes = LoginCodes()
    api.state.charts = charts or ChartCache(app.store, app.clock)
    rollout = app.rollout

    @api.exception_handler(RequestValidationError)
    async def _invalid_body(_request: Request, exc: RequestValidationError) -> ORJSONResponse:
        return _error_response(_from_request_validation(exc))

    @api.exception_handler(SwitchoverError)
    async def _switchover_error(_request: Request, exc: SwitchoverError) -> ORJSONResponse:
        return _error_response(exc)

    @api.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # a body that is not JSON at all
            return _error_response(
                ValidationError(
                    "the body is not valid JSON (or a number in it is too large); see /docs",
                    field="body",
                )
            )
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # every method the path has, not only one route's
            headers["Allow"] = ", ".join(_allowed(request))
        return ORJSONResponse(
            {"error": {"code": "http", "field": None, "message": str(exc.detail)}},
            status_code=exc.status_code,
            headers=headers or None,
        )

    @api.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> ORJSONResponse:
        """A bug answers 500 in our error shape, logged with its traceback, and the
        connection stays open for the client's next request."""
        _log.error("unexpected error", exc_info=exc)
        return ORJSONResponse(
            {"error": {"code": "internal", "field": None, "message": "internal error (logged)"}},
            status_code=500,
        )

    @api.get("/healthz", tags=["health"])
    async def healthz(request: Request) -> dict[str, Any]:
        """The process answers: memory only, on the event loop, whatever the store does."""
        client: Client = request.app.state.snapshot
        return {"ok": True, "snapshot": client.health()}

    @api.get("/readyz", tags=["health"], responses={503: {"description": "Degraded"}})
    async def readyz(request: Request) -> Response:
        """Ready to serve decisions: a snapshot is loaded. 503 with the reasons while the
        store cannot be reached (decisions still come from the last snapshot)."""
        client: Client = request.app.state.snapshot
        health = client.health()
        problems = []
        if not health["loaded"]:
            problems.append("no snapshot loaded yet")
        if health["stale"]:
            problems.append(f"the snapshot is stale: {health['last_error'] or 'the store is slow'}")
        if request.app.state.token_cache.degraded:
            problems.append("token checks cannot reach the store: only known tokens are accepted")
        body = {"ready": not problems, "degraded": problems, "snapshot": health}
        return Response(
            orjson.dumps(body), 200 if not problems else 503, media_type="application/json"
        )

    # snapshot feed for SDK clients that talk HTTP ----------------------------------

    @api.get("/v1/snapshot/version", tags=["snapshot"])
    def snapshot_version(_: Viewer) -> dict[str, int]:
        return {"version": app.store.store_version()}

    @api.get("/v1/snapshot", tags=["snapshot"])
    def snapshot(_: Viewer) -> dict[str, Any]:
        version, migrations = app.store.snapshot()
        return {"version": version, "migrations": [m.to_dict() for m in migrations]}

    # migrations ---------------------------------------------------------------------

    @api.get("/v1/migrations", tags=["migrations"])
    def list_migrations(_: Viewer) -> list[dict[str, Any]]:
        return [m.to_dict() for m in rollout.list()]

    @api.post("/v1/migrations", status_code=201, tags=["migrations"])
    def create_migration(
        body: schemas.CreateMigration, request: Request, who: Operator
    ) -> dict[str, Any]:
        return _run(
            request,
            cmd.CreateMigration(
                migration=body.name,
                features=tuple(body.features),
                stickiness=body.stickiness,
                tenant_key=body.tenant_key,
                description=body.description,
                legacy_label=body.legacy_label,
                candidate_label=body.candidate_label,
                group=body.group,
                actor=who.name,
                reason=body.reason or "",
            ),
        )

    @api.get("/v1/migrations/{name}", tags=["migrations"])
    def show_migration(name: str, _: Viewer) -> dict[str, Any]:
        return rollout.get(name).to_dict()

    @api.get("/v1/migrations/{name}/status", tags=["migrations"])
    def migration_status(name: str, _: Viewer) -> dict[str, Any]:
        return rollout.status(name).to_dict()

    @api.get("/v1/migrations/{name}/audit", tags=["audit"])
    def migration_audit(name: str, _: Viewer, limit: int = 100) -> list[dict[str, Any]]:
        return [e.to_dict() for e in rollout.audit(name, limit=limit)]

    @api.put("/v1/migrations/{name}/percentage", tags=["rollout"])
    def set_percentage(
        name: str, body: schemas.SetPercentage, request: Request, who: Operator
    ) -> dict[str, Any]:
        return _run(
            request,
            cmd.SetPercentage(migration=name, percentage=body.percentage, **_who(who, body)),
        )

    @api.put("/v1/migrations/{name}/features/{feature}", tags=["rollout"])
    def set_feature(
        name: str, feature: str, body: schemas.SetFeature, request: Request, who: Operator
    ) -> dict[str, Any]:
        return _run(
            request,
            cmd.SetFeature(
                migration=name,
                feature=feature,
                enabled=body.enabled,
                percentage=body.percentage,
                **_who(who, body),
            ),
        )

    @api.put("/v1/migrations/{name}/tenants/{tenant}", tags=["tenants"])
    def set_tenant(
        name: str, tenant: str, body: schemas.SetTenant, request: Request, who: Operator
    ) -> dict[str, Any]:
        return _run(
            request,
            cmd.SetTenant(migration=name, tenant=tenant, override=body.override, **_who(who, body)),
        )

    @api.delete("/v1/migrations/{name}/tenants/{tenant}", tags=["tenants"])
    def clear_tenant(
        name: str, tenant: str, request: Request, who: Operator, reason: str | None = None
    ) -> dict[str, Any]:
        return _run(
            request,
            cmd.SetTenant(
                migration=name, tenant=tenant, override="clear", actor=who.name, reason=reason or ""
            ),
        )

    @api.post("/v1/migrations/{name}/known-tenants", tags=["tenants"])
    def register_tenants(name: str, body: schemas.RegisterTenants, who: Operator) -> dict[str, Any]:
        outcome = commands.handle(
            app,
            cmd.RegisterTenants(
                migration=name,
                tenants=tuple(body.tenants),
                actor=who.name,
                reason=body.reason or "",
            ),
        )
        return dict(outcome.data)

    @api.post("/v1/migrations/{name}/kill", tags=["rollout"])
    def kill(
        name: str, request: Request, who: Operator, body: schemas.Change | None = None
    ) -> dict[str, Any]:
        """Master switch off: every call to legacy at once; a running plan is paused."""
        return _run(request, cmd.Kill(migration=name, **_who(who, body or schemas.Change())))

    @api.post("/v1/migrations/{name}/resume", tags=["rollout"])
    def resume(
        name: str, request: Request, who: Operator, body: schemas.Resume | None = None
    ) -> dict[str, Any]:
        """Master switch back on. With ``"plan": true`` a paused or rolled-back plan
        advances again too (the CLI's ``resume --plan``)."""
        body = body or schemas.Resume()
        return _run(request, cmd.Resume(migration=name, plan=body.plan, **_who(who, body)))

    # decisions ----------------------------------------------------------------------

    @api.post("/v1/decide", tags=["decisions"])
    async def decide(body: schemas.DecideRequest, request: Request, _: Viewer) -> Response:
        """Pure in-memory work on the snapshot: runs on the event loop, no thread hop."""
        if len(body.contexts) > schemas.MAX_CONTEXTS:
            raise ValidationError(
                f"contexts has {len(body.contexts)} entries; send at most "
                f"{schemas.MAX_CONTEXTS} per request",
                field="contexts",
            )
        client: Client = request.app.state.snapshot
        handle = client.migration(body.migration)
        current = handle.snapshot
        if current is None:
            await run_in_threadpool(client.refresh)
            current = handle.snapshot
        if current is None:
            if not client.health()["loaded"]:
                raise StoreError("the store is unreachable and no snapshot is loaded yet")
            raise NotFoundError(f"migration {body.migration!r} does not exist", field="migration")
        if body.feature is not None:
            require_feature(current, body.feature)
        decisions = [handle.decide(body.feature, ctx) for ctx in body.contexts]
        payload = {
            "migration": body.migration,
            "feature": body.feature,
            "version": current.version,
            "decisions": [{"side": d.side.value, "reason": d.reason.value} for d in decisions],
        }
        return Response(orjson.dumps(payload), media_type="application/json")

    api.include_router(ofrep_routes())  # early: routes are matched in order

    # observations and metrics ---------------------------------------------------------

    @api.get("/v1/migrations/{name}/metrics", tags=["metrics"])
    def migration_metrics(
        name: str,
        _: Viewer,
        window: str = "15m",
        operation: str | None = None,
        since: TimeParam = None,
        until: TimeParam = None,
        series: bool = False,
    ) -> dict[str, Any]:
        """Legacy and candidate side by side over the window (or since/until)."""
        last = parse_duration(window)
        report = app.metrics.window(
            name,
            since=_instant(since, "since"),
            until=_instant(until, "until"),
            last=last,
            operation=operation,
        )
        data = report.to_dict()
        if series:
            data["series"] = app.metrics.series(
                name, since=report.since, until=report.until, operation=operation
            )
        return data

    @api.get("/v1/migrations/{name}/shadow-samples", tags=["metrics"])
    def shadow_samples(name: str, _: Viewer, limit: int = 50) -> list[dict[str, Any]]:
        """The latest shadow mismatches and candidate errors, redacted."""
        return app.metrics.shadow_samples(name, limit=max(1, min(limit, 500)))

    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(app.store))

    @api.get("/metrics", tags=["metrics"], include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    api.include_router(ingest_routes(app))
    api.include_router(worker_routes(app))
    api.include_router(plan_routes(app))
    api.include_router(data_routes(app))
    api.include_router(agent_routes(app))
    api.include_router(dashboard_routes(app, api.state.charts, lambda: api.state.demo))
    mount_static(api)

    # tokens -------------------------------------------------------------------------

    @api.get("/v1/tokens", tags=["tokens"])
    def list_tokens(_: Admin) -> list[dict[str, Any]]:
        return [
            {
                "name": t.name,
                "role": t.role,
                "created_at": t.created_at.isoformat(),
                "created_by": t.created_by,
                "revoked": t.revoked_at is not None,
            }
            for t in app.tokens.list()
        ]

    @api.post("/v1/tokens", status_code=201, tags=["tokens"])
    def create_token(body: schemas.CreateToken, request: Request, who: Admin) -> dict[str, str]:
        command = cmd.CreateToken(
            name=body.name, role=body.role, replace=body.replace, actor=who.name
        )
        outcome = commands.handle(app, command)
        if body.replace:
            request.app.state.token_cache.forget()
        return {k: str(v) for k, v in outcome.data.items()}

    @api.delete("/v1/tokens/{name}", tags=["tokens"])
    def revoke_token(name: str, request: Request, who: Admin) -> dict[str, str]:
        outcome = commands.handle(app, cmd.RevokeToken(name=name, actor=who.name))
        request.app.state.token_cache.forget()
        return {k: str(v) for k, v in outcome.data.items()}

    return api

"""The dashboard's routes: pages, the fragments htmx refreshes, chart data, controls.

Pages are rendered on the server with Jinja2; htmx swaps fragments in place every few
seconds and after a change; uPlot draws the charts from ``/ui/.../charts``. Both are
vendored under ``static/vendor``: nothing is fetched from the internet at run time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from switchover.access import Principal
from switchover.bootstrap import App
from switchover.control.scorecard import ScorecardService
from switchover.errors import AuthError, ForbiddenError, SwitchoverError, ValidationError
from switchover.metrics.charts import ChartCache
from switchover.web import actions, report, session, views
from switchover.web.actions import DemoControl
from switchover.worker.registry import WorkerRegistry

HERE = Path(__file__).parent
PANELS = ("summary", "plan", "verdicts", "audit", "tenants", "data", "demo")
REFRESH_SECONDS = 5
CHANGED_EVENT = "switchover-changed"

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["refresh"] = REFRESH_SECONDS


def mount_static(api: FastAPI) -> None:
    api.mount("/static", StaticFiles(directory=HERE / "static"), name="static")


def _timed(response: Response, started: float) -> Response:
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.2f}"
    return response


def _login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _error_fragment(request: Request, exc: SwitchoverError) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "error.html", {"error": actions.worded(exc), "field": exc.field}, exc.http_status
    )


def _error_page(request: Request, exc: SwitchoverError) -> HTMLResponse:
    """A whole page that says what went wrong (a missing migration, the store down)."""
    context = {"error": exc.message, "field": exc.field, "who": session.principal(request)}
    return templates.TemplateResponse(request, "error_page.html", context, exc.http_status)


def _safe_next(target: str | None) -> str:
    """Only paths on this server: ``next`` never sends the browser elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def dashboard_routes(
    app: App, charts: ChartCache, demo: Callable[[], DemoControl | None]
) -> APIRouter:
    web = APIRouter(include_in_schema=False)
    scores = ScorecardService(app.store, app.clock)

    def page(
        request: Request, template: str, build: Callable[[Principal], dict[str, Any]]
    ) -> Response:
        """A whole page: sign-in first, then ``build`` its context; Server-Timing covers both."""
        started = time.perf_counter()
        try:
            who = session.principal(request)
        except (AuthError, ForbiddenError):
            return _login_redirect(request)
        try:
            context = build(who)
        except SwitchoverError as exc:
            return _error_page(request, exc)
        context.update(who=who, can_operate=session.can_operate(who), demo=demo() is not None)
        return _timed(templates.TemplateResponse(request, template, context), started)

    def fragment(
        request: Request, template: str, build: Callable[[Principal], dict[str, Any]]
    ) -> Response:
        started = time.perf_counter()
        try:
            who = session.principal(request)
            context = build(who)
        except SwitchoverError as exc:
            return _error_fragment(request, exc)
        context.update(who=who, can_operate=session.can_operate(who), demo=demo() is not None)
        return _timed(templates.TemplateResponse(request, template, context), started)

    # signing in ------------------------------------------------------------------------

    @web.get("/login")
    def login_page(request: Request, next: str | None = None, code: str | None = None) -> Response:
        if code:
            token = request.app.state.login_codes.redeem(code)
            if token is not None:
                return _sign_in(request, token, _safe_next(next))
            return _login_form(
                request, _safe_next(next), "this sign-in link was used or expired", 401
            )
        return _login_form(request, _safe_next(next), None, 200)

    @web.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        target = _safe_next(str(form.get("next")))
        refusal = session.cross_site_refusal(request, str(form.get("csrf") or ""))
        if refusal is not None:
            return _login_form(request, target, refusal, 403)
        return _sign_in(request, str(form.get("token") or ""), target)

    def _login_form(request: Request, target: str, error: str | None, status: int) -> Response:
        """The sign-in form, with a fresh CSRF value in a strict cookie and the form."""
        csrf = session.new_csrf()
        response = templates.TemplateResponse(
            request, "login.html", {"next": target, "error": error, "csrf": csrf}, status
        )
        session.set_csrf_cookie(response, csrf, secure=request.url.scheme == "https")
        return response

    def _sign_in(request: Request, token: str, target: str) -> Response:
        try:
            app.tokens.authenticate(token.strip())
        except SwitchoverError as exc:
            return _login_form(request, target, exc.message, exc.http_status)
        response = RedirectResponse(target, status_code=303)
        response.delete_cookie(session.CSRF_COOKIE)
        response.set_cookie(
            session.COOKIE,
            token.strip(),
            max_age=session.COOKIE_MAX_AGE,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @web.post("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(session.COOKIE)
        return response

    # pages ------------------------------------------------------------------------------

    workers = WorkerRegistry(app.store, app.clock)

    @web.get("/")
    def index(request: Request) -> Response:
        return page(
            request,
            "index.html",
            lambda _: {"rows": views.overview(app, scores), "workers": workers.list()},
        )

    @web.get("/migrations/{name}")
    def migration_page(request: Request, name: str) -> Response:
        def build(_: Principal) -> dict[str, Any]:
            now = app.clock.now()
            v = views.migration_view(app, name, scores)
            return {
                "name": name,
                "v": v,
                "data": views.data_view(app, now),
                "audit": views.audit_rows(app.rollout.audit(name, limit=30), now),
                "demo_status": _demo_status(name),
                "default_window": views.default_window(v),
                "windows": views.chart_windows(v),
            }

        return page(request, "migration.html", build)

    @web.get("/migrations/{name}/report")
    def report_page(request: Request, name: str, since: str = "7d") -> Response:
        """The stakeholders' report: the file ``switchover report --html`` writes."""
        started = time.perf_counter()
        try:
            session.principal(request)
        except (AuthError, ForbiddenError):
            return _login_redirect(request)
        try:
            html = report.report_html(
                app, name, since=report.parse_since(since), charts=charts, scores=scores
            )
        except SwitchoverError as exc:
            return _error_page(request, exc)
        return _timed(HTMLResponse(html), started)

    # fragments --------------------------------------------------------------------------

    @web.get("/ui/migrations")
    def migrations_fragment(request: Request) -> Response:
        return fragment(
            request, "_migrations.html", lambda _: {"rows": views.overview(app, scores)}
        )

    def _demo_status(name: str) -> dict[str, Any] | None:
        """The demo's controls, on the demo's own migration only."""
        control = demo()
        status = control.status() if control else None
        return status if status is not None and status.get("migration") == name else None

    @web.get("/ui/migrations/{name}/charts")
    def chart_data(
        request: Request, name: str, window: str = "1h", operation: str | None = None
    ) -> Response:
        started = time.perf_counter()
        try:
            session.principal(request)
            body = charts.charts(name, window, operation or None)
            body = {**body, **views.chart_marks(app, name, body, operation or None)}
        except SwitchoverError as exc:
            return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status)
        return _timed(JSONResponse(body), started)

    @web.get("/ui/migrations/{name}/{panel}")
    def panel(request: Request, name: str, panel: str) -> Response:
        def build(_: Principal) -> dict[str, Any]:
            now = app.clock.now()
            if panel not in PANELS:
                raise ValidationError(
                    f"panel {panel!r} is not known; use one of {', '.join(PANELS)}",
                    field="panel",
                )
            context: dict[str, Any] = {"name": name}
            if panel == "audit":
                context["audit"] = views.audit_rows(app.rollout.audit(name, limit=30), now)
            elif panel == "data":
                context["data"] = views.data_view(app, now)
            elif panel == "demo":
                context["demo_status"] = _demo_status(name)
            else:
                context["v"] = views.migration_view(
                    app,
                    name,
                    scores if panel == "summary" else None,
                    verdicts=panel in ("summary", "verdicts"),
                )
            return context

        return fragment(request, f"_{panel}.html" if panel in PANELS else "error.html", build)

    # controls ---------------------------------------------------------------------------

    @web.post("/ui/migrations/{name}/confirm")
    async def confirm(request: Request, name: str) -> Response:
        form = await request.form()
        try:
            who = session.operator(request)
            action = actions.parse(form)
            title, lines, version = await run_in_threadpool(
                actions.describe, app, name, action, who, demo()
            )
        except SwitchoverError as exc:
            context = {"error": actions.worded(exc), "field": exc.field}
            return templates.TemplateResponse(request, "_confirm.html", context, exc.http_status)
        context = {
            "name": name,
            "title": title,
            "lines": lines,
            "fields": action.form(),
            "version": version,
        }
        return templates.TemplateResponse(request, "_confirm.html", context)

    @web.post("/ui/migrations/{name}/apply")
    async def apply(request: Request, name: str) -> Response:
        form = await request.form()
        try:
            who = session.operator(request)
            action = actions.parse(form)
            raw_version = str(form.get("expected_version") or "")
            expected = int(raw_version) if raw_version.isdigit() and len(raw_version) < 12 else None
            message = await run_in_threadpool(
                actions.apply, app, name, action, who, expected_version=expected, demo=demo()
            )
        except SwitchoverError as exc:
            return _error_fragment(request, exc)
        request.app.state.snapshot.refresh()
        response = templates.TemplateResponse(request, "_flash.html", {"message": message})
        response.headers["HX-Trigger"] = CHANGED_EVENT
        return response

    return web

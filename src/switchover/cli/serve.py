"""CLI: ``init`` (create or upgrade the store) and ``serve`` (the HTTP API and dashboard)."""

from __future__ import annotations

from typing import Annotated

import typer

from switchover.cli import render
from switchover.cli.common import Json, app_of, esc, handled


@handled
def init(ctx: typer.Context, as_json: Json = False) -> None:
    """Create the store, or bring its schema up to date (safe to run again)."""
    from switchover.store.engine import redact_url

    a = app_of(ctx, migrate=True)
    url = redact_url(a.settings.database_url)
    if as_json:
        render.emit_json({"ok": True, "database": url})
    else:
        render.console.print(f"store ready at {esc(url)}")


@handled
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo/--no-demo",
            help="On an empty store, create the demo: migration voice_v2, a plan with "
            "phases of minutes, and simulated legacy/candidate voice traffic through the "
            "router (resumed on later starts of the same store). --no-demo: the plain server.",
        ),
    ] = True,
    controller: Annotated[
        bool,
        typer.Option(
            "--controller/--no-controller",
            help="Run the rollout controller in this process (only one replica leads).",
        ),
    ] = True,
    demo_rate: Annotated[
        float,
        typer.Option("--demo-rate", min=0.1, help="Simulated calls per second of the demo."),
    ] = 15.0,
) -> None:
    """Apply pending schema migrations, then serve the dashboard (/) and the HTTP API."""
    import uvicorn

    from switchover.api.app import create_app
    from switchover.store.engine import redact_url

    if demo:
        _ensure_secret_key()
    a = app_of(ctx, migrate=True)
    traffic = None
    if demo:
        from switchover.demo import demo_active, ensure_demo
        from switchover.demo.traffic import DemoTraffic

        if ensure_demo(a):
            print(
                "created the demo: migration voice_v2, a plan with phases of minutes, "
                "simulated voice traffic",
                flush=True,
            )
        if demo_active(a):
            traffic = DemoTraffic(a, rate=demo_rate)
    api = create_app(a, demo=traffic)
    login = f"http://{host}:{port}/login"
    if not a.tokens.list() and demo:
        token = a.tokens.create("dashboard", "operator", actor="switchover")
        login = f"{login}?code={api.state.login_codes.issue(token)}"
        print(
            "created the operator token 'dashboard'; the sign-in link works once, within the hour",
            flush=True,
        )
    elif not a.tokens.list():
        render.console.print(
            "no API tokens yet: create one with "
            "[bold]switchover token create me --role admin[/bold]"
        )
    print(f"switchover serving {redact_url(a.settings.database_url)}", flush=True)
    print(f"  dashboard: http://{host}:{port}/", flush=True)
    print(f"  sign in:   {login}", flush=True)
    print(f"  API:       http://{host}:{port}/v1/migrations", flush=True)
    print(f"  API docs:  http://{host}:{port}/docs", flush=True)
    stop = None
    if controller:
        from switchover.control.controller import start_in_thread

        _, stop = start_in_thread(a.controller())
        print("  controller: on (plans advance and roll back on evidence)", flush=True)
    if traffic is not None:
        print(f"  demo: {demo_rate:g} simulated calls/s on voice_v2 (--no-demo to turn off)")
    try:
        uvicorn.run(
            api,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
        )
    finally:
        if stop is not None:
            stop.set()


def _ensure_secret_key() -> None:
    """A first run gets a secret key for agent keys, kept in ./.env (read by the CLI run
    from the same directory too), so the server and the CLI never disagree on it."""
    import os
    from pathlib import Path

    from switchover.agents.keyring import ENV_VAR, generate_key
    from switchover.cli.common import ENV_FILE

    if os.environ.get(ENV_VAR):
        return
    key = generate_key()
    path = Path(ENV_FILE)
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    separator = "" if not existing or existing.endswith("\n") else "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(f"{separator}{ENV_VAR}={key}\n")
    os.environ[ENV_VAR] = key
    print(
        f"wrote a new {ENV_VAR} to {path.resolve()} (the CLI run from this directory reads it)",
        flush=True,
    )

"""``switchover``: manage migrations, rollouts, tenants and tokens; serve the API."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.text import Text

from switchover.bootstrap import App, bootstrap
from switchover.cli import render
from switchover.core.migration import Override
from switchover.errors import SwitchoverError, ValidationError
from switchover.settings import Settings, default_actor
from switchover.store.engine import redact_url

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="switchover",
    help="Move AI voice and chat agents from a legacy implementation to a new one, "
    "with zero downtime: sticky per-call decisions, live rollout changes, audit log.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
migration_app = typer.Typer(help="Create and inspect migrations.", no_args_is_help=True)
rollout_app = typer.Typer(
    help="Change how much traffic goes to the candidate.", no_args_is_help=True
)
feature_app = typer.Typer(help="Switch a migration's features on or off.", no_args_is_help=True)
tenant_app = typer.Typer(
    help="Force tenants onto one side (allow = candidate, deny = legacy).", no_args_is_help=True
)
token_app = typer.Typer(help="API tokens and their roles.", no_args_is_help=True)
app.add_typer(migration_app, name="migration")
app.add_typer(rollout_app, name="rollout")
app.add_typer(feature_app, name="feature")
app.add_typer(tenant_app, name="tenant")
app.add_typer(token_app, name="token")


class _State:
    db: str | None = None
    _app: App | None = None

    def app(self, *, migrate: bool = False) -> App:
        if self._app is None:
            self._app = bootstrap(Settings.from_env(self.db), migrate=migrate)
        return self._app


state = _State()

Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
By = Annotated[
    str | None,
    typer.Option(
        "--by",
        help="Who makes the change (audit log). Default: $SWITCHOVER_ACTOR or your user name.",
        show_default=False,
    ),
]
Reason = Annotated[str, typer.Option("--reason", help="Why (audit log).")]
ExpectVersion = Annotated[
    int | None,
    typer.Option(
        "--expect-version",
        help="Refuse the change unless the migration is still at this version "
        "(optimistic concurrency for scripts).",
    ),
]
Name = Annotated[str, typer.Argument(help="The migration's name, e.g. voice_v2.")]


def who(by: str | None) -> str:
    return default_actor() if by is None else by


def handled(fn: F) -> F:
    """Turn switchover errors into a message on stderr and the error's exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SwitchoverError as exc:
            field = f" ({exc.field})" if exc.field else ""
            render.err_console.print(
                f"[red]error{field}:[/red] {escape(exc.message)}", highlight=False
            )
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def _root(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Store URL: sqlite:///FILE or postgresql+psycopg://USER@HOST/DB. "
            "Default: $SWITCHOVER_DATABASE_URL, else sqlite:///./switchover.db.",
            show_default=False,
        ),
    ] = None,
) -> None:
    state.db = db


def _show(m: Any, as_json: bool) -> None:
    if as_json:
        render.emit_json(m.to_dict())
    else:
        render.console.print(render.migration_detail(m))


# --- set-up ------------------------------------------------------------------------


@app.command()
@handled
def init(as_json: Json = False) -> None:
    """Create the store, or bring its schema up to date (safe to run again)."""
    a = state.app(migrate=True)
    url = redact_url(a.settings.database_url)
    if as_json:
        render.emit_json({"ok": True, "database": url})
    else:
        render.console.print(f"store ready at {url}")


# --- migrations --------------------------------------------------------------------


@migration_app.command("create")
@handled
def migration_create(
    name: Name,
    features: Annotated[
        str, typer.Option("--features", help="Comma-separated feature names, e.g. stt,tts.")
    ] = "",
    stickiness: Annotated[
        str,
        typer.Option("--stickiness", help="Context key that keeps a caller on one side."),
    ] = "user_id",
    tenant_key: Annotated[
        str, typer.Option("--tenant-key", help="Context key that names the tenant.")
    ] = "tenant_id",
    description: Annotated[str, typer.Option("--description", help="What moves where.")] = "",
    legacy_label: Annotated[str, typer.Option("--legacy", help="Label of the legacy side.")] = (
        "legacy"
    ),
    candidate_label: Annotated[
        str, typer.Option("--candidate", help="Label of the candidate side.")
    ] = "candidate",
    by: By = None,
    reason: Reason = "",
    as_json: Json = False,
) -> None:
    """Create a migration: master switch on, 0 %, every feature off."""
    feature_list = [f for f in (x.strip() for x in features.split(",")) if f] if features else []
    m = state.app(migrate=True).rollout.create(
        name,
        features=feature_list,
        stickiness=stickiness,
        tenant_key=tenant_key,
        description=description,
        legacy_label=legacy_label,
        candidate_label=candidate_label,
        actor=who(by),
        reason=reason,
    )
    _show(m, as_json)


@migration_app.command("list")
@handled
def migration_list(as_json: Json = False) -> None:
    """List every migration."""
    migrations = state.app().rollout.list()
    if as_json:
        render.emit_json([m.to_dict() for m in migrations])
    elif not migrations:
        render.console.print("no migrations yet: switchover migration create NAME --features stt")
    else:
        render.console.print(render.migration_table(migrations))


@migration_app.command("show")
@handled
def migration_show(name: Name, as_json: Json = False) -> None:
    """Show one migration in full."""
    _show(state.app().rollout.get(name), as_json)


# --- rollout changes ---------------------------------------------------------------


@rollout_app.command("set")
@handled
def rollout_set(
    name: Name,
    percentage: Annotated[
        str, typer.Option("--percentage", "-p", help="Share of callers on the candidate, 0-100.")
    ],
    by: By = None,
    reason: Reason = "",
    expect_version: ExpectVersion = None,
    as_json: Json = False,
) -> None:
    """Set the percentage of callers that go to the candidate (sticky per caller)."""
    m = state.app().rollout.set_percentage(
        name, percentage, actor=who(by), reason=reason, expected_version=expect_version
    )
    _show(m, as_json)


def _feature_command(on: bool) -> Callable[..., None]:
    @handled
    def command(
        name: Name,
        feature: Annotated[str, typer.Argument(help="The feature, e.g. stt.")],
        by: By = None,
        reason: Reason = "",
        expect_version: ExpectVersion = None,
        as_json: Json = False,
    ) -> None:
        m = state.app().rollout.set_feature(
            name, feature, on, actor=who(by), reason=reason, expected_version=expect_version
        )
        _show(m, as_json)

    command.__doc__ = (
        "Switch a feature on: its calls follow the percentage and tenant overrides."
        if on
        else "Switch a feature off: all its calls go to legacy."
    )
    return command


feature_app.command("enable")(_feature_command(True))
feature_app.command("disable")(_feature_command(False))


def _tenant_command(override: Override | None, doc: str) -> Callable[..., None]:
    @handled
    def command(
        name: Name,
        tenant: Annotated[str, typer.Argument(help="The tenant id.")],
        by: By = None,
        reason: Reason = "",
        expect_version: ExpectVersion = None,
        as_json: Json = False,
    ) -> None:
        m = state.app().rollout.set_tenant(
            name, tenant, override, actor=who(by), reason=reason, expected_version=expect_version
        )
        _show(m, as_json)

    command.__doc__ = doc
    return command


tenant_app.command("enable")(
    _tenant_command(Override.ALLOW, "Force a tenant onto the candidate, whatever the percentage.")
)
tenant_app.command("disable")(
    _tenant_command(Override.DENY, "Force a tenant onto legacy, whatever the percentage.")
)
tenant_app.command("clear")(
    _tenant_command(None, "Remove a tenant's override: it follows the percentage again.")
)


@tenant_app.command("register")
@handled
def tenant_register(
    name: Name,
    tenants: Annotated[list[str], typer.Argument(help="Tenant ids that exist, for status.")],
    by: By = None,
    reason: Reason = "",
    as_json: Json = False,
) -> None:
    """Tell switchover which tenants exist, so status counts tenants on the candidate."""
    added = state.app().rollout.register_tenants(name, tenants, actor=who(by), reason=reason)
    if as_json:
        render.emit_json({"added": added, "given": len(tenants)})
    else:
        render.console.print(f"{added} new tenant(s) registered ({len(tenants)} given)")


@app.command()
@handled
def kill(
    name: Name,
    by: By = None,
    reason: Reason = "",
    expect_version: ExpectVersion = None,
    as_json: Json = False,
) -> None:
    """Master switch off: every call goes to legacy at once (immediate rollback)."""
    m = state.app().rollout.kill(
        name, actor=who(by), reason=reason, expected_version=expect_version
    )
    _show(m, as_json)


@app.command()
@handled
def resume(
    name: Name,
    by: By = None,
    reason: Reason = "",
    expect_version: ExpectVersion = None,
    as_json: Json = False,
) -> None:
    """Master switch back on; a paused or rolled-back plan advances again."""
    a = state.app()
    current = a.rollout.get(name)
    plan = a.plans.find(name)
    plan_waits = plan is not None and plan.status.value in ("paused", "rolled_back")
    if not current.enabled or not plan_waits:
        current = a.rollout.resume(
            name, actor=who(by), reason=reason, expected_version=expect_version
        )
    if plan_waits:
        plan = a.plans.resume(name, actor=who(by), reason=reason)
        if not as_json:
            render.console.print(f"plan {plan.plan.name} is running again at {plan.phase_name}")
    _show(current, as_json)


# --- reading ------------------------------------------------------------------------


@app.command()
@handled
def status(
    name: Annotated[str | None, typer.Argument(help="One migration; all if omitted.")] = None,
    as_json: Json = False,
) -> None:
    """Rollout status: percentage, tenants on candidate, last change; plan phase and verdict."""
    from switchover.cli.render_plans import plan_status_rows

    a = state.app()
    rollout = a.rollout
    names = [name] if name else [m.name for m in rollout.list()]
    statuses = [rollout.status(n) for n in names]
    plans = {n: a.plans.status(n) for n in names}
    if as_json:
        data = [{**s.to_dict(), "plan": plans[s.migration.name]} for s in statuses]
        render.emit_json(data[0] if name else data)
        return
    if not statuses:
        render.console.print("no migrations yet: switchover migration create NAME --features stt")
    for s in statuses:
        table = render.status_panel(s)
        plan = plans[s.migration.name]
        if plan is not None:
            plan_status_rows(table, plan)
        render.console.print(table)


@app.command()
@handled
def audit(
    name: Name,
    limit: Annotated[int, typer.Option("--limit", help="How many entries, newest first.")] = 50,
    as_json: Json = False,
) -> None:
    """The audit log of a migration: who changed what, when, and why."""
    entries = state.app().rollout.audit(name, limit=limit)
    if as_json:
        render.emit_json([e.to_dict() for e in entries])
    else:
        render.console.print(render.audit_table(name, entries))


_CONTEXT = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$")


def parse_context(pairs: list[str]) -> dict[str, str]:
    context: dict[str, str] = {}
    for pair in pairs:
        match = _CONTEXT.match(pair)
        if match is None:
            raise ValidationError(
                f"--context {pair!r} is not KEY=VALUE (for example --context user_id=42)",
                field="context",
            )
        context[match.group(1)] = match.group(2)
    return context


@app.command()
@handled
def decide(
    name: Name,
    feature: Annotated[
        str | None, typer.Option("--feature", "-f", help="The feature the call uses.")
    ] = None,
    context: Annotated[
        list[str] | None,
        typer.Option("--context", "-c", help="KEY=VALUE, repeatable: user_id=42 tenant_id=t1."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Which side would serve a call with this context, and why."""
    ctx = parse_context(context or [])
    (d,) = state.app().rollout.decide(name, feature, [ctx])
    if as_json:
        render.emit_json(d.to_dict() | {"context": ctx})
    else:
        colour = "green" if d.candidate else "yellow"
        render.console.print(
            f"[{colour}]{d.side.value}[/{colour}] ({d.reason.value}) "
            f"for {name}{'/' + feature if feature else ''} at version {d.version}"
        )


@app.command()
@handled
def metrics(
    name: Name,
    window: Annotated[
        str, typer.Option("--window", "-w", help="How far back: 90s, 15m, 2h, 7d.")
    ] = "15m",
    operation: Annotated[
        str | None, typer.Option("--operation", "-o", help="One operation (default: all).")
    ] = None,
    samples: Annotated[
        int, typer.Option("--samples", help="Also show this many recent shadow mismatches.")
    ] = 0,
    as_json: Json = False,
) -> None:
    """Legacy and candidate side by side: calls, error and fallback rates, latency, outcomes."""
    from switchover.core.timewindow import parse_duration

    a = state.app()
    report = a.metrics.window(name, last=parse_duration(window), operation=operation).to_dict()
    shown = a.metrics.shadow_samples(name, limit=samples) if samples > 0 else []
    if as_json:
        render.emit_json(report | ({"shadow_samples": shown} if samples > 0 else {}))
        return
    render.console.print(render.metrics_table(report))
    for sample in shown:
        line = Text(sample["kind"], style="bold")
        line.append(
            f" {sample['operation']} at {sample['at'][:19]}: legacy={sample.get('legacy')!r} "
            f"candidate={sample.get('candidate')!r} context={sample.get('context')!r}"
        )
        render.console.print(line, highlight=False)


# --- tokens ------------------------------------------------------------------------


@token_app.command("create")
@handled
def token_create(
    name: Annotated[str, typer.Argument(help="A name for the token; it becomes the audit actor.")],
    role: Annotated[
        str, typer.Option("--role", help="viewer (read), worker, operator (change), admin.")
    ] = "viewer",
    by: By = None,
    as_json: Json = False,
) -> None:
    """Create an API token. It is shown once; only its hash is stored."""
    token = state.app(migrate=True).tokens.create(name, role, actor=who(by))
    if as_json:
        render.emit_json({"name": name, "role": role, "token": token})
    else:
        render.console.print(f"token {name!r} ({role}) created; it will not be shown again:")
        print(token)


@token_app.command("list")
@handled
def token_list(as_json: Json = False) -> None:
    """List tokens (names and roles; never the tokens themselves)."""
    tokens = state.app().tokens.list()
    rows = [
        {
            "name": t.name,
            "role": t.role,
            "created_at": t.created_at.isoformat(),
            "created_by": t.created_by,
            "revoked": t.revoked_at is not None,
        }
        for t in tokens
    ]
    if as_json:
        render.emit_json(rows)
        return
    from rich.table import Table

    table = Table(title="tokens")
    for col in ("name", "role", "created_at", "created_by", "revoked"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(str(r[c]) for c in ("name", "role", "created_at", "created_by", "revoked")))
    render.console.print(table)


@token_app.command("revoke")
@handled
def token_revoke(
    name: Annotated[str, typer.Argument(help="The token's name.")], as_json: Json = False
) -> None:
    """Revoke a token: the API refuses it from now on (within 5 s on running servers)."""
    state.app().tokens.revoke(name)
    if as_json:
        render.emit_json({"revoked": name})
    else:
        render.console.print(f"token {name!r} revoked")


# --- server ------------------------------------------------------------------------


@app.command()
@handled
def serve(
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

    a = state.app(migrate=True)
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
        from switchover.control.controller import Controller, start_in_thread
        from switchover.control.notify import Notifier

        notifier = Notifier()
        _, stop = start_in_thread(Controller(a.store, a.clock, notifier=notifier))
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
            notifier.close()


def main() -> None:
    app()


from switchover.cli import agents as _agents  # noqa: E402, F401  (agents, worker, loadtest)
from switchover.cli import data as _data  # noqa: E402, F401  (registers `data …`)
from switchover.cli import plans as _plans  # noqa: E402  (registers plan/controller commands)

del _plans


if __name__ == "__main__":
    # run through the imported module, whose app has the plan commands registered
    from switchover.cli.main import main as _main

    _main()

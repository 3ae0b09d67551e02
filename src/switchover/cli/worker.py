"""CLI: the core worker, its load test and its cost estimate (seed 000)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from switchover.cli import render
from switchover.cli.common import Json, app_of, esc, handled

if TYPE_CHECKING:
    from switchover.worker.settings import WorkerSettings

worker_app = typer.Typer(
    help="The core worker: one process serving every agent (seed 000).", no_args_is_help=True
)

EnvFile = Annotated[
    Path,
    typer.Option("--env-file", help="A .env file read before the environment (python-dotenv)."),
]


def _startup_report(settings: WorkerSettings, backend_state: tuple[bool, str]) -> None:
    """Seed 000 step 3.1's start-up report; secrets only as SET / NOT SET."""
    r = settings.report()
    ok, why = backend_state
    print("🚀 Core Voice Worker Starting...", flush=True)
    print(
        "✓ Loaded environment configuration" + (f" (and {r['env_file']})" if r["env_file"] else ""),
        flush=True,
    )
    print(f"  - LiveKit URL: {r['livekit_url'] or 'NOT SET'}")
    print(f"  - Backend API: {r['backend_url']}")
    print(f"  - Worker Name: {r['worker_name']}")
    print(f"  - Max Concurrency: {r['max_concurrency']} jobs (beyond: {r['overflow']})")
    print(
        f"  - Config cache: {r['config_cache_ttl']:g} s TTL, stale up to "
        f"{r['config_max_staleness']:g} s"
    )
    print(f"  - Drain timeout: {r['drain_timeout']:g} s")
    if r["migration"]:
        print(
            f"  - Recording jobs into migration {r['migration']} as {r['side']} "
            f"({', '.join(r['operations'])})"
        )
    for name, present in r["secrets"].items():
        print(f"  - {name}: {'SET' if present else 'NOT SET'}")
    print(("✓ " if ok else "✗ ") + f"Backend {why}", flush=True)


def _run_worker(dev: bool, env_file: Path, check: bool) -> None:
    from switchover.worker.backend import Backend
    from switchover.worker.calls import Dispatcher
    from switchover.worker.config_client import ConfigClient
    from switchover.worker.livekit_app import CoreWorker, require_livekit
    from switchover.worker.runtime import WorkerRuntime
    from switchover.worker.settings import WorkerSettings

    settings = WorkerSettings.from_env(env_file=env_file)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per config fetch is noise
    backend = Backend(settings.backend_url, settings.token)
    _startup_report(settings, backend.healthy())
    if check:
        backend.close()
        return
    require_livekit()
    from switchover.worker.providers import preload

    plugins = preload()  # on the main thread, as LiveKit requires
    print(
        "✓ Provider plugins: "
        + ", ".join(p for p, ok in plugins.items() if ok)
        + "".join(f"; {p}: NOT INSTALLED" for p, ok in plugins.items() if not ok),
        flush=True,
    )
    if not settings.livekit_url:
        from switchover.errors import ValidationError

        raise ValidationError(
            "LIVEKIT_URL is not set: the worker needs a LiveKit server (wss://…) to take jobs",
            field="LIVEKIT_URL",
        )
    configs = ConfigClient(
        backend.runtime_config,
        ttl=settings.config_cache_ttl,
        max_staleness=settings.config_max_staleness,
        env=settings.env,
    )
    runtime = WorkerRuntime(
        settings.max_concurrency,
        overflow=settings.overflow,
        max_queue_depth=settings.max_queue_depth,
        queue_timeout=settings.queue_timeout,
    )
    recorder, client = _job_recorder(settings)
    core = CoreWorker(
        settings, Dispatcher(configs, backend.inbound_route), runtime, recorder=recorder
    )
    beats = None
    if settings.heartbeat_interval > 0:
        from switchover.worker.heartbeat import Heartbeat

        beats = Heartbeat(backend.heartbeat, core.heartbeat_body, settings.heartbeat_interval)
        beats.start()
    try:
        asyncio.run(_serve(core, dev))
    finally:
        if beats is not None:
            beats.stop()
            beats.once()  # the last word: jobs after the drain
        backend.close()
        if client is not None:
            client.close()  # flushes the last recorded jobs


def _job_recorder(settings: WorkerSettings) -> tuple[Any, Any]:
    """With SWITCHOVER_MIGRATION: a client of the control plane and a job recorder."""
    if not settings.migration:
        return None, None
    from switchover.sdk.client import connect
    from switchover.worker.recording import JobRecorder

    client = connect(settings.backend_url, token=settings.token)
    handle = client.migration(settings.migration)
    if handle.snapshot is None:
        print(
            f"✗ Migration {settings.migration} is not on {settings.backend_url} (yet): jobs "
            "are recorded once it exists",
            flush=True,
        )
    return JobRecorder(handle, settings.side, settings.operations), client


async def _serve(core: Any, dev: bool) -> None:
    """Run the LiveKit server until SIGTERM/SIGINT, then drain running calls and stop."""
    server = core.server()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = asyncio.create_task(server.run(devmode=dev))
    print(f"✓ Registering as worker: {core.settings.worker_name}", flush=True)
    print("🎯 Worker is ready! Waiting for calls...", flush=True)
    print("💡 Press Ctrl+C (or send SIGTERM) to drain and stop", flush=True)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({running, stopper}, return_when=asyncio.FIRST_COMPLETED)
    if not stop.is_set():
        stopper.cancel()
        await running  # the server stopped by itself: report its error
        return
    timeout = core.settings.drain_timeout
    print(f"⏳ Draining: running calls may finish for up to {timeout:g} s", flush=True)
    result = await core.runtime.drain(timeout)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(server.aclose(), 10)
    running.cancel()
    with contextlib.suppress(BaseException):
        await running
    print(
        f"✓ Drained in {result.seconds:.1f} s: {result.finished} call(s) finished, "
        f"{result.cancelled} cancelled",
        flush=True,
    )


Check = Annotated[bool, typer.Option("--check", help="Print the start-up report and exit.")]


@worker_app.command("dev")
@handled
def worker_dev(
    env_file: EnvFile = Path(".env"),
    check: Check = False,
) -> None:
    """Run the worker in LiveKit's development mode (verbose, no load threshold in LiveKit)."""
    _run_worker(True, env_file, check)


@worker_app.command("start")
@handled
def worker_start(
    env_file: EnvFile = Path(".env"),
    check: Check = False,
) -> None:
    """Run the worker for production: MAX_CONCURRENCY enforced, graceful drain on SIGTERM."""
    _run_worker(False, env_file, check)


@worker_app.command("list")
@handled
def worker_list(ctx: typer.Context, as_json: Json = False) -> None:
    """The workers that sent a heartbeat: name, version, jobs, load, last seen, and
    whether each is active (seen within three of its heartbeat intervals)."""
    from rich.table import Table

    from switchover.worker.registry import WorkerRegistry

    app = app_of(ctx)
    workers = WorkerRegistry(app.store, app.clock).list()
    if as_json:
        render.emit_json(workers)
        return
    if not workers:
        render.console.print(
            "no worker has sent a heartbeat: start one with 'switchover worker start' "
            "(BACKEND_URL pointing at 'switchover serve')"
        )
        return
    table = Table(title="workers")
    for col in ("name", "instance", "version", "status", "jobs", "load", "last seen"):
        table.add_column(col, justify="right" if col in ("jobs", "load") else "left")
    for w in workers:
        table.add_row(
            esc(w["name"]),
            esc(w["instance"]),
            esc(w["version"]),
            w["status"],
            f"{w['jobs_active']} / {w['jobs_total']}",
            f"{w['load']:.0%}",
            f"{w['seconds_since_seen']:g} s ago",
        )
    render.console.print(table)


@worker_app.command("cost-estimate")
@handled
def worker_cost_estimate(
    agents: Annotated[int, typer.Option("--agents", help="Agents with a deployment each.")] = 40,
    per_agent: Annotated[
        float, typer.Option("--per-agent", help="Monthly cost of one per-agent deployment ($).")
    ] = 20.0,
    workers: Annotated[int, typer.Option("--workers", help="Core worker instances.")] = 2,
    per_worker: Annotated[
        float, typer.Option("--per-worker", help="Monthly cost of one core worker ($).")
    ] = 60.0,
    as_json: Json = False,
) -> None:
    """Monthly cost before (one deployment per agent) and after (core workers), and the saving."""
    from rich.table import Table

    from switchover.core.cost import estimate

    e = estimate(agents, per_agent, workers, per_worker)
    data = e.to_dict()
    if as_json:
        render.emit_json(data)
        return
    table = Table(title="monthly cost: per-agent deployments -> core worker")
    for col in ("", "count", "each", "monthly"):
        table.add_column(col, justify="right" if col else "left")
    table.add_row(
        "before: per-agent deployments", str(agents), f"${per_agent:,.2f}", f"${e.before:,.2f}"
    )
    table.add_row("after: core workers", str(workers), f"${per_worker:,.2f}", f"${e.after:,.2f}")
    pct = "-" if e.saving_pct is None else f"{e.saving_pct:.1f} %"
    table.add_row("saving", "", pct, f"${e.saving:,.2f}")
    render.console.print(table)
    render.console.print(f"yearly saving: ${e.saving * 12:,.2f}")


@handled
def loadtest(
    agents: Annotated[
        str, typer.Option("--agents", help="Comma-separated agent ids, rotated per call.")
    ],
    concurrent: Annotated[
        int, typer.Option("--concurrent", help="Simultaneous callers (1-1000).")
    ] = 10,
    duration: Annotated[
        float, typer.Option("--duration", help="Seconds to place calls for (at most 3600).")
    ] = 300.0,
    campaign: Annotated[
        str | None,
        typer.Option("--campaign", help="The calls' campaign (the agents must be in it)."),
    ] = None,
    turns: Annotated[
        int, typer.Option("--turns", help="Caller turns per call, each answered by the session.")
    ] = 3,
    turn_ms: Annotated[
        float,
        typer.Option(
            "--turn-ms", help="The fake LLM's time to its first token, milliseconds (±30 %)."
        ),
    ] = 300.0,
    max_calls: Annotated[
        int, typer.Option("--max-calls", help="Stop after this many calls.")
    ] = 100_000,
    migration: Annotated[
        str | None,
        typer.Option(
            "--migration",
            help="Route each call with this migration (stickiness campaign_id): candidate = "
            "the core worker, legacy = a per-agent deployment (the same entrypoint, its own "
            "slots).",
        ),
    ] = None,
    target_concurrency: Annotated[
        int | None,
        typer.Option(
            "--target-concurrency",
            help="Calls the core worker must hold at once, none queued or refused "
            "(default: --concurrent; lower it when --migration sends only a share).",
        ),
    ] = None,
    env_file: EnvFile = Path(".env"),
    as_json: Json = False,
) -> None:
    """Seed 000 step 3.3: calls through the worker's own entrypoint (livekit-agents' fake job
    context, an AgentSession per call, fake LLM and TTS) against the control plane at
    BACKEND_URL (loopback only). Exits 1 when an acceptance criterion fails, and stops
    early, naming the reason and its fix, when every call fails for the same reason."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from switchover.core.loadtest import acceptance
    from switchover.worker.loadtest import LoadtestOptions, run_loadtest
    from switchover.worker.loadtest import render as render_report
    from switchover.worker.settings import WorkerSettings

    settings = WorkerSettings.from_env(env_file=env_file)
    opts = LoadtestOptions(
        agents=[a.strip() for a in agents.split(",") if a.strip()],
        concurrent=concurrent,
        duration=duration,
        campaign=campaign,
        turns=turns,
        turn_ms=turn_ms,
        max_calls=max_calls,
        migration=migration,
        target_concurrency=target_concurrency,
    )
    with Progress(
        TextColumn("load test"),
        BarColumn(),
        TextColumn("{task.fields[calls]} calls"),
        TimeRemainingColumn(),
        console=render.err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("load", total=1.0, calls=0)

        def progress(done: float, calls: int) -> None:
            bar.update(task, completed=done, calls=calls)

        report = asyncio.run(run_loadtest(settings, opts, progress))
    criteria = acceptance(report)
    passed = all(c.passed for c in criteria) and not report.stopped_early
    if as_json:
        render.emit_json(
            {**report.to_dict(), "criteria": [c.to_dict() for c in criteria], "passed": passed}
        )
    else:
        print(render_report(report, criteria))
    if report.stopped_early:
        why = esc(report.stopped_early["message"])
        render.err_console.print(
            f"[red]error:[/red] the load test stopped early: {why}",
            highlight=False,
        )
    if not passed:
        raise typer.Exit(1)

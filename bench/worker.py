"""switchover core-worker benchmark: config fetches, single-flight, the endpoint, jobs/s.

Run from the repository root::

    .venv/bin/python bench/worker.py              # about a minute
    .venv/bin/python bench/worker.py --quick      # about 30 s
    .venv/bin/python bench/worker.py --json out.json

``bench/run.py`` runs this too (``--no-worker`` skips it), its figures under "worker".

Against a real ``switchover serve`` on 127.0.0.1 (a temporary SQLite store holding
``examples/agents.json``, the greeting agent with an encrypted key):

1. Config fetch as a job sees it (``ConfigClient.get``): uncached (TTL 0, every call an
   HTTP GET of ``/api/v1/agents/{id}/runtime-config``) and cached (TTL 300 s), p50/p99.
2. Single-flight: 100 jobs starting at once for one agent with a cold cache; fetches
   made, against 100 without single-flight.
3. The runtime-config endpoint: closed-loop requests/s (16 keep-alive connections), and
   an open-loop run at a fixed 500 requests/s, whose p99 counts from each request's
   scheduled time (no coordinated omission). Goal: p99 < 5 ms at 500 req/s.
4. Jobs per second the worker sustains: simulated calls (dispatch, config, slot, no
   conversation) through ``run_loadtest`` with MAX_CONCURRENCY 25 and 50 callers.

Exit status: 0 when the run completed (a missed goal is informational), 2 on an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness
import httpload

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "agents.json"
GREETER = "cmgr32z4q000039dudjfah00c"
AGENTS = ["cmgr32z4q000039dudjfah00c", "cmgr3b1xk000139du8h2kq7pz", "cmgr3c7pa000239dubv0m1yqe"]
GOAL_P99_MS = 5.0
say = harness.say


def _cli(cli: Path, db: str, *args: str, env: dict[str, str]) -> str:
    res = subprocess.run(
        [str(cli), "--db", db, *args], capture_output=True, text=True, env=env, check=True
    )
    return res.stdout


def _pct(values: list[float], q: float) -> float:
    return harness.percentile(sorted(values), q)


async def _fetch_latencies(base: str, token: str, n: int, ttl: float) -> list[float]:
    from switchover.worker.backend import Backend
    from switchover.worker.config_client import ConfigClient

    backend = Backend(base, token)
    client = ConfigClient(backend.runtime_config, ttl=ttl)
    await client.get(GREETER)  # warm the connection (and, cached, the entry)
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await client.get(GREETER)
        out.append((time.perf_counter() - t0) * 1000)
    backend.close()
    return out


async def _single_flight(base: str, token: str, starts: int) -> dict[str, Any]:
    from switchover.worker.backend import Backend
    from switchover.worker.config_client import ConfigClient

    backend = Backend(base, token)
    client = ConfigClient(backend.runtime_config, ttl=300)
    t0 = time.perf_counter()
    await asyncio.gather(*(client.get(GREETER) for _ in range(starts)))
    elapsed = (time.perf_counter() - t0) * 1000
    backend.close()
    s = client.stats
    return {
        "starts": starts,
        "fetches": s.fetches,
        "fetches_without_single_flight": starts,
        "saved": starts - s.fetches,
        "all_started_ms": round(elapsed, 2),
    }


def _requests(port: int, token: str, n: int = 64) -> list[bytes]:
    raw = (
        f"GET /api/v1/agents/{GREETER}/runtime-config?campaignId=camp_inbound_reception "
        f"HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    return [raw] * n


async def _open_loop(port: int, raw: bytes, rate: float, seconds: float) -> dict[str, Any]:
    """Send at a fixed rate on a pool of connections; latency from the scheduled time."""
    pool: asyncio.Queue[Any] = asyncio.Queue()
    for _ in range(32):
        pool.put_nowait(httpload._Conn(port))
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter() + 0.05
    total = int(rate * seconds)

    async def one(i: int) -> None:
        nonlocal errors
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        conn = await pool.get()
        try:
            status = await conn.request(raw)
        except Exception:
            status = -1
            await conn.close()
        finally:
            pool.put_nowait(conn)
        if status == 200:
            latencies.append((time.perf_counter() - scheduled) * 1000)
        else:
            errors += 1

    await asyncio.gather(*(one(i) for i in range(total)))
    while not pool.empty():
        await pool.get_nowait().close()
    achieved = len(latencies) / seconds
    return {
        "target_rps": rate,
        "achieved_rps": round(achieved, 1),
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": round(_pct(latencies, 50), 3),
        "p99_ms": round(_pct(latencies, 99), 3),
        "max_ms": round(max(latencies), 3) if latencies else None,
    }


def _jobs_per_second(base: str, token: str, seconds: float) -> dict[str, Any]:
    from switchover.worker.loadtest import LoadtestOptions, run_loadtest
    from switchover.worker.settings import WorkerSettings

    settings = WorkerSettings.from_env(
        {
            "BACKEND_URL": base,
            "SWITCHOVER_TOKEN": token,
            "MAX_CONCURRENCY": "25",
            "WORKER_OVERFLOW": "queue",
            "MAX_QUEUE_DEPTH": "100",
        }
    )
    opts = LoadtestOptions(
        agents=AGENTS, concurrent=50, duration=seconds, turns=1, turn_ms=0, session_ms=0
    )
    report = asyncio.run(run_loadtest(settings, opts))
    return {
        "jobs": report.total_calls,
        "seconds": round(report.duration_s, 2),
        "jobs_per_s": round(report.total_calls / report.duration_s, 1),
        "success_rate": report.success_rate,
        "cache_hit_rate": report.cache_hit_rate,
        "peak_active_jobs": report.peak_active_jobs,
        "max_queue_depth": report.max_queue_depth,
        "max_concurrency": 25,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/worker.py", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="shorter runs")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    p.add_argument("--cli", help="switchover executable (default: the venv's)")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from cryptography.fernet import Fernet

    n = 300 if args.quick else 1000
    secs = 3.0 if args.quick else 6.0
    cli = Path(args.cli) if args.cli else httpload.default_cli()
    env = {
        **os.environ,
        "SWITCHOVER_SECRET_KEY": Fernet.generate_key().decode(),
        "GREETING_OPENAI_API_KEY": "sk-bench-not-a-real-key",
    }
    os.environ["SWITCHOVER_SECRET_KEY"] = env["SWITCHOVER_SECRET_KEY"]  # the server inherits it
    fig: dict[str, Any] = {"meta": {"cpus": os.cpu_count(), "quick": args.quick}}
    with tempfile.TemporaryDirectory(prefix="switchover-worker-") as tmp:
        workdir = Path(tmp)
        db = f"sqlite:///{workdir / 'bench.db'}"
        _cli(cli, db, "init", env=env)
        _cli(cli, db, "agents", "import", str(EXAMPLE), env=env)
        token = json.loads(
            _cli(cli, db, "token", "create", "bench-worker", "--role", "worker", "--json", env=env)
        )["token"]
        server = httpload.start_server(cli, db, workdir)
        try:
            base = server.base_url
            say(f"switchover worker benchmark, server {base} ({os.cpu_count()} CPUs)")
            for label, ttl in (("uncached", 0.0), ("cached", 300.0)):
                lat = asyncio.run(_fetch_latencies(base, token, n, ttl))
                fig[f"config_fetch_{label}"] = {
                    "calls": n,
                    "p50_ms": round(_pct(lat, 50), 4),
                    "p99_ms": round(_pct(lat, 99), 4),
                }
                f = fig[f"config_fetch_{label}"]
                say(
                    f"  config fetch {label:<9} p50 {f['p50_ms']:8.3f} ms"
                    f"   p99 {f['p99_ms']:8.3f} ms"
                )
            sf = asyncio.run(_single_flight(base, token, 100))
            fig["single_flight"] = sf
            say(f"  single-flight: 100 starts -> {sf['fetches']} fetch(es), {sf['saved']} saved")
            reqs = _requests(server.port, token)
            closed = httpload.run_load(server.port, reqs, 1, 16, 0.5, secs)
            fig["endpoint_closed_loop"] = closed.to_dict()
            say(
                f"  endpoint closed loop c=16: {closed.requests_per_s:,.0f} req/s, "
                f"p50 {closed.p50_ms:.2f} ms, p99 {closed.p99_ms:.2f} ms, {closed.errors} errors"
            )
            opened = asyncio.run(_open_loop(server.port, reqs[0], 500.0, secs))
            fig["endpoint_500rps"] = opened
            say(
                f"  endpoint open loop 500 req/s: achieved {opened['achieved_rps']:,.0f}, "
                f"p50 {opened['p50_ms']:.2f} ms, p99 {opened['p99_ms']:.2f} ms "
                f"(goal < {GOAL_P99_MS:g} ms), {opened['errors']} errors"
            )
            jobs = _jobs_per_second(base, token, secs)
            fig["worker_jobs"] = jobs
            say(
                f"  worker: {jobs['jobs_per_s']:,.0f} jobs/s ({jobs['jobs']} simulated calls, "
                f"MAX_CONCURRENCY 25, 50 callers, hit rate {jobs['cache_hit_rate']:.1%})"
            )
        finally:
            server.stop()
    fig["goals"] = [
        {
            "goal": f"runtime-config p99 < {GOAL_P99_MS:g} ms at 500 req/s",
            "value": f"{fig['endpoint_500rps']['p99_ms']:.2f} ms",
            "pass": fig["endpoint_500rps"]["p99_ms"] < GOAL_P99_MS,
        },
        {
            "goal": "single-flight: one fetch for 100 starts",
            "value": str(fig["single_flight"]["fetches"]),
            "pass": fig["single_flight"]["fetches"] == 1,
        },
    ]
    for g in fig["goals"]:
        say(f"    {g['goal']:<45} {g['value']:>10}   {'PASS' if g['pass'] else 'MISS'}")
    return fig


def main(argv: list[str] | None = None) -> int:
    return harness.bench_main("worker benchmark", parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())

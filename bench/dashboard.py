"""switchover dashboard benchmark: a migration's page and its charts over 7 days of rollups.

Run from the repository root::

    .venv/bin/python bench/dashboard.py              # a few minutes (seeding 80,640 rows twice)
    .venv/bin/python bench/dashboard.py --quick      # 1 day of rollups, 15 requests per figure
    .venv/bin/python bench/dashboard.py --json out.json
    .venv/bin/python bench/dashboard.py --no-postgres --no-http

``bench/run.py`` runs this too, last (``--no-dashboard`` skips it).

The goal (issue 7): server time for a migration's page and its chart data, with 7 days
of per-minute rollups for 4 operations, under 100 ms, measured with the real server on
loopback; issue 20's goal: the first 7-day chart under 300 ms on both engines.

For each store (a temporary SQLite file, and a database of its own on PostgreSQL when
one answers at ``$SWITCHOVER_BENCH_POSTGRES_URL``, default ``postgresql+psycopg://
postgres@127.0.0.1:5432/test``, dropped afterwards):

1. Seed migration ``voice_v2`` with 7 days of per-minute rollups for ``stt``, ``llm``,
   ``tts`` and ``call`` on both sides, ending at the current minute (the server reads
   the real clock): 7 x 1440 x 4 x 2 = 80,640 rows, appended a day per transaction
   through ``tx.insert_rollups``. Each row is one of 16 templates per (operation, side):
   a 10 % rollout (legacy 120-300 calls a minute, candidate 10-40), log-normal
   latencies, about 1 % errors, candidate fallbacks, outcomes per operation, 40 tenants.
2. In process, ``ChartCache.charts`` for windows 1h and 7d, each on a fresh cache:
   the cold call (it loads what the window needs from the store), then warm calls with
   nothing new (the answer is memoised), then warm calls each after one new minute of
   rows was appended (8 rows: the cache reads them, re-merges that bucket, rebuilds the
   answer from its memoised points). GC stays on, as in a server. Then, untimed, the
   memory a fresh cache holds after that window's chart (tracemalloc).
   Then (issue 20) the hours are settled as the pruning job does (``rollup_hours.settle_all``:
   every complete hour up to ten minutes ago, one row per hour, operation and side, and
   one per five minutes for the last two days), and the first 7d and 24h charts of fresh
   caches are timed again: stored rows before the watermark, minutes after it. The
   minutes-only cold figures above are the same run's "before".
3. Over HTTP, with the hours settled: ``switchover token create bench --role viewer``,
   then ``switchover serve --no-demo --no-controller`` on 127.0.0.1 with
   ``SWITCHOVER_DATABASE_URL``, and one keep-alive httpx client sends ``GET
   /migrations/voice_v2`` (the page) and ``GET /ui/migrations/voice_v2/charts?window=1h``
   and ``?window=7d`` with the bearer token: the first request of each (the server's
   cache is cold), then warm requests, then chart requests each after a new minute of
   rows. Figures are the client's wall time on
   loopback; the server's own ``Server-Timing`` figure is reported next to it when sent.
   Without the dashboard's routes (404) the section says "dashboard routes not present".

Exit status: 0 when the run completed (a missed goal is informational), 2 on an error.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

import harness
import httpload
from switchover.core.clock import SystemClock
from switchover.core.rollup import Rollup, RollupKey, minute_of
from switchover.metrics.charts import ChartCache
from switchover.rollout.service import RolloutService
from switchover.store import rollup_hours, tables
from switchover.store.engine import create_store_engine
from switchover.store.repository import Store
from switchover.store.schema import upgrade

GOAL_MS = 100.0
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MIGRATION = "voice_v2"
OPERATIONS: dict[str, tuple[float, float, dict[str, float]]] = {
    # operation: (median latency ms, log-normal sigma, outcome -> probability per call)
    "stt": (180.0, 0.45, {"empty_transcript": 0.03}),
    "llm": (650.0, 0.55, {"tool_call": 0.35, "booking_made": 0.12}),
    "tts": (220.0, 0.40, {"cache_hit": 0.85}),
    "call": (2400.0, 0.60, {"booked": 0.18, "transferred": 0.06}),
}
SIDES = ("legacy", "candidate")
VARIANTS = 16
TENANTS = 40
WINDOWS = ("1h", "7d")
PAGE = f"/migrations/{MIGRATION}"
CHARTS = f"/ui/migrations/{MIGRATION}/charts?window="

say = harness.say
version_of = harness.version_of
Templates = dict[tuple[str, str], list[Rollup]]


class Skip(Exception):
    pass


# the rollups --------------------------------------------------------------------------


def make_templates(seed: int) -> Templates:
    """VARIANTS rollups per (operation, side), each recorded call by call (Rollup.add)."""
    rng = random.Random(seed)
    out: Templates = {}
    for op, (median_ms, sigma, outcomes) in OPERATIONS.items():
        for side in SIDES:
            mu = math.log(median_ms * (1.05 if side == "candidate" else 1.0))
            error_rate = 0.012 if side == "candidate" else 0.008
            variants = []
            for _ in range(VARIANTS):
                r = Rollup()
                calls = rng.randint(120, 300) if side == "legacy" else rng.randint(10, 40)
                for _ in range(calls):
                    ok = rng.random() >= error_rate
                    fallback = side == "candidate" and rng.random() < 0.01
                    got = {k: 1.0 for k, p in outcomes.items() if rng.random() < p}
                    r.add(
                        rng.lognormvariate(mu, sigma),
                        ok,
                        None if ok else rng.choice(("Timeout", "RateLimited", "BadGateway")),
                        fallback,
                        got or None,
                        tenant=f"tenant-{rng.randrange(TENANTS)}",
                    )
                variants.append(r)
            out[(op, side)] = variants
    return out


def minute_items(templates: Templates, minute: int) -> list[tuple[RollupKey, Rollup]]:
    return [
        (
            RollupKey(minute, MIGRATION, op, side),
            templates[(op, side)][(7 * minute + 3 * o + 5 * s) % VARIANTS],
        )
        for o, op in enumerate(OPERATIONS)
        for s, side in enumerate(SIDES)
    ]


def seed(store: Store, templates: Templates, days: int) -> dict[str, Any]:
    """The migration and ``days`` of rollups ending at the current minute."""
    RolloutService(store, SystemClock()).create(
        MIGRATION, features=["stt", "tts"], actor="bench", reason="dashboard benchmark"
    )
    t0 = time.perf_counter()
    newest = minute_of(time.time())
    first = newest - days * 1440 + 1
    rows = 0
    for day_start in range(first, newest + 1, 1440):
        items = [
            item
            for minute in range(day_start, min(day_start + 1440, newest + 1))
            for item in minute_items(templates, minute)
        ]
        with store.transaction() as tx:
            tx.insert_rollups(items)
        rows += len(items)
    return {"rows": rows, "minutes": newest - first + 1, "seconds": time.perf_counter() - t0}


def append_minute(store: Store, templates: Templates) -> None:
    """One more minute of rows (8) for the current minute, as the recorders would write."""
    with store.transaction() as tx:
        tx.insert_rollups(minute_items(templates, minute_of(time.time())))


def memory_held_mb(store: Store, window: str) -> float:
    """What a fresh cache holds after one ``window`` chart, by tracemalloc (an untimed
    pass of its own: tracing slows the load down)."""
    gc.collect()
    tracemalloc.start()
    try:
        cache = ChartCache(store, SystemClock())
        cache.charts(MIGRATION, window)
        gc.collect()
        return round(tracemalloc.get_traced_memory()[0] / 2**20, 1)
    finally:
        tracemalloc.stop()


def summary(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    return {
        "n": len(s),
        "p50_ms": round(statistics.median(s), 2),
        "p95_ms": round(harness.percentile(s, 95), 2),
        "max_ms": round(s[-1], 2),
    }


# part 2: in process -------------------------------------------------------------------


def in_process(store: Store, templates: Templates, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for window in WINDOWS:
        gc.collect()
        cache = ChartCache(store, SystemClock())
        t0 = time.perf_counter()
        answer = cache.charts(MIGRATION, window)
        cold = (time.perf_counter() - t0) * 1e3
        since, until = answer["since"] // 60, answer["until"] // 60
        with store.read() as tx:
            loaded = int(
                tx.conn.execute(
                    sa.select(sa.func.count())
                    .select_from(tables.rollups)
                    .where(tables.rollups.c.migration == MIGRATION)
                    .where(tables.rollups.c.minute >= since)
                    .where(tables.rollups.c.minute < until)
                ).scalar()
                or 0
            )
        warm = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            cache.charts(MIGRATION, window)
            warm.append((time.perf_counter() - t0) * 1e3)
        fresh = []
        for _ in range(args.requests):
            append_minute(store, templates)
            t0 = time.perf_counter()
            got = cache.charts(MIGRATION, window)
            fresh.append((time.perf_counter() - t0) * 1e3)
        assert sum(got["series"]["calls"]["legacy"]) > 0
        out[window] = {
            "points": len(answer["t"]),
            "rows_in_window": loaded,
            "cold_ms": round(cold, 1),
            "cold_rows_per_s": round(loaded / (cold / 1e3)) if cold else None,
            "warm": summary(warm),
            "after_new_rows": summary(fresh),
            "buckets": cache.info()["migrations"][MIGRATION]["buckets"],
        }
        r = out[window]
        say(
            f"    {window:>3}: cold {r['cold_ms']:,.0f} ms ({loaded:,} rows)   warm p50"
            f" {r['warm']['p50_ms']:.2f} / p95 {r['warm']['p95_ms']:.2f} ms   after new rows"
            f" p50 {r['after_new_rows']['p50_ms']:.2f} / p95 {r['after_new_rows']['p95_ms']:.2f}"
            " ms"
        )
        del cache
        out[window]["memory_held_mb"] = memory_held_mb(store, window)
    return out


def settle_hours(store: Store) -> dict[str, Any]:
    """What ``StoreSink`` runs with its hourly prune (``rollup_hours.settle_all``), timed."""
    t0 = time.perf_counter()
    rows = rollup_hours.settle_all(store, minute_of(time.time()))["hours"]
    seconds = time.perf_counter() - t0
    with store.read() as tx:
        hours = int(
            tx.conn.execute(sa.select(sa.func.count()).select_from(tables.rollup_hours)).scalar()
            or 0
        )
    return {"rows": rows, "hours": hours, "seconds": round(seconds, 2)}


def first_week_chart(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """The first 7d and 24h charts of fresh caches (each one a server's first request),
    once the hours and five minutes are settled: those rows before the watermark, the
    minutes after it."""
    out: dict[str, Any] = {}
    for window, key, level in (("7d", "cold", "hours"), ("24h", "cold_24h", "fives")):
        cold = []
        for _ in range(max(3, min(args.requests, 10))):
            gc.collect()
            cache = ChartCache(store, SystemClock())
            t0 = time.perf_counter()
            answer = cache.charts(MIGRATION, window)
            cold.append((time.perf_counter() - t0) * 1e3)
            assert cache.info()["migrations"][MIGRATION][f"{level}_from_minute"] is not None
            assert sum(answer["series"]["calls"]["legacy"]) > 0
        out[key] = summary(cold)
        say(
            f"    {window}: first chart p50 {out[key]['p50_ms']:.1f}"
            f" / max {out[key]['max_ms']:.1f} ms"
        )
    return out


# part 3: over HTTP --------------------------------------------------------------------


_SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")


class Timed:
    """GET one path with a keep-alive client; client wall time and Server-Timing, in ms."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def get(self, path: str) -> tuple[httpx.Response, float, float | None]:
        t0 = time.perf_counter()
        res = self.http.get(path)
        wall = (time.perf_counter() - t0) * 1e3
        match = _SERVER_TIMING.search(res.headers.get("server-timing", ""))
        return res, wall, float(match.group(1)) if match else None


def _route_missing(res: httpx.Response) -> bool:
    if res.status_code != 404:
        return False
    with contextlib.suppress(ValueError):
        return res.json() == {"detail": "Not Found"}
    return True


def over_http(
    url: str, store: Store, templates: Templates, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    cli = Path(args.cli) if args.cli else httpload.default_cli()
    try:
        token = httpload.create_token(cli, url)
        server = httpload.start_server(cli, url, workdir, 60.0, extra=["--no-controller"])
    except (httpload.Skip, Skip) as exc:
        return {"skipped": str(exc)}
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=600.0) as http:
            client = Timed(http)
            targets = [("page", PAGE), *((f"charts_{w}", CHARTS + w) for w in WINDOWS)]
            out: dict[str, Any] = {}
            for label, path in targets:
                res, wall, app_ms = client.get(path)
                if _route_missing(res):
                    say(f"    GET {path}: 404, dashboard routes not present")
                    return {"skipped": "dashboard routes not present", "missing": path}
                if res.status_code != 200:
                    raise RuntimeError(f"GET {path} answered {res.status_code}: {res.text[:300]!r}")
                out[label] = {"path": path, "first_ms": round(wall, 1), "first_app_ms": app_ms}
            for label, path in targets:
                out[label].update(_series(client, path, args.requests, None))
            for label, path in targets[1:]:
                out[label]["after_new_rows"] = _series(
                    client, path, args.requests, lambda: append_minute(store, templates)
                )["warm"]
            for label, path in targets:
                r = out[label]
                extra = ""
                if "after_new_rows" in r:
                    a = r["after_new_rows"]
                    extra = f"   after new rows p50 {a['p50_ms']:.1f} / p95 {a['p95_ms']:.1f} ms"
                say(
                    f"    GET {path:<44} first {r['first_ms']:>8,.1f} ms   warm p50"
                    f" {r['warm']['p50_ms']:.1f} / p95 {r['warm']['p95_ms']:.1f} ms{extra}"
                )
            return out
    finally:
        server.stop()


def _series(client: Timed, path: str, n: int, before: Callable[[], None] | None) -> dict[str, Any]:
    wall, app = [], []
    for _ in range(n):
        if before is not None:
            before()
        res, ms, app_ms = client.get(path)
        if res.status_code != 200:
            raise RuntimeError(f"GET {path} answered {res.status_code}: {res.text[:300]!r}")
        wall.append(ms)
        if app_ms is not None:
            app.append(app_ms)
    out: dict[str, Any] = {"warm": summary(wall)}
    if app:
        out["warm"]["server_timing"] = summary(app)
    return out


# one store ----------------------------------------------------------------------------


def bench_store(
    label: str, url: str, templates: Templates, args: argparse.Namespace
) -> dict[str, Any]:
    t_start = time.perf_counter()
    engine = create_store_engine(url)
    upgrade(engine)
    store = Store(engine)
    try:
        say(f"  {label}: seeding {args.days} day(s) of rollups ...")
        seeded = seed(store, templates, args.days)
        say(
            f"    {seeded['rows']:,} rows ({seeded['minutes']:,} minutes x"
            f" {len(OPERATIONS)} operations x {len(SIDES)} sides) in {seeded['seconds']:.1f} s"
        )
        say(f"  {label}: in process, ChartCache.charts (fresh cache per window)")
        fig: dict[str, Any] = {"store": label, "seed": seeded}
        fig["in_process"] = in_process(store, templates, args)
        say(f"  {label}: settling the hours, as the pruning job does (rollup_hours)")
        fig["settle"] = settle_hours(store)
        say(
            f"    {fig['settle']['rows']:,} minute rows into {fig['settle']['hours']:,} hourly"
            f" rows in {fig['settle']['seconds']:.1f} s"
        )
        say(f"  {label}: in process, first 7d chart with the hours settled (fresh caches)")
        fig["in_process_hours"] = first_week_chart(store, args)
        if args.no_http:
            fig["http"] = {"skipped": "--no-http"}
        else:
            say(f"  {label}: over HTTP, switchover serve on {httpload.HOST}")
            with tempfile.TemporaryDirectory(prefix="switchover-dashboard-http-") as tmp:
                fig["http"] = over_http(url, store, templates, args, Path(tmp))
            if "skipped" in fig["http"]:
                say(f"    skipped: {fig['http']['skipped']}")
    finally:
        store.dispose()
    fig["seconds"] = round(time.perf_counter() - t_start, 1)
    return fig


def postgres_database(admin_url: str) -> tuple[str, sa.Engine, str]:
    """A database of our own: (url, admin engine, name); Skip when no server answers."""
    admin = create_store_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"swo_bench_dash_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        raise Skip(f"PostgreSQL not reachable at {admin_url} ({type(exc).__name__})") from exc
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return url, admin, name


def bench_stores(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, str]]:
    templates = make_templates(args.seed)
    figures: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="switchover-dashboard-bench-") as tmp:
        figures.append(
            bench_store("SQLite", f"sqlite:///{Path(tmp) / 'store.db'}", templates, args)
        )
    if args.no_postgres:
        skipped["PostgreSQL"] = "--no-postgres"
        return figures, skipped
    admin_url = os.environ.get("SWITCHOVER_BENCH_POSTGRES_URL", DEFAULT_PG)
    try:
        url, admin, name = postgres_database(admin_url)
    except Skip as exc:
        skipped["PostgreSQL"] = str(exc)
        return figures, skipped
    try:
        figures.append(bench_store("PostgreSQL", url, templates, args))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return figures, skipped


# report -------------------------------------------------------------------------------


def report(fig: dict[str, Any]) -> list[str]:
    stores = fig["stores"]
    lines: list[str] = []
    if not stores:
        return ["  no store was measured"]
    rows = stores[0]["seed"]
    lines += [
        f"  {MIGRATION}: {rows['rows']:,} rollup rows = {rows['minutes']:,} minutes x"
        f" {len(OPERATIONS)} operations x {len(SIDES)} sides, {VARIANTS} templates per"
        " (operation, side), 10 % rollout",
        "",
        f"  {'':<50}" + "".join(f"{s['store']:>16}" for s in stores),
    ]

    def row(label: str, values: list[str]) -> None:
        lines.append(f"  {label:<50}" + "".join(f"{v:>16}" for v in values))

    def pair(s: dict[str, Any] | None) -> str:
        return "-" if s is None else f"{s['p50_ms']:.1f} / {s['p95_ms']:.1f}"

    row("seed through tx.insert_rollups (s)", [f"{s['seed']['seconds']:.1f}" for s in stores])
    lines.append("  in process, ChartCache.charts (ms)")
    for w in WINDOWS:
        ip = [s["in_process"][w] for s in stores]
        row(f"  {w:>3} cold, fresh cache", [f"{r['cold_ms']:,.0f}" for r in ip])
        row("      rows it loaded", [f"{r['rows_in_window']:,}" for r in ip])
        row(
            "      memory the cache holds (tracemalloc, MB)", [f"{r['memory_held_mb']}" for r in ip]
        )
        row("      warm p50 / p95", [pair(r["warm"]) for r in ip])
        row("      after a new minute of rows p50 / p95", [pair(r["after_new_rows"]) for r in ip])
    row(
        "settle hours and fives (rollup_hours.settle_all, s)",
        [f"{s['settle']['seconds']:.1f}" for s in stores],
    )
    for window, key in (("7d", "cold"), ("24h", "cold_24h")):
        row(
            f"  {window} first chart, settled, p50 / max (ms)",
            [
                f"{s['in_process_hours'][key]['p50_ms']:.1f} / "
                f"{s['in_process_hours'][key]['max_ms']:.1f}"
                for s in stores
            ],
        )
    http = [s["http"] for s in stores]
    lines.append(
        "  over HTTP, real server on loopback, keep-alive, hours settled (ms, client wall time)"
    )
    if all("skipped" in h for h in http):
        for s in stores:
            lines.append(f"    {s['store']}: skipped: {s['http']['skipped']}")
    else:
        for key, label in (("page", PAGE), *((f"charts_{w}", CHARTS + w) for w in WINDOWS)):
            got = [h.get(key) for h in http]
            row(f"  GET {label}", ["" for _ in got])
            row("      first request", [f"{g['first_ms']:,.1f}" if g else "-" for g in got])
            row("      warm p50 / p95", [pair(g["warm"]) if g else "-" for g in got])
            if any(g and "server_timing" in g["warm"] for g in got):
                row(
                    "      warm p50 / p95, Server-Timing",
                    [pair(g["warm"].get("server_timing")) if g else "-" for g in got],
                )
            if key != "page":
                row(
                    "      after a new minute of rows p50 / p95",
                    [pair(g["after_new_rows"]) if g else "-" for g in got],
                )
        for s in stores:
            if "skipped" in s["http"]:
                lines.append(f"    {s['store']}: skipped: {s['http']['skipped']}")
    for name, why in fig["skipped"].items():
        lines.append(f"  {name}: skipped: {why}")
    lines += ["", "  goals (informational)"]
    for g in fig["goals"]:
        lines.append(f"    {g['goal']:<58} {g['value']:>14}   {'PASS' if g['pass'] else 'MISS'}")
    return lines


FIRST_WEEK_GOAL_MS = 300.0
"""Issue 20: the first 7-day chart of a migration, on both engines."""


def build_goals(fig: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for s in fig["stores"]:
        http = s["http"]
        first = s["in_process_hours"]["cold"]["max_ms"]
        if "skipped" not in http:
            first = max(first, http["charts_7d"]["first_ms"])
        out.append(
            {
                "goal": f"first 7d chart < {FIRST_WEEK_GOAL_MS:g} ms ({s['store']})",
                "value": f"{first:,.1f} ms",
                "pass": first < FIRST_WEEK_GOAL_MS,
            }
        )
        if "skipped" in http:
            worst = max(s["in_process"][w]["after_new_rows"]["p95_ms"] for w in WINDOWS)
            out.append(
                {
                    "goal": f"chart data < {GOAL_MS:g} ms, in process only, p95 ({s['store']})",
                    "value": f"{worst:,.1f} ms",
                    "pass": worst < GOAL_MS,
                }
            )
            continue
        for key in ("page", *(f"charts_{w}" for w in WINDOWS)):
            r = http[key]
            worst = max(r["warm"]["p95_ms"], r.get("after_new_rows", {}).get("p95_ms", 0.0))
            out.append(
                {
                    "goal": f"{key.replace('_', ' ')} < {GOAL_MS:g} ms warm, p95 ({s['store']})",
                    "value": f"{worst:,.1f} ms",
                    "pass": worst < GOAL_MS,
                }
            )
    return out


# main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/dashboard.py",
        description="Benchmark the dashboard's chart data: 7 days of rollups, in process and HTTP.",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 1 day, 15 requests")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    p.add_argument("--days", type=int, help="days of per-minute rollups (7; quick 1)")
    p.add_argument("--requests", type=int, help="warm requests per figure (50; quick 15)")
    p.add_argument("--no-postgres", action="store_true", help="SQLite only")
    p.add_argument("--no-http", action="store_true", help="in process only")
    p.add_argument("--cli", help="switchover executable for the HTTP part (default: venv's)")
    p.add_argument("--seed", type=int, default=20240601, help="rollup template seed")
    args = p.parse_args(argv)
    if args.days is None:
        args.days = 1 if args.quick else 7
    if args.requests is None:
        args.requests = 15 if args.quick else 50
    if args.days < 1 or args.requests < 1:
        p.error("--days and --requests must be positive")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    t_start = time.perf_counter()
    meta: dict[str, Any] = {
        "days": args.days,
        "requests": args.requests,
        "quick": args.quick,
        "seed": args.seed,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "versions": {d: version_of(d) for d in ("switchover", "SQLAlchemy", "psycopg", "httpx")},
        "load_average_1min_before": os.getloadavg()[0],
    }
    say(
        f"switchover dashboard benchmark: {MIGRATION}, {args.days} day(s) of per-minute rollups"
        f" for {len(OPERATIONS)} operations, {args.requests} requests per figure,"
        f" Python {meta['python']}, {meta['cpus']} CPUs"
    )
    stores, skipped = bench_stores(args)
    meta["load_average_1min_after"] = os.getloadavg()[0]
    meta["seconds"] = round(time.perf_counter() - t_start, 1)
    fig: dict[str, Any] = {"meta": meta, "stores": stores, "skipped": skipped}
    fig["goals"] = build_goals(fig)
    say()
    say(f"dashboard summary ({meta['seconds']} s)")
    for line in report(fig):
        say(line)
    load = max(meta["load_average_1min_before"], meta["load_average_1min_after"])
    if load > 0.5 * (meta["cpus"] or 1) + 1:
        say(f"  load average (1 min) reached {load:.2f}: the machine was busy, figures are noisy")
    return fig


def main(argv: list[str] | None = None) -> int:
    return harness.bench_main("bench/dashboard.py", parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())

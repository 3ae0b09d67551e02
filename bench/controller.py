"""switchover controller benchmark: judging one interval for 100 migrations, and the simulator.

Run from the repository root::

    .venv/bin/python bench/controller.py              # about 90 s on a busy 2-CPU machine
    .venv/bin/python bench/controller.py --quick      # about a minute (the cold loads stay)
    .venv/bin/python bench/controller.py --json out.json
    .venv/bin/python bench/controller.py --profile    # plus cProfile of warm ticks (SQLite)

``bench/run.py`` runs this too, after the router benchmark (``--no-controller`` skips it).

1. Judge one interval, 100 migrations x 4 operations x 2 sides. A store (a temporary
   SQLite file, and a database of its own on PostgreSQL when one answers at
   ``$SWITCHOVER_BENCH_POSTGRES_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:
   5432/test``) holds 100 migrations, each running the same plan (every 1m on a 1h
   window, 2m recent; guardrails ``error_rate < 5%``, ``p95_ratio <= 1.2``,
   ``error_ratio <= 1.5``; phase gates ``p95 < 800ms`` and ``outcome.cache_hit > 80%``;
   10 % for 30 days), started 70 minutes before the first measured tick. The rollups
   table holds those 70 minutes at full resolution for all 800 series, and 7 days of
   retention history before them at a coarser stride (every 30th minute). Every row is
   a realistic rollup (30-200 calls of a seeded log-normal latency, about 0.5 % errors,
   about 90 % ``cache_hit``), one of 16 templates per (operation, side), both sides
   drawn alike. On a ``ManualClock``: the first ``tick()`` of a fresh ``Controller``
   (cold: it loads each migration's window, the cache's default 24 h, from the store),
   then rounds of one new minute of rollups (800 rows, ``tx.insert_rollups``), the
   clock one minute on, one timed ``tick()`` (warm: read the new rows, judge 100 plans,
   write 100 verdicts, each in its own transaction), and last ``verdict_for()`` on all
   100 plans (judging only, no reads, no writes). GC stays on, as in a server.
2. Simulated days per wall-clock second: ``simulate()`` (the real controller on a
   virtual clock against a temporary SQLite store) of ``examples/plans/seed-004-voice-
   v2.yaml`` (5m interval, 29 days) and of a 1m-interval plan of 14 days, at 50 calls/s
   with identical healthy sides, each stopped at a cap of simulated hours so the run
   stays short (or at a rollback, as ``switchover plan simulate`` does); the whole
   plan's wall time is extrapolated from the rate.

No other engine does this, so the figures are absolute, against the goal (a warm tick
under 50 ms). Exit status: 0 when the run completed (a missed goal is informational),
2 on an error.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import platform
import pstats
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import harness
from switchover.control.controller import Controller, Outcome
from switchover.control.plans import PlanService
from switchover.control.simulate import SideModel, SimulationResult, Traffic, simulate
from switchover.core.clock import ManualClock
from switchover.core.plan import load_plan
from switchover.core.rollup import Rollup, RollupKey, minute_of
from switchover.rollout.service import RolloutService
from switchover.store import control as plan_repo
from switchover.store import tables
from switchover.store.engine import create_store_engine
from switchover.store.repository import Store
from switchover.store.schema import upgrade

GOAL_TICK_MS = 50.0
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

MIGRATIONS = 100
OPERATIONS = {"stt": 120.0, "tts": 90.0, "llm": 260.0, "lookup": 25.0}
"""Operation -> median latency (ms); sigma 0.5 puts every p95 under the 800 ms gate."""
SIGMA = 0.5
SIDES = ("legacy", "candidate")
VARIANTS = 16
"""Template rollups per (operation, side), reused across minutes and migrations."""
ERROR_RATE = 0.005
CACHE_HIT = 0.9
WINDOW_MINUTES = 70
"""Full-resolution minutes before the first measured tick (the 1 h window + 10 min)."""
HISTORY_DAYS = 7

PLAN_SOURCE = """\
plan: bench-judge
interval: 1m
window: 1h
recent: 2m
guardrails:
  - error_rate < 5%
  - p95_ratio <= 1.2
  - error_ratio <= 1.5
phases:
  - name: pilot
    percentage: 10
    duration: 30d
    gates:
      - p95 < 800ms
      - outcome.cache_hit > 80%
  - name: all
    percentage: 100
    duration: 1d
"""

SEED_004 = Path(__file__).resolve().parent.parent / "examples/plans/seed-004-voice-v2.yaml"
SEED_004_INLINE = """\
plan: voice-v2-rollout
interval: 5m
window: 1h
recent: 5m
guardrails:
  - p95_ratio <= 1.2
  - error_ratio <= 1.5
phases:
  - {name: canary, percentage: 1, duration: 3d, gates: ["error_rate < 2%", "p95 < 2000ms"]}
  - {name: pilot, percentage: 10, duration: 5d, gates: ["error_rate < 1%", "p95 < 1500ms"]}
  - name: beta
    percentage: 30
    duration: 7d
    gates: ["error_rate < 0.5%", "p95 < 1000ms", "outcome.cache_hit > 80%"]
  - {name: production, percentage: 100, duration: 14d, gates: ["error_rate < 0.1%", "p95 < 800ms"]}
"""
MINUTE_PLAN = """\
plan: minute-14d
interval: 1m
window: 1h
recent: 2m
guardrails:
  - error_rate < 5%
  - p95_ratio <= 1.2
  - error_ratio <= 1.5
phases:
  - {name: canary, percentage: 5, duration: 2d, gates: ["p95 < 800ms"]}
  - {name: quarter, percentage: 25, duration: 3d, gates: ["p95 < 800ms"]}
  - name: half
    percentage: 50
    duration: 4d
    gates: ["p95 < 800ms", "outcome.cache_hit > 80%"]
  - name: all
    percentage: 100
    duration: 5d
    gates: ["p95 < 800ms", "outcome.cache_hit > 80%"]
"""
HEALTHY = SideModel(p95_ms=600.0, p50_ms=250.0, error_rate=0.0005, outcomes=(("cache_hit", 0.9),))
"""Both sides of the simulations: within every gate of both plans."""
SIM_RATE = 50.0

say = harness.say
version_of = harness.version_of


# the rollups --------------------------------------------------------------------------


Templates = dict[tuple[str, str], list[Rollup]]


def make_templates(seed: int) -> Templates:
    """VARIANTS rollups per (operation, side), each 30-200 calls through ``Rollup.add``."""
    rng = random.Random(seed)
    out: Templates = {}
    for op, median_ms in OPERATIONS.items():
        mu = math.log(median_ms)
        for side in SIDES:
            variants = []
            for _ in range(VARIANTS):
                r = Rollup()
                for _ in range(rng.randint(30, 200)):
                    ok = rng.random() >= ERROR_RATE
                    hit = {"cache_hit": 1.0} if rng.random() < CACHE_HIT else None
                    r.add(rng.lognormvariate(mu, SIGMA), ok, None if ok else "Timeout", False, hit)
                variants.append(r)
            out[(op, side)] = variants
    return out


def migration_names() -> list[str]:
    return [f"bench-{i:03d}" for i in range(MIGRATIONS)]


def variant(minute: int, m: int, o: int, s: int) -> int:
    """Which template a series uses in a minute: sides and migrations drawn differently."""
    return (minute + 7 * m + 3 * o + 5 * s) % VARIANTS


def minute_items(templates: Templates, minute: int) -> list[tuple[RollupKey, Rollup]]:
    """One minute of all 800 series, as the recorders would append it."""
    return [
        (RollupKey(minute, name, op, side), templates[(op, side)][variant(minute, m, o, s)])
        for m, name in enumerate(migration_names())
        for o, op in enumerate(OPERATIONS)
        for s, side in enumerate(SIDES)
    ]


COLUMNS = ("minute", "migration", "operation", "side", "count", "errors", "fallbacks", "data")


def bulk_rows(templates: Templates, minutes: list[int]) -> Iterator[tuple[Any, ...]]:
    """Rows as ``tx.insert_rollups`` would write them (``data`` pre-encoded once)."""
    encoded = {
        key: [(r.count, r.errors, r.fallbacks, json.dumps(r.to_dict())) for r in rs]
        for key, rs in templates.items()
    }
    names = migration_names()
    for minute in minutes:
        for m, name in enumerate(names):
            for o, op in enumerate(OPERATIONS):
                for s, side in enumerate(SIDES):
                    yield (minute, name, op, side, *encoded[(op, side)][variant(minute, m, o, s)])


def bulk_load(store: Store, rows: Iterator[tuple[Any, ...]]) -> int:
    """Append rows fast: COPY on PostgreSQL, one executemany on SQLite."""
    n = 0
    with store.engine.begin() as conn:
        if store.is_postgres:
            # weeks of history: longer than the store's 15 s statement limit on a busy machine
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
            raw = conn.connection.driver_connection
            sql = f"COPY rollups ({', '.join(COLUMNS)}) FROM STDIN"
            with raw.cursor() as cur, cur.copy(sql) as copy:  # type: ignore[union-attr]
                for row in rows:
                    copy.write_row(row)
                    n += 1
        else:
            batch = list(rows)
            marks = ", ".join("?" for _ in COLUMNS)
            conn.exec_driver_sql(
                f"INSERT INTO rollups ({', '.join(COLUMNS)}) VALUES ({marks})", batch
            )
            n = len(batch)
    return n


# part 1: one interval ----------------------------------------------------------------


class Split:
    """Time spent inside some methods of one object graph, reset before each tick."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()

    def wrap(self, obj: object, method: str, key: str) -> None:
        inner: Callable[..., Any] = getattr(obj, method)

        def timed(*args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return inner(*args, **kw)
            finally:
                self.seconds[key] += time.perf_counter() - t0

        setattr(obj, method, timed)

    def parts_ms(self, total: float) -> dict[str, float]:
        s = self.seconds
        return {
            "read_plans": (total - s["track"] - s["refresh"] - s["judge_and_apply"]) * 1e3,
            "load_windows": s["track"] * 1e3,
            "fetch_new_rows": s["refresh"] * 1e3,
            "judge": s["verdict_for"] * 1e3,
            "write_verdicts": (s["judge_and_apply"] - s["verdict_for"]) * 1e3,
        }


@dataclass
class StoreFigures:
    label: str
    rows: dict[str, int] = field(default_factory=dict)
    load_seconds: float = 0.0
    cold_ms: float = 0.0
    cold_parts: dict[str, float] = field(default_factory=dict)
    warm_ms: list[float] = field(default_factory=list)
    warm_parts: list[dict[str, float]] = field(default_factory=list)
    judge_only_ms: list[float] = field(default_factory=list)
    verdicts_per_round: list[int] = field(default_factory=list)
    verdict_rows_total: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        warm = sorted(self.warm_ms)
        parts = {
            k: round(statistics.median(p[k] for p in self.warm_parts), 2)
            for k in self.warm_parts[0]
        }
        return {
            "store": self.label,
            "rows": self.rows,
            "load_seconds": round(self.load_seconds, 1),
            "cold_tick_ms": round(self.cold_ms, 1),
            "cold_parts_ms": {k: round(v, 1) for k, v in self.cold_parts.items()},
            "warm_rounds": len(warm),
            "warm_tick_median_ms": round(statistics.median(warm), 2),
            "warm_tick_p95_ms": round(harness.percentile(warm, 95), 2),
            "warm_tick_min_ms": round(warm[0], 2),
            "warm_parts_median_ms": parts,
            "judge_only_median_ms": round(statistics.median(self.judge_only_ms), 2),
            "judge_only_repeats": len(self.judge_only_ms),
            "verdicts_per_round": sorted(set(self.verdicts_per_round)),
            "verdict_rows_total": self.verdict_rows_total,
            "actions": dict(self.actions),
            "seconds": round(self.seconds, 1),
        }


def timed_tick(controller: Controller, split: Split) -> tuple[float, list[Outcome]]:
    split.seconds.clear()
    t0 = time.perf_counter()
    outcomes = controller.tick()
    return time.perf_counter() - t0, outcomes


def bench_store(
    label: str, url: str, templates: Templates, args: argparse.Namespace
) -> StoreFigures:
    t_start = time.perf_counter()
    fig = StoreFigures(label)
    engine = create_store_engine(url)
    upgrade(engine)
    store = Store(engine)
    try:
        now0 = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
        newest = minute_of(now0.timestamp()) - 1  # the last full minute at the first tick
        first = newest - WINDOW_MINUTES + 1
        clock = ManualClock(now0 - timedelta(minutes=WINDOW_MINUTES))

        # 100 migrations, each with the plan, started (phase "pilot", 10 %) at `first`
        rollout, plans = RolloutService(store, clock), PlanService(store, clock)
        for name in migration_names():
            rollout.create(name, actor="bench", reason="controller benchmark")
            plans.apply(name, PLAN_SOURCE, "bench-judge.yaml", actor="bench")
        started = Controller(store, clock, env={}).tick()
        assert len(started) == MIGRATIONS and all(o.verdict.action == "start" for o in started)

        # rollups: 7 days of history every `stride` minutes, then the full-resolution window
        t0 = time.perf_counter()
        oldest = first - HISTORY_DAYS * 1440
        history = [m for m in range(oldest, first) if m % args.history_stride == 0]
        window = list(range(first, newest + 1))
        fig.rows["history_minutes"] = len(history)
        fig.rows["history_rows"] = bulk_load(store, bulk_rows(templates, history))
        fig.rows["window_minutes"] = len(window)
        fig.rows["window_rows"] = bulk_load(store, bulk_rows(templates, window))
        fig.load_seconds = time.perf_counter() - t0

        # (a) cold: a fresh controller's first tick loads every window from the store
        clock.advance(WINDOW_MINUTES * 60 + 30)  # hh:mm:30, so the last minute has settled
        controller = Controller(store, clock, env={})
        since = newest + 1 - controller.cache.horizon
        with store.read() as tx:
            fig.rows["cold_rows_in_horizon"] = int(
                tx.conn.execute(
                    sa.select(sa.func.count())
                    .select_from(tables.rollups)
                    .where(tables.rollups.c.minute >= since)
                ).scalar()
                or 0
            )
        fig.rows["cache_horizon_minutes"] = controller.cache.horizon
        split = Split()
        for method in ("track", "refresh"):
            split.wrap(controller.cache, method, method)
        for method in ("verdict_for", "judge_and_apply"):
            split.wrap(controller, method, method)
        seconds, outcomes = timed_tick(controller, split)
        fig.cold_ms, fig.cold_parts = seconds * 1e3, split.parts_ms(seconds)
        fig.verdicts_per_round.append(sum(o.verdict_id is not None for o in outcomes))
        fig.actions.update(o.verdict.action.value for o in outcomes)

        # (b) warm: a new minute of rollups, the clock one minute on, one tick
        profile = cProfile.Profile() if args.profile and not store.is_postgres else None
        minute = newest
        for r in range(args.rounds + (args.profile_rounds if profile else 0)):
            minute += 1
            with store.transaction() as tx:
                tx.insert_rollups(minute_items(templates, minute))
            clock.advance(60)
            if r >= args.rounds:
                assert profile is not None
                profile.enable()
                outcomes = controller.tick()
                profile.disable()
            else:
                seconds, outcomes = timed_tick(controller, split)
                fig.warm_ms.append(seconds * 1e3)
                fig.warm_parts.append(split.parts_ms(seconds))
            fig.verdicts_per_round.append(sum(o.verdict_id is not None for o in outcomes))
            fig.actions.update(o.verdict.action.value for o in outcomes)
        fig.rows["appended_rows"] = (minute - newest) * len(OPERATIONS) * len(SIDES) * MIGRATIONS

        # (c) judge only: verdict_for() on every plan, nothing read or written
        with store.read() as tx:
            states = [s for s in plan_repo.list_plans(tx) if s.active]
        for _ in range(args.judge_repeats):
            t0 = time.perf_counter()
            for state in states:
                controller.verdict_for(state)
            fig.judge_only_ms.append((time.perf_counter() - t0) * 1e3)

        with store.read() as tx:
            fig.verdict_rows_total = int(
                tx.conn.execute(sa.select(sa.func.count()).select_from(tables.verdicts)).scalar()
                or 0
            )
        if profile is not None:
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(30)
            say(f"  cProfile of {args.profile_rounds} warm ticks on {label}, by cumulative time:")
            for line in out.getvalue().splitlines():
                if line.strip() and not line.startswith(("   Ordered", "Ordered")):
                    say(f"    {line}")
    finally:
        store.dispose()
    fig.seconds = time.perf_counter() - t_start
    return fig


class Skip(Exception):
    pass


def postgres_database(admin_url: str) -> tuple[str, sa.Engine, str]:
    """A database of our own: (url, admin engine, name); Skip when no server answers."""
    admin = create_store_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"swo_bench_ctl_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        raise Skip(f"PostgreSQL not reachable at {admin_url} ({type(exc).__name__})") from exc
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return url, admin, name


def bench_judging(args: argparse.Namespace) -> dict[str, Any]:
    templates = make_templates(args.seed)
    figures: list[StoreFigures] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="switchover-controller-bench-") as tmp:
        say("  SQLite: setting up ...")
        figures.append(
            bench_store("SQLite", f"sqlite:///{Path(tmp) / 'store.db'}", templates, args)
        )
        say(f"  SQLite: done in {figures[-1].seconds:.1f} s")
    if args.no_postgres:
        skipped["PostgreSQL"] = "--no-postgres"
    else:
        admin_url = os.environ.get("SWITCHOVER_BENCH_POSTGRES_URL", DEFAULT_PG)
        try:
            url, admin, name = postgres_database(admin_url)
        except Skip as exc:
            skipped["PostgreSQL"] = str(exc)
        else:
            try:
                say("  PostgreSQL: setting up ...")
                figures.append(bench_store("PostgreSQL", url, templates, args))
                say(f"  PostgreSQL: done in {figures[-1].seconds:.1f} s")
            finally:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    return {
        "stores": {f.label: f.to_dict() for f in figures},
        "skipped": skipped,
        "templates": {
            "per_operation_side": VARIANTS,
            "calls_per_rollup": [
                min(r.count for rs in templates.values() for r in rs),
                max(r.count for rs in templates.values() for r in rs),
            ],
        },
    }


# part 2: the simulator ---------------------------------------------------------------


def simulation(label: str, source: str, cap_hours: float, seed: int) -> dict[str, Any]:
    plan = load_plan(source, label)
    traffic = Traffic(SIM_RATE, legacy=HEALTHY, candidate=HEALTHY)
    result: SimulationResult = simulate(
        plan, source, traffic, seed=seed, max_seconds=cap_hours * 3600
    )
    plan_days = plan.total_duration() / 86400
    dps = result.days_per_second
    return {
        "plan": label,
        "interval_seconds": plan.interval,
        "plan_days": plan_days,
        "cap_hours": cap_hours,
        "simulated_days": round(result.simulated_seconds / 86400, 4),
        "wall_seconds": round(result.wall_seconds, 2),
        "days_per_second": round(dps, 4),
        "verdicts": result.verdicts,
        "whole_plan_wall_seconds_estimate": round(plan_days / dps, 0) if dps else None,
        "state": result.state,
        "plan_status": result.status,
        "final_phase": result.final_phase,
        "final_percentage": result.final_percentage,
        "events": [e.to_dict() for e in result.timeline],
    }


def bench_simulator(args: argparse.Namespace) -> dict[str, Any]:
    if SEED_004.exists():
        seed004 = ("seed-004-voice-v2.yaml", SEED_004.read_text())
    else:
        seed004 = ("seed-004 (inline)", SEED_004_INLINE)
    out = []
    for (label, source), cap in (
        (seed004, args.sim_hours_5m),
        (("minute-14d", MINUTE_PLAN), args.sim_hours_1m),
    ):
        say(f"  {label}: simulating {cap:g} h ...")
        out.append(simulation(label, source, cap, args.seed))
    return {"runs": out, "rate_per_second": SIM_RATE, "sides": _side(HEALTHY)}


def _side(s: SideModel) -> dict[str, Any]:
    return {
        "p50_ms": s.p50_ms,
        "p95_ms": s.p95_ms,
        "error_rate": s.error_rate,
        "outcomes": dict(s.outcomes),
    }


# report -------------------------------------------------------------------------------


def _fmt_sim(days: float) -> str:
    total = round(days * 1440)
    d, rest = divmod(total, 1440)
    return f"{d}d {rest // 60:02d}:{rest % 60:02d}"


def report(fig: dict[str, Any]) -> list[str]:
    judging = fig["judging"]
    stores = list(judging["stores"].values())
    lines: list[str] = []
    if stores:
        rows = stores[0]["rows"]
        per_minute = MIGRATIONS * len(OPERATIONS) * len(SIDES)
        lines += [
            f"  judge one interval: {MIGRATIONS} migrations x {len(OPERATIONS)} operations x"
            f" {len(SIDES)} sides ({per_minute} series), plan every 1m on a 1h window",
            f"  rollups stored before the first tick: {rows['window_rows']:,} rows ="
            f" {rows['window_minutes']} minutes x {per_minute} series at full resolution,"
            f" + {rows['history_rows']:,} rows = {rows['history_minutes']} minutes x {per_minute}"
            f" series, every {fig['meta']['history_stride']}th minute of the {HISTORY_DAYS} days"
            " before",
            f"  the cold tick loads the cache's default horizon, {rows['cache_horizon_minutes']}"
            f" minutes: {rows['cold_rows_in_horizon']:,} rows; each warm round first appends"
            f" {per_minute} rows (one minute, tx.insert_rollups)",
            f"  every row: one of {VARIANTS} template rollups per (operation, side),"
            f" {judging['templates']['calls_per_rollup'][0]}-"
            f"{judging['templates']['calls_per_rollup'][1]} calls, log-normal latency,"
            f" ~{ERROR_RATE * 100:g} % errors, ~{CACHE_HIT * 100:g} % cache_hit",
            "",
            f"  {'':<44}" + "".join(f"{s['store']:>14}" for s in stores),
        ]

        def row(label: str, values: list[str]) -> None:
            lines.append(f"  {label:<44}" + "".join(f"{v:>14}" for v in values))

        row("bulk load of the rollups (s)", [f"{s['load_seconds']:.1f}" for s in stores])
        row("(a) cold tick, fresh controller (ms)", [f"{s['cold_tick_ms']:,.0f}" for s in stores])
        row(
            "      of which loading windows (ms)",
            [f"{s['cold_parts_ms']['load_windows']:,.0f}" for s in stores],
        )
        row(
            f"(b) warm tick median, {stores[0]['warm_rounds']} rounds (ms)",
            [f"{s['warm_tick_median_ms']:,.1f}" for s in stores],
        )
        row("    warm tick p95 (ms)", [f"{s['warm_tick_p95_ms']:,.1f}" for s in stores])
        for key, label in (
            ("read_plans", "read the active plans"),
            ("fetch_new_rows", "fetch the new rows (refresh)"),
            ("judge", "judge 100 plans (verdict_for)"),
            ("write_verdicts", "write 100 verdicts (transactions)"),
        ):
            row(f"      {label} (ms)", [f"{s['warm_parts_median_ms'][key]:,.1f}" for s in stores])
        row(
            "(c) judge only, 100 x verdict_for (ms)",
            [f"{s['judge_only_median_ms']:,.1f}" for s in stores],
        )
        row(
            "verdict rows written per round",
            ["/".join(str(v) for v in s["verdicts_per_round"]) for s in stores],
        )
        row("verdict rows in the table", [f"{s['verdict_rows_total']:,}" for s in stores])
        row(
            "verdict actions (cold + warm)",
            [" ".join(f"{k} {v}" for k, v in s["actions"].items()) for s in stores],
        )
    for name, why in judging["skipped"].items():
        lines.append(f"  {name}: skipped: {why}")

    sim = fig["simulator"]
    side = sim["sides"]
    lines += [
        "",
        f"  simulated days per wall-clock second: simulate() on SQLite, {sim['rate_per_second']:g}"
        f" calls/s, both sides p50 {side['p50_ms']:g} ms / p95 {side['p95_ms']:g} ms,"
        f" {side['error_rate'] * 100:g} % errors, cache_hit {side['outcomes']['cache_hit']:g}",
        f"  {'plan':<24} {'every':>5} {'plan':>5} {'cap':>4} {'simulated':>10} {'wall s':>7}"
        f" {'days/s':>7} {'verdicts':>8} {'whole plan':>11}  final state",
    ]
    for r in sim["runs"]:
        whole = r["whole_plan_wall_seconds_estimate"]
        lines.append(
            f"  {r['plan']:<24} {r['interval_seconds'] / 60:>4g}m {r['plan_days']:>4g}d"
            f" {r['cap_hours']:>3g}h"
            f" {_fmt_sim(r['simulated_days']):>10} {r['wall_seconds']:>7.1f}"
            f" {r['days_per_second']:>7.3f} {r['verdicts']:>8}"
            f" {'-' if whole is None else f'~{whole:,.0f} s':>11}"
            f"  {r['state']} ({r['plan_status']}), {r['final_phase']} {r['final_percentage']} %"
        )
        for e in r["events"]:
            if e["action"] != "start":
                lines.append(
                    f"  {'':<24} at {e['at']}: {e['action']} ({e['severity']}) {e['summary']}"
                )
    lines += [
        "  (each run stops at its cap or at a rollback, so the whole plan's wall time is"
        " extrapolated;",
        "   both sides are identical, so any rollback above is a false positive)",
    ]
    lines += ["", "  goals (informational)"]
    for g in fig["goals"]:
        lines.append(f"    {g['goal']:<44} {g['value']:>12}   {'PASS' if g['pass'] else 'MISS'}")
    return lines


def build_goals(fig: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for s in fig["judging"]["stores"].values():
        med = s["warm_tick_median_ms"]
        out.append(
            {
                "goal": f"judge one interval < {GOAL_TICK_MS:g} ms ({s['store']})",
                "value": f"{med:,.1f} ms",
                "pass": med < GOAL_TICK_MS,
            }
        )
    return out


# main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/controller.py",
        description="Benchmark switchover's controller: one interval of 100 plans, the simulator.",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: fewer rounds, shorter runs")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    p.add_argument("--rounds", type=int, help="timed warm ticks per store (10; quick 3)")
    p.add_argument("--judge-repeats", type=int, default=3, help="judge-only passes (3)")
    p.add_argument(
        "--history-stride", type=int, default=30, help="minutes between history rows (30)"
    )
    p.add_argument("--no-postgres", action="store_true", help="SQLite only")
    p.add_argument("--sim-hours-5m", type=float, help="cap of the 5m-plan simulation (12; quick 3)")
    p.add_argument(
        "--sim-hours-1m", type=float, help="cap of the 1m-plan simulation (2; quick 0.5)"
    )
    p.add_argument("--seed", type=int, default=20240601, help="rollup and traffic seed")
    p.add_argument(
        "--profile", action="store_true", help="also print cProfile of extra warm ticks (SQLite)"
    )
    p.add_argument("--profile-rounds", type=int, default=5, help="ticks profiled (5)")
    args = p.parse_args(argv)
    if args.rounds is None:
        args.rounds = 3 if args.quick else 10
    if args.sim_hours_5m is None:
        args.sim_hours_5m = 3.0 if args.quick else 12.0
    if args.sim_hours_1m is None:
        args.sim_hours_1m = 0.5 if args.quick else 2.0
    if args.rounds < 1 or args.judge_repeats < 1 or args.history_stride < 1:
        p.error("--rounds, --judge-repeats and --history-stride must be positive")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run both parts, print the report, return the figures (raises on an error)."""
    t_start = time.perf_counter()
    meta: dict[str, Any] = {
        "rounds": args.rounds,
        "history_stride": args.history_stride,
        "quick": args.quick,
        "seed": args.seed,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "versions": {d: version_of(d) for d in ("switchover", "SQLAlchemy", "psycopg")},
        "load_average_1min_before": os.getloadavg()[0],
    }
    say(
        f"switchover controller benchmark: {MIGRATIONS} plans x {len(OPERATIONS)} operations,"
        f" {args.rounds} warm rounds, Python {meta['python']}, {meta['cpus']} CPUs"
    )
    say()
    say("judge one interval (ManualClock, one new minute of rollups per round, GC on)")
    fig: dict[str, Any] = {"judging": bench_judging(args)}
    say()
    say("simulated days per wall-clock second (simulate(), virtual clock, SQLite)")
    fig["simulator"] = bench_simulator(args)
    meta["load_average_1min_after"] = os.getloadavg()[0]
    meta["seconds"] = round(time.perf_counter() - t_start, 1)
    fig = {"meta": meta, **fig}
    fig["goals"] = build_goals(fig)
    say()
    say(f"controller summary ({meta['seconds']} s)")
    for line in report(fig):
        say(line)
    load = max(meta["load_average_1min_before"], meta["load_average_1min_after"])
    if load > 0.5 * (meta["cpus"] or 1) + 1:
        say(f"  load average (1 min) reached {load:.2f}: the machine was busy, figures are noisy")
    return fig


def main(argv: list[str] | None = None) -> int:
    return harness.bench_main("bench/controller.py", parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())

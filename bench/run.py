"""switchover decision benchmark: switchover vs GrowthBook 4 vs UnleashClient 6, and HTTP.

Run from the repository root::

    .venv/bin/python bench/run.py              # 200,000 keys, about a minute
    .venv/bin/python bench/run.py --quick      # 20,000 keys, short HTTP runs
    .venv/bin/python bench/run.py --json out.json
    .venv/bin/python bench/run.py --no-router  # decisions only
    .venv/bin/python bench/run.py --no-controller
    .venv/bin/python bench/run.py --no-worker
    .venv/bin/python bench/run.py --no-data
    .venv/bin/python bench/run.py --no-dashboard
    .venv/bin/python bench/run.py --no-startup
    .venv/bin/python bench/run.py --no-verdicts
    .venv/bin/python bench/run.py --no-stream
    .venv/bin/python bench/run.py --no-proxy
    .venv/bin/python bench/run.py --no-ofrep

Then it runs the router benchmark (``bench/router.py``: route/shadow overhead vs
laboratory, recorder throughput, memory over 10 million observations; under a minute,
ten seconds with ``--quick``) and reports it too, its figures under "router" in the JSON.
Last the controller benchmark (``bench/controller.py``: judging one interval of 100
plans on SQLite and PostgreSQL, simulated days per second; about 90 s), under
"controller". Then the core-worker benchmark (``bench/worker.py``: config fetches,
single-flight, the runtime-config endpoint at 500 req/s, worker jobs/s), under "worker".
Then the data-migration benchmark (``bench/data.py``: migrate with backup and restore,
configs/s at 100,000 and 1,000,000 configs on SQLite and PostgreSQL), under "data".
Then the dashboard benchmark (``bench/dashboard.py``: a migration's page and its chart
data over 7 days of per-minute rollups for 4 operations, ``ChartCache`` in process and
the real server on loopback, on SQLite and PostgreSQL; a few minutes), under "dashboard".
Then the CLI start-up benchmark (``bench/startup.py``: ``switchover --help`` and
``switchover status`` against ``python -c "import typer"``, fresh processes; about 20 s),
under "startup".
Last the verdicts benchmark (``bench/verdicts.py``: ~3,200 seeded rollouts over issue 14's
grid, equal sides and regressions; the false-rollback rate and the detection delays;
about 8 minutes on 2 CPUs, under a minute with ``--quick``), under "verdicts".

Every engine decides the same rollout (25 % of ``stt`` in migration/group ``voice_v2``,
sticky on the user id) for the same deterministic keys, in-process and offline. The
per-call figure is the median over batches of 1,000 calls of (batch time / 1,000),
after a warm-up pass that also records each engine's answers. The engines are timed
interleaved, one batch each per round, so a machine whose load drifts during the run
skews them alike and the ratios stay meaningful. switchover and
UnleashClient's flexibleRollout use the same hash, so they must agree on every key;
GrowthBook hashes differently and is only checked for its rollout share.

Exit status: 0 when the run completed (a missed goal is informational), 1 when
switchover disagrees with UnleashClient (or the HTTP answers disagree with the SDK),
2 on an error (an error in the router or controller benchmark too; the decision figures
are kept).
The HTTP section reports "skipped: <reason>" when the server or ``POST /v1/decide``
is not available.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import harness
import httpload
import propagation
import subjects

GOAL_DECIDE_NS = 1000
GOAL_VS_GROWTHBOOK = 8.0
GOAL_VS_UNLEASH = 50.0
SHOW_MISMATCHES = 5


# helpers ------------------------------------------------------------------------------


make_keys = harness.make_keys


version_of = harness.version_of


def fmt_int(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.0f}"


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}x"


say = harness.say


ENGINES = {
    # name: (label, the call timed)
    "switchover": ("switchover", 'm.decide("stt", {"user_id": key})'),
    "growthbook": ("GrowthBook", 'gb.set_attributes({"id": key}); gb.is_on("stt")'),
    "growthbook_async": (
        "GrowthBookClient (async)",
        'await client.is_on("stt", UserContext(attributes={"id": key}))',
    ),
    "unleash": ("UnleashClient", 'client.is_enabled("stt", {"userId": key})'),
    "harness_floor": ("harness floor", "the same loop calling a no-op (included in every figure)"),
}


def measured(name: str, timing: harness.Timing) -> None:
    label, call = ENGINES[name]
    t = timing.to_dict()
    say(
        f"  {label:<26} median {t['median_ns']:>9,.0f} ns/call   p99(batch) {t['p99_ns']:>9,.0f} ns"
        f"   [{t['batches']} batches]"
    )
    say(f"  {'':<26} {call}")


# in-process section -------------------------------------------------------------------


async def in_process(
    keys: list[str], batch: int, db_url: str, workdir: Path
) -> tuple[dict[str, harness.Timing], dict[str, list[bool]]]:
    """Set every engine up, warm each with one pass over all keys (recording its
    answers), then time them interleaved, batch by batch."""
    closers: list[Any] = []
    try:
        so = subjects.switchover_subject(db_url)
        closers.append(so.close)
        gb = subjects.growthbook_subject()
        closers.append(gb.close)
        gba = await subjects.growthbook_async_subject()
        closers.append(gba.close)
        un = subjects.unleash_subject(workdir / "unleash-cache")
        closers.append(un.close)

        answers: dict[str, list[bool]] = {}
        chunks: dict[str, list[Any]] = {}
        engines: list[tuple[str, Any]] = [
            ("switchover", so),
            ("growthbook", gb),
            ("growthbook_async", gba),
            ("unleash", un),
        ]
        for name, subj in engines:
            started = time.perf_counter()
            contexts = subj.make_contexts(keys)
            chunks[name] = harness.chunked(contexts, batch)
            got = subj.collect(contexts)
            answers[name] = await got if inspect.isawaitable(got) else got
            say(
                f"  warm-up  {ENGINES[name][0]:<26} {len(keys):,} calls"
                f" in {time.perf_counter() - started:.1f} s"
            )

        # switchover is timed three times a round (it is ~50x cheaper than the others),
        # once between each competitor, so its figure spans the whole run.
        schedule = [
            ("switchover", so.run, chunks["switchover"]),
            ("growthbook", gb.run, chunks["growthbook"]),
            ("switchover", so.run, chunks["switchover"]),
            ("growthbook_async", gba.run, chunks["growthbook_async"]),
            ("switchover", so.run, chunks["switchover"]),
            ("unleash", un.run, chunks["unleash"]),
            ("harness_floor", harness.noop_runner(), chunks["switchover"]),
        ]
        started = time.perf_counter()
        timings = await harness.time_interleaved(schedule, rounds=len(chunks["switchover"]))
        say(
            f"  timed    {len(chunks['switchover'])} rounds, every engine one batch a round"
            f" (switchover three), {time.perf_counter() - started:.1f} s"
        )
        return timings, answers
    finally:
        for close in reversed(closers):
            res = close()
            if inspect.isawaitable(res):
                await res


def rollout_share(answers: list[bool]) -> float:
    return sum(answers) / len(answers) if answers else float("nan")


# HTTP section -------------------------------------------------------------------------


def bench_http(
    args: argparse.Namespace,
    db_url: str,
    workdir: Path,
    keys: list[str],
    sdk_answers: list[bool],
) -> dict[str, Any]:
    """The HTTP figures, or {"skipped": reason}. Mismatches with the SDK are reported."""
    cli = Path(args.cli) if args.cli else httpload.default_cli()
    say(f"  server: {cli} serve --host 127.0.0.1 --no-demo, concurrency {args.concurrency}")
    server = None
    try:
        token = httpload.create_token(cli, db_url)
        server = httpload.start_server(cli, db_url, workdir)
        n_check = min(1000, len(keys))
        mismatches = httpload.check_decisions(
            server.base_url,
            token,
            subjects.MIGRATION,
            subjects.FEATURE,
            keys[:n_check],
            sdk_answers[:n_check],
        )
        out: dict[str, Any] = {
            "checked_keys": n_check,
            "mismatches_with_sdk": len(mismatches),
            "first_mismatches": [
                {"key": k, "server_side": s, "sdk_candidate": w}
                for k, s, w in mismatches[:SHOW_MISMATCHES]
            ],
        }
        say(
            f"  answers: {n_check - len(mismatches):,}/{n_check:,} keys match the SDK"
            + ("" if not mismatches else "  <-- MISMATCH")
        )
        pool = keys[: min(len(keys), 20_000)]
        for label, per_request in (("single", 1), ("batch100", 100)):
            reqs = httpload.build_requests(
                server.port, token, subjects.MIGRATION, subjects.FEATURE, pool, per_request
            )
            res = httpload.run_load(
                server.port,
                reqs,
                per_request,
                args.concurrency,
                args.http_warmup,
                args.http_duration,
            )
            out[label] = res.to_dict()
            say(
                f"  {per_request:>3} context(s)/request: {res.requests_per_s:>9,.0f} req/s"
                f"  {res.decisions_per_s:>10,.0f} decisions/s   p50 {res.p50_ms:6.2f} ms"
                f"   p99 {res.p99_ms:6.2f} ms   ({res.requests:,} requests, {res.errors} errors,"
                f" client CPU {res.client_cpu:.2f} core)"
            )
            if res.errors:
                say(f"      first error: {res.first_error}")
        return out
    except httpload.Skip as exc:
        return {"skipped": str(exc)}
    except Exception as exc:  # the server is work in progress: never fail the run on it
        return {"skipped": f"error: {type(exc).__name__}: {exc}"}
    finally:
        if server is not None:
            server.stop()


# report -------------------------------------------------------------------------------


def summary_table(fig: dict[str, Any]) -> list[str]:
    eng = fig["engines"]
    ratios = fig["ratios"]
    rows = [
        ("switchover  m.decide()", eng["switchover"], 1.0),
        (
            "GrowthBook  set_attributes+is_on",
            eng["growthbook"],
            ratios["growthbook_sync_over_switchover"],
        ),
        (
            "GrowthBookClient  is_on (async)",
            eng["growthbook_async"],
            ratios["growthbook_async_over_switchover"],
        ),
        ("UnleashClient  is_enabled", eng["unleash"], ratios["unleash_over_switchover"]),
        ("harness floor (no-op call)", eng["harness_floor"], None),
    ]
    lines = [
        f"  {'in-process, per call':<34} {'median ns':>10} {'p99 ns':>10} "
        f"{'calls/s':>12} {'x switchover':>13}",
    ]
    for label, t, r in rows:
        ratio = "" if r is None else fmt_ratio(r)
        lines.append(
            f"  {label:<34} {fmt_int(t['median_ns']):>10} {fmt_int(t['p99_ns']):>10} "
            f"{fmt_int(t['calls_per_second_at_median']):>12} {ratio:>13}"
        )
    http = fig["http"]
    lines.append("")
    if "skipped" in http:
        lines.append(f"  HTTP POST /v1/decide: skipped: {http['skipped']}")
    else:
        lines.append(
            f"  {'HTTP POST /v1/decide (loopback)':<34} {'req/s':>10} {'decisions/s':>12} "
            f"{'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        )
        for key, label in (("single", "1 context/request"), ("batch100", "100 contexts/request")):
            r = http[key]
            lines.append(
                f"  {label + ', c=' + str(r['concurrency']):<34} {fmt_int(r['requests_per_s']):>10}"
                f" {fmt_int(r['decisions_per_s']):>12} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}"
                f" {r['errors']:>7}"
            )
    lines.append("")
    lines.append("  goals (informational)")
    for g in fig["goals"]:
        lines.append(f"    {g['goal']:<40} {g['value']:>12}   {'PASS' if g['pass'] else 'MISS'}")
    return lines


def build_goals(fig: dict[str, Any]) -> list[dict[str, Any]]:
    med = fig["engines"]["switchover"]["median_ns"]
    r_gb = fig["ratios"]["growthbook_over_switchover"]
    r_un = fig["ratios"]["unleash_over_switchover"]
    agree = fig["agreement"]["unleash"]["fraction"]
    spread = fig.get("propagation", {})
    extra = []
    if "median_ms" in spread:
        extra.append(
            {
                "goal": "a change reaches another process < 100 ms",
                "value": f"max {spread['max_ms']:.1f} ms",
                "pass": spread["max_ms"] < 100,
            }
        )
    return [
        {
            "goal": f"decide() <= {GOAL_DECIDE_NS} ns median",
            "value": f"{med:,.0f} ns",
            "pass": med <= GOAL_DECIDE_NS,
        },
        {
            "goal": f">= {GOAL_VS_GROWTHBOOK:g}x GrowthBook (fastest path)",
            "value": fmt_ratio(r_gb),
            "pass": r_gb >= GOAL_VS_GROWTHBOOK,
        },
        {
            "goal": f">= {GOAL_VS_UNLEASH:g}x UnleashClient",
            "value": fmt_ratio(r_un),
            "pass": r_un >= GOAL_VS_UNLEASH,
        },
        {
            "goal": "same side as UnleashClient on every key",
            "value": f"{agree * 100:.3f} %",
            "pass": agree == 1.0,
        },
        *extra,
    ]


# main ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmark switchover decisions against GrowthBook and UnleashClient.",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 20,000 keys, short HTTP")
    p.add_argument("--keys", type=int, help="distinct keys (default 200,000; quick 20,000)")
    p.add_argument("--batch", type=int, default=1000, help="calls per timed batch (1000)")
    p.add_argument("--seed", type=int, default=20240601, help="key generator seed")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    p.add_argument("--no-http", action="store_true", help="skip the HTTP section")
    p.add_argument(
        "--no-router", action="store_true", help="skip the router benchmark (bench/router.py)"
    )
    p.add_argument(
        "--no-controller",
        action="store_true",
        help="skip the controller benchmark (bench/controller.py)",
    )
    p.add_argument(
        "--no-worker", action="store_true", help="skip the core-worker benchmark (bench/worker.py)"
    )
    p.add_argument(
        "--no-data",
        action="store_true",
        help="skip the data-migration benchmark (bench/data.py: 100k and 1M configs, minutes)",
    )
    p.add_argument(
        "--no-dashboard",
        action="store_true",
        help="skip the dashboard benchmark (bench/dashboard.py: 7 days of rollups, minutes)",
    )
    p.add_argument(
        "--no-startup",
        action="store_true",
        help="skip the CLI start-up benchmark (bench/startup.py: --help and status vs typer)",
    )
    p.add_argument(
        "--no-stream",
        action="store_true",
        help="skip the stream-route benchmark (bench/stream.py: route_stream, circuit)",
    )
    p.add_argument(
        "--no-proxy",
        action="store_true",
        help="skip the proxy benchmark (bench/proxy.py: added latency at 500 req/s vs direct)",
    )
    p.add_argument(
        "--no-ofrep",
        action="store_true",
        help="skip the OpenFeature benchmark (bench/ofrep.py: OFREP vs /v1/decide, the provider)",
    )
    p.add_argument(
        "--no-verdicts",
        action="store_true",
        help="skip the verdicts benchmark (bench/verdicts.py: false rollbacks, detection delays)",
    )
    p.add_argument("--concurrency", type=int, default=16, help="HTTP client connections (16)")
    p.add_argument("--http-duration", type=float, help="seconds per HTTP run (4; quick 1.5)")
    p.add_argument("--http-warmup", type=float, help="HTTP warm-up seconds (0.5; quick 0.3)")
    p.add_argument("--cli", help="switchover executable for the HTTP section (default: venv's)")
    args = p.parse_args(argv)
    if args.keys is None:
        args.keys = 20_000 if args.quick else 200_000
    if args.http_duration is None:
        args.http_duration = 1.5 if args.quick else 4.0
    if args.http_warmup is None:
        args.http_warmup = 0.3 if args.quick else 0.5
    if args.keys < args.batch or args.batch < 1:
        p.error("--keys must be at least --batch, and --batch at least 1")
    return args


def run(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    t_start = time.perf_counter()
    meta = {
        "keys": args.keys,
        "batch": args.batch,
        "seed": args.seed,
        "quick": args.quick,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": {
            d: version_of(d) for d in ("switchover", "growthbook", "UnleashClient", "mmh3")
        },
    }
    v = meta["versions"]
    say(
        f"switchover decision benchmark: {args.keys:,} keys, batches of {args.batch:,}, "
        f"Python {meta['python']}, {meta['cpus']} CPUs"
    )
    say(
        f"  switchover {v['switchover']}, growthbook {v['growthbook']}, "
        f"UnleashClient {v['UnleashClient']}, mmh3 {v['mmh3']}"
    )
    say(
        f"  rollout: {subjects.PERCENTAGE} % of '{subjects.FEATURE}' in "
        f"'{subjects.MIGRATION}', sticky on the user id"
    )
    keys = make_keys(args.keys, args.seed)
    say()
    say("in-process decisions (median of per-batch means; warm-up pass first; GC off)")
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="switchover-bench-") as tmp:
        workdir = Path(tmp)
        db_url = subjects.create_store(workdir / "bench.db")
        timings, answers = asyncio.run(in_process(keys, args.batch, db_url, workdir))
        load_after = os.getloadavg()[0]
        engines = {name: t.to_dict() for name, t in timings.items()}
        for name in ENGINES:
            measured(name, timings[name])
        busy = max(load_before, load_after) > 0.5 * (os.cpu_count() or 1) + 1
        say(
            f"  load average (1 min) {load_before:.2f} before, {load_after:.2f} after"
            + (
                ": the machine was busy, absolute figures are noisy"
                " (ratios hold better: the engines were timed interleaved)"
                if busy
                else ""
            )
        )
        meta["load_average_1min"] = {"before": load_before, "after": load_after}
        so_answers = answers["switchover"]
        un_answers = answers["unleash"]
        gb_answers = answers["growthbook"]
        gba_answers = answers["growthbook_async"]

        # agreement
        say()
        mismatches = [
            (k, s, u) for k, s, u in zip(keys, so_answers, un_answers, strict=True) if s != u
        ]
        agree = 1 - len(mismatches) / len(keys)
        say(
            f"agreement, switchover vs UnleashClient flexibleRollout: "
            f"{len(keys) - len(mismatches):,}/{len(keys):,} keys = {agree * 100:.3f} %"
            + ("" if not mismatches else "  <-- DISAGREEMENT")
        )
        for k, s, u in mismatches[:SHOW_MISMATCHES]:
            say(
                f"    key {k}: switchover {'candidate' if s else 'legacy'}, "
                f"UnleashClient {'enabled' if u else 'disabled'}"
            )
        if gb_answers != gba_answers:
            raise RuntimeError("the sync and async GrowthBook clients answered differently")
        say(
            f"rollout share: switchover {rollout_share(so_answers) * 100:.2f} %, "
            f"UnleashClient {rollout_share(un_answers) * 100:.2f} %, "
            f"GrowthBook {rollout_share(gb_answers) * 100:.2f} % "
            "(GrowthBook uses its own hash, so it is not compared key by key)"
        )

        # HTTP
        say()
        say("HTTP POST /v1/decide on 127.0.0.1")
        if args.no_http:
            http: dict[str, Any] = {"skipped": "--no-http"}
        else:
            http = bench_http(args, db_url, workdir, keys, so_answers)
        if "skipped" in http:
            say(f"  skipped: {http['skipped']}")

        say()
        say("change propagation to another process (PostgreSQL LISTEN/NOTIFY, polling off)")
        try:
            spread: dict[str, Any] = propagation.measure(rounds=10 if args.quick else 20)
            say(
                f"  {spread['rounds']} changes: median {spread['median_ms']:.1f} ms, "
                f"p90 {spread['p90_ms']:.1f} ms, max {spread['max_ms']:.1f} ms (goal: < 100 ms)"
            )
        except propagation.Skip as exc:
            spread = {"skipped": str(exc)}
            say(f"  skipped: {exc}")

    gb_fastest = min(engines["growthbook"]["median_ns"], engines["growthbook_async"]["median_ns"])
    so_med = engines["switchover"]["median_ns"]
    fig: dict[str, Any] = {
        "meta": meta,
        "engines": engines,
        "ratios": {
            "growthbook_over_switchover": round(gb_fastest / so_med, 2),
            "growthbook_sync_over_switchover": round(
                engines["growthbook"]["median_ns"] / so_med, 2
            ),
            "growthbook_async_over_switchover": round(
                engines["growthbook_async"]["median_ns"] / so_med, 2
            ),
            "unleash_over_switchover": round(engines["unleash"]["median_ns"] / so_med, 2),
        },
        "agreement": {
            "unleash": {
                "keys": len(keys),
                "mismatches": len(mismatches),
                "fraction": agree,
                "first_mismatches": [
                    {"key": k, "switchover_candidate": s, "unleash_enabled": u}
                    for k, s, u in mismatches[:SHOW_MISMATCHES]
                ],
            },
        },
        "rollout_share": {
            "switchover": rollout_share(so_answers),
            "unleash": rollout_share(un_answers),
            "growthbook": rollout_share(gb_answers),
        },
        "http": http,
        "propagation": spread,
    }
    fig["goals"] = build_goals(fig)
    fig["meta"]["seconds"] = round(time.perf_counter() - t_start, 1)

    say()
    say(f"summary ({fig['meta']['seconds']} s)")
    for line in summary_table(fig):
        say(line)

    failed = bool(mismatches) or bool(http.get("mismatches_with_sdk"))
    code = 1 if failed else 0

    say()
    if args.no_router:
        fig["router"] = {"skipped": "--no-router"}
    else:
        # in a process of its own: what this one holds after the decision benchmark
        # (200,000 keys, three flag clients) slows the router's per-call figures by
        # cache pressure alone
        with tempfile.TemporaryDirectory(prefix="switchover-router-") as tmp:
            out = Path(tmp) / "router.json"
            cmd = [sys.executable, str(Path(__file__).with_name("router.py")), "--json", str(out)]
            done = subprocess.run([*cmd, *(["--quick"] if args.quick else [])], check=False)
            if done.returncode == 0 and out.exists():
                fig["router"] = json.loads(out.read_text())
            else:
                say("router benchmark: error (the decision figures above stand)")
                fig["router"] = {"error": f"bench/router.py exited with {done.returncode}"}
                code = 2

    for name, skip in (
        ("stream", args.no_stream),
        ("controller", args.no_controller),
        ("worker", args.no_worker),
        ("data", args.no_data),
        ("dashboard", args.no_dashboard),
        ("startup", args.no_startup),
        ("verdicts", args.no_verdicts),
        ("proxy", args.no_proxy),
        ("ofrep", args.no_ofrep),
    ):
        say()
        if skip:
            fig[name] = {"skipped": f"--no-{name}"}
            continue
        fig[name] = _sub_bench(name, args.quick)
        if "error" in fig[name]:
            code = 2
    return code, fig


def _sub_bench(name: str, quick: bool) -> dict[str, Any]:
    """Run ``bench/NAME.py`` in its own process and read its figures."""
    with tempfile.TemporaryDirectory(prefix=f"switchover-{name}-") as tmp:
        out = Path(tmp) / f"{name}.json"
        script = str(Path(__file__).with_name(f"{name}.py"))
        cmd = [sys.executable, script, "--json", str(out), *(["--quick"] if quick else [])]
        done = subprocess.run(cmd, check=False)
        if done.returncode == 0 and out.exists():
            return dict(json.loads(out.read_text()))
        say(f"{name} benchmark: error (the figures above stand)")
        return {"error": f"bench/{name}.py exited with {done.returncode}"}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        code, fig = run(args)
    except Exception:
        traceback.print_exc()
        print("bench: error, no figures", file=sys.stderr)
        return 2
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(fig, indent=2) + "\n")
        say(f"figures written to {path}")
    if fig["agreement"]["unleash"]["mismatches"] or fig["http"].get("mismatches_with_sdk"):
        print("bench: FAILED, the engines disagree (see above)", file=sys.stderr)
    if "error" in fig.get("router", {}):
        print("bench: error in the router benchmark (see above)", file=sys.stderr)
    if "error" in fig.get("controller", {}):
        print("bench: error in the controller benchmark (see above)", file=sys.stderr)
    for name in ("worker", "data", "dashboard", "startup"):
        if "error" in fig.get(name, {}):
            print(f"bench: error in the {name} benchmark (see above)", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())

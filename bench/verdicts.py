"""Benchmark the verdicts: how often equal sides are rolled back, how soon regressions are.

Every run is the real controller on the in-memory store, driven by the seeded simulator
(``switchover.control.simulate``), on the grid of issue 14:

- **equal sides**: base error rates 0.01 % to 5 %, 1 to 500 calls/s, plans of 1 hour to
  30 days judged every 1 or 5 minutes. The goal: at least 99 % of runs end without a
  rollback (the plan's ``confidence`` is 98 %; the method bounds the chance of *any*
  false failure over the whole plan by 2 %, and is conservative).
- **regressions**: a p95 at 1.3x legacy's, an error rate at 1.5x and 3x legacy's, a spike
  to 6 % in mid-phase. The goal: at least 99 % rolled back; the delays are printed in
  the candidate's calls, its expected failures (calls x its error rate) and minutes.
- **the issue's run**: ``examples/plans/seed-004-voice-v2.yaml`` at 20 calls/s, equal
  sides at 0.05 %, seeds 1 to 7 and 11, which used to roll back in 7 runs of 8.

The grid's plan is ``tests/unit/control/test_grid.py``'s: guardrails ``error_rate <
max(3 %, 2 x base)``, ``error_ratio <= 1.2``, ``p95_ratio <= 1.2``; the same error rate
and ``p95 < 1600ms`` as gates; seed 001's matrix; phases 1 %, 10 %, 50 %, 100 % for a
tenth, a fifth, three tenths and two fifths of the plan. Runs are spread over the CPUs;
seeds per cell fall as the plans grow (a 30-day plan judged every minute is ~25 s).

    .venv/bin/python bench/verdicts.py            # ~3,200 runs, about 8 minutes on 2 CPUs
    .venv/bin/python bench/verdicts.py --quick    # ~600 runs, under a minute
    .venv/bin/python bench/verdicts.py --json out.json
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from switchover.control.simulate import Change, SideModel, SimulationResult, Traffic, simulate
from switchover.core.plan import load_plan

say = harness.say
ROOT = Path(__file__).resolve().parents[1]
SEED_004 = ROOT / "examples" / "plans" / "seed-004-voice-v2.yaml"
P95, P50 = 800.0, 300.0
PHASES = ((1, 0.1), (10, 0.2), (50, 0.3), (100, 0.4))
BASES = (0.0001, 0.0005, 0.002, 0.01, 0.05)
RATES = (1.0, 20.0, 100.0, 500.0)
GOAL_CLEAN = 0.99
GOAL_CAUGHT = 0.99


def grid_source(minutes: int, interval: int, error_limit: float) -> str:
    gates = f'["error_rate < {error_limit * 100:g}%", "p95 < {2 * P95:g}ms"]'
    phases = "\n".join(
        f"  - {{name: p{pct}, percentage: {pct}, duration: {max(1, round(minutes * f))}m, "
        f"gates: {gates}}}"
        for pct, f in PHASES
    )
    return f"""
plan: grid
interval: {interval}m
window: 1h
min_samples: 100
confidence: 98%
guardrails:
  - error_rate < {error_limit * 100:g}%
  - error_ratio <= 1.2
  - p95_ratio <= 1.2
phases:
{phases}
"""


SPIKE_SOURCE = """
plan: spike
interval: 1m
window: 30m
recent: 2m
min_samples: 100
guardrails: ["error_rate < 5%", "p95_ratio <= 1.2"]
phases:
  - {name: p25, percentage: 25, duration: 5m}
  - {name: p50, percentage: 50, duration: 10m}
  - {name: p100, percentage: 100, duration: 5m}
"""


@dataclass(frozen=True)
class Job:
    group: str
    """``clean``, a regression case's name, or ``issue``."""
    label: str
    seed: int
    minutes: int = 60
    interval: int = 1
    base: float = 0.01
    rate: float = 20.0
    candidate: tuple[float, float, float] | None = None
    """(p50, p95, error rate) of the candidate, else legacy's."""
    change_at: float | None = None
    limit: float | None = None
    source: str | None = None
    max_seconds: float | None = None


def _legacy(job: Job) -> SideModel:
    if job.group == "issue":
        return SideModel(p95_ms=400.0, error_rate=0.0005, outcomes=(("cache_hit", 0.85),))
    return SideModel(p95_ms=P95, p50_ms=P50, error_rate=job.base)


def run_job(job: Job) -> dict[str, Any]:
    legacy = _legacy(job)
    if job.source is not None:
        source = job.source
    else:
        limit = job.limit if job.limit is not None else max(0.03, 2 * job.base)
        source = grid_source(job.minutes, job.interval, limit)
    cand = legacy
    changes: tuple[Change, ...] = ()
    if job.candidate is not None:
        p50, p95, err = job.candidate
        model = SideModel(p95_ms=p95, p50_ms=p50, error_rate=err)
        if job.change_at is None:
            cand = model
        else:
            changes = (Change(job.change_at, model),)
    t = time.perf_counter()
    r: SimulationResult = simulate(
        load_plan(source, f"{job.label}.yaml"),
        source,
        Traffic(job.rate, legacy, cand, changes=changes),
        seed=job.seed,
        max_seconds=job.max_seconds,
    )
    backs = [e for e in r.timeline if e.action.startswith("rollback")]
    out: dict[str, Any] = {
        "group": job.group,
        "label": job.label,
        "seed": job.seed,
        "state": r.state,
        "rolled_back": bool(backs),
        "wall": time.perf_counter() - t,
        "verdicts": r.verdicts,
        "ratio_holds": sum(
            e.action == "hold" and "sample ratio" in e.summary and "failed" in e.summary
            for e in r.timeline
        ),
    }
    if backs:
        since_calls = r.changed_at_calls[0] if r.changed_at_calls else 0
        since = job.change_at or 0.0
        rate = job.candidate[2] if job.candidate else legacy.error_rate
        out |= {
            "at_minutes": (backs[0].at - since) / 60,
            "candidate_calls": backs[0].candidate_calls - since_calls,
            "expected_failures": (backs[0].candidate_calls - since_calls) * rate,
            "why": backs[0].summary,
        }
    return out


# the grid -------------------------------------------------------------------------------------


def clean_jobs(quick: bool) -> list[Job]:
    # (label, minutes, interval, seeds per cell, or only the grid's corners)
    plans = [
        ("1h@1m", 60, 1, 10 if quick else 50, False),
        ("1h@5m", 60, 5, 10 if quick else 50, False),
        ("1d@1m", 1440, 1, 2 if quick else 10, False),
        ("1d@5m", 1440, 5, 2 if quick else 10, False),
        ("7d@5m", 7 * 1440, 5, 0 if quick else 3, False),
        ("30d@5m", 30 * 1440, 5, 0 if quick else 1, False),
        ("30d@1m", 30 * 1440, 1, 0 if quick else 1, True),
    ]
    jobs = []
    for label, minutes, interval, seeds, corners_only in plans:
        for base in BASES:
            for rate in RATES:
                corner = base in (BASES[0], BASES[-1]) and rate in (RATES[0], RATES[-1])
                if corners_only and not corner:
                    continue
                for seed in range(seeds):
                    jobs.append(Job("clean", label, seed, minutes, interval, base=base, rate=rate))
    return jobs


REGRESSIONS = {
    # name: (label, base, rate, plan minutes, interval, candidate (p50, p95, error), seeds)
    "p95 1.3x": [
        ("500/s", 0.01, 500.0, 1440, 1, (P50 * 1.3, P95 * 1.3, 0.01), 100),
        ("50/s", 0.01, 50.0, 1440, 1, (P50 * 1.3, P95 * 1.3, 0.01), 30),
    ],
    "errors 1.5x": [
        ("base 2%, 500/s", 0.02, 500.0, 1440, 1, (P50, P95, 0.03), 100),
        ("base 0.5%, 500/s", 0.005, 500.0, 1440, 1, (P50, P95, 0.0075), 30),
    ],
    "errors 3x": [
        ("base 1%, 100/s", 0.01, 100.0, 1440, 1, (P50, P95, 0.03), 200),
        ("base 0.05%, 500/s", 0.0005, 500.0, 1440, 5, (P50, P95, 0.0015), 50),
        ("base 0.01%, 500/s", 0.0001, 500.0, 7 * 1440, 5, (P50, P95, 0.0003), 20),
    ],
}


def regression_jobs(quick: bool) -> list[Job]:
    jobs = []
    for name, cases in REGRESSIONS.items():
        for label, base, rate, minutes, interval, cand, seeds in cases:
            for seed in range(max(5, seeds // 5) if quick else seeds):
                jobs.append(
                    Job(name, label, seed, minutes, interval, base=base, rate=rate, candidate=cand)
                )
    for seed in range(40 if quick else 200):
        jobs.append(
            Job(
                "spike 6%",
                "50% phase, 200/s",
                seed,
                base=0.01,
                rate=200.0,
                candidate=(P50, P95, 0.06),
                change_at=9 * 60.0,
                source=SPIKE_SOURCE,
            )
        )
    for seed in range(2 if quick else 10):
        jobs.append(
            Job(
                "spike 6%",
                "2 days into a week's 10% phase",
                seed,
                7 * 1440,
                5,
                base=0.01,
                rate=200.0,
                candidate=(P50, P95, 0.06),
                change_at=(0.1 * 7 + 2) * 86400.0,
                limit=0.05,
            )
        )
    return jobs


def issue_jobs(quick: bool) -> list[Job]:
    source = SEED_004.read_text(encoding="utf-8")
    if quick:
        return [
            Job(
                "issue",
                "seed-004, to the pilot's end",
                11,
                source=source,
                rate=20.0,
                max_seconds=8 * 86400 + 600,
            )
        ]
    return [
        Job("issue", "seed-004, whole plan", seed, source=source, rate=20.0)
        for seed in (1, 2, 3, 4, 5, 6, 7, 11)
    ]


# report -----------------------------------------------------------------------------------------


def _q(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    clean = [r for r in results if r["group"] == "clean"]
    by_plan: dict[str, dict[str, Any]] = {}
    for r in clean:
        row = by_plan.setdefault(
            r["label"], {"runs": 0, "rolled_back": 0, "completed": 0, "holding": 0, "wall": 0.0}
        )
        row["runs"] += 1
        row["rolled_back"] += r["rolled_back"]
        row["completed"] += r["state"] == "completed"
        row["holding"] += r["state"] == "holding"
        row["wall"] += r["wall"]
    false_backs = [r for r in clean if r["rolled_back"]]
    ratio_held = [r for r in clean if r.get("ratio_holds")]
    regressions: dict[str, dict[str, Any]] = {}
    for r in results:
        if r["group"] in ("clean", "issue"):
            continue
        key = f"{r['group']}: {r['label']}"
        regressions.setdefault(key, {"runs": []})["runs"].append(r)
    for row in regressions.values():
        runs = row.pop("runs")
        caught = [r for r in runs if r["rolled_back"]]
        row["runs"], row["caught"] = len(runs), len(caught)
        for name in ("candidate_calls", "expected_failures", "at_minutes"):
            values = [r[name] for r in caught]
            if values:
                row[name] = {
                    "median": statistics.median(values),
                    "p99": _q(values, 0.99),
                    "max": max(values),
                }
    issue = [r for r in results if r["group"] == "issue"]
    return {
        "equal_sides": {
            "runs": len(clean),
            "rolled_back": len(false_backs),
            "false_rollback_rate": len(false_backs) / len(clean) if clean else None,
            "sample_ratio_held": len(ratio_held),
            "by_plan": by_plan,
            "rollbacks": [
                f"{r['label']} seed {r['seed']}: {r.get('why', '')}" for r in false_backs
            ],
        },
        "regressions": regressions,
        "issue_seed_004": {
            "runs": len(issue),
            "rolled_back": sum(r["rolled_back"] for r in issue),
            "states": [f"seed {r['seed']}: {r['state']}" for r in issue],
        },
    }


def report(fig: dict[str, Any]) -> list[str]:
    eq = fig["equal_sides"]
    lines = [
        f"equal sides: {eq['rolled_back']} rollbacks in {eq['runs']:,} runs = "
        f"{(eq['false_rollback_rate'] or 0) * 100:.2f} % false rollbacks "
        f"(goal: at most {(1 - GOAL_CLEAN) * 100:g} %)",
        f"  {'plan':<8} {'runs':>6} {'rolled back':>12} {'completed':>10} {'holding':>8} "
        f"{'s/run':>7}",
    ]
    for label, row in eq["by_plan"].items():
        lines.append(
            f"  {label:<8} {row['runs']:>6} {row['rolled_back']:>12} {row['completed']:>10} "
            f"{row['holding']:>8} {row['wall'] / row['runs']:>7.2f}"
        )
    lines += [f"  {r}" for r in eq["rollbacks"][:10]]
    lines.append(
        f"  held by the sample ratio guardrail (equal sides, every call recorded): "
        f"{eq['sample_ratio_held']} of {eq['runs']:,} runs"
    )
    lines.append("regressions: caught, and the delay (median / 99th percentile / most)")
    for key, row in fig["regressions"].items():
        line = f"  {key:<48} {row['caught']:>4}/{row['runs']:<4}"
        if "candidate_calls" in row:
            c, f, m = row["candidate_calls"], row["expected_failures"], row["at_minutes"]
            line += (
                f" calls {c['median']:>9,.0f} / {c['p99']:>9,.0f} / {c['max']:>9,.0f}"
                f"   failures {f['median']:>6,.0f} / {f['p99']:>6,.0f} / {f['max']:>6,.0f}"
                f"   minutes {m['median']:>6,.0f} / {m['p99']:>6,.0f} / {m['max']:>6,.0f}"
            )
        lines.append(line)
    issue = fig["issue_seed_004"]
    lines.append(
        f"the issue's seed-004 run: {issue['rolled_back']} rollbacks in {issue['runs']} runs "
        f"({', '.join(issue['states'])})"
    )
    return lines


def run(args: argparse.Namespace) -> dict[str, Any]:
    jobs = clean_jobs(args.quick) + regression_jobs(args.quick) + issue_jobs(args.quick)
    # the longest first, so the pool does not end on one long run
    jobs.sort(key=lambda j: -(j.max_seconds or j.minutes * 60 * 1.5) / j.interval)
    workers = args.workers or os.cpu_count() or 1
    say(f"verdicts: {len(jobs):,} simulated rollouts on {workers} processes ...")
    t = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(run_job, jobs, chunksize=4))
    fig = summarise(results)
    fig["meta"] = {
        "jobs": len(jobs),
        "workers": workers,
        "seconds": round(time.perf_counter() - t, 1),
        "quick": args.quick,
    }
    fig["goals"] = {
        "equal_sides_without_rollback": (fig["equal_sides"]["false_rollback_rate"] or 0)
        <= 1 - GOAL_CLEAN,
        "regressions_caught": all(
            row["caught"] >= GOAL_CAUGHT * row["runs"] for row in fig["regressions"].values()
        ),
        "issue_run_not_rolled_back": fig["issue_seed_004"]["rolled_back"] == 0,
    }
    for line in report(fig):
        say(line)
    say(f"({fig['meta']['seconds']} s; goals met: {all(fig['goals'].values())})")
    return fig


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/verdicts.py",
        description="False rollbacks and detection delays over the issue 14 grid.",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: fewer seeds, no 7-30 d")
    p.add_argument("--workers", type=int, help="processes (default: every CPU)")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return harness.bench_main("bench/verdicts.py", parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())

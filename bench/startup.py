"""switchover CLI start-up benchmark: ``--help`` and ``status`` against ``import typer``.

Run from the repository root::

    .venv/bin/python bench/startup.py              # 15 runs of each, about 20 s
    .venv/bin/python bench/startup.py --quick      # 5 runs of each
    .venv/bin/python bench/startup.py --json out.json

``bench/run.py`` runs this too (``--no-startup`` skips it), its figures under "startup".

Each figure is the median wall time of a fresh process, spawn to exit, of:

1. ``python -c pass``: the interpreter alone (the floor);
2. ``python -c "import typer"``: the peer, what any Typer CLI pays before its own code;
3. ``switchover --help``;
4. ``switchover --db sqlite:///… status voice_v2`` on a fresh SQLite store (made with
   ``switchover init`` and ``switchover migration create voice_v2 --features stt``).

The subjects run interleaved, one run each per round, after one warm-up round, so load
that drifts during the run skews them alike. Bytecode is cached (in a temporary
``PYTHONPYCACHEPREFIX``) as it is for an installed package, even when the environment
sets ``PYTHONDONTWRITEBYTECODE``. Last, one more run of each CLI subject reports which
heavy libraries it loaded (``sys.modules``), the thing to look at when a figure grows.

Goals (informational): ``--help`` under 0.3 s and ``status`` under 0.6 s on an idle
machine. Exit status: 0 when the run completed (a missed goal is informational), 2 on
an error.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness
import httpload

GOAL_HELP_S = 0.3
GOAL_STATUS_S = 0.6
HEAVY = (
    "alembic",
    "cryptography",
    "fastapi",
    "httpx",
    "numpy",
    "pydantic",
    "scipy",
    "sqlalchemy",
    "switchover.bootstrap",
    "switchover.sdk",
    "uvicorn",
    "yaml",
)
MODULES = """
import json, runpy, sys
out, script, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
sys.argv = [script, *argv]
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit:
    pass
with open(out, "w") as f:
    json.dump(sorted(sys.modules), f)
"""
say = harness.say


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/startup.py", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="5 runs of each instead of 15")
    p.add_argument("--runs", type=int, help="runs of each subject (default 15; quick 5)")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    p.add_argument("--cli", help="switchover executable (default: the venv's)")
    args = p.parse_args(argv)
    if args.runs is None:
        args.runs = 5 if args.quick else 15
    if args.runs < 1:
        p.error("--runs must be at least 1")
    return args


def _env(pycache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHOVER_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["COLUMNS"] = "120"
    return env


def _wall(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=False)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {done.returncode}: {done.stderr!r}")
    return took


def _heavy_loaded(cli: Path, argv: list[str], env: dict[str, str], cwd: Path) -> list[str]:
    out = cwd / "modules.json"
    cmd = [sys.executable, "-c", MODULES, str(out), str(cli), *argv]
    subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, check=True)
    loaded = set(json.loads(out.read_text()))
    return [name for name in HEAVY if name in loaded]


def run(args: argparse.Namespace) -> dict[str, Any]:
    cli = Path(args.cli) if args.cli else httpload.default_cli()
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="switchover-startup-") as tmp:
        workdir = Path(tmp)
        env = _env(workdir / "pycache")
        db = f"sqlite:///{workdir / 'store.db'}"
        for setup in (["init"], ["migration", "create", "voice_v2", "--features", "stt"]):
            _wall([str(cli), "--db", db, *setup], env, workdir)
        subjects: dict[str, list[str]] = {
            "python": [python, "-c", "pass"],
            "import_typer": [python, "-c", "import typer"],
            "help": [str(cli), "--help"],
            "status": [str(cli), "--db", db, "status", "voice_v2"],
        }
        labels = {
            "python": "python -c pass",
            "import_typer": 'python -c "import typer"',
            "help": "switchover --help",
            "status": "switchover status voice_v2 (SQLite)",
        }
        say(
            f"switchover CLI start-up: median of {args.runs} fresh processes each, "
            f"interleaved ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})"
        )
        for cmd in subjects.values():  # warm-up: bytecode cache, page cache
            _wall(cmd, env, workdir)
        times: dict[str, list[float]] = {name: [] for name in subjects}
        for _ in range(args.runs):
            for name, cmd in subjects.items():
                times[name].append(_wall(cmd, env, workdir))
        loaded = {
            "help": _heavy_loaded(cli, ["--help"], env, workdir),
            "status": _heavy_loaded(cli, ["--db", db, "status", "voice_v2"], env, workdir),
        }
    load_after = os.getloadavg()[0]
    seconds = {
        name: {
            "median": round(statistics.median(ts), 4),
            "min": round(min(ts), 4),
            "max": round(max(ts), 4),
            "runs": len(ts),
        }
        for name, ts in times.items()
    }
    typer_s = seconds["import_typer"]["median"]
    ratios = {
        f"{name}_over_import_typer": round(seconds[name]["median"] / typer_s, 2)
        for name in ("python", "help", "status")
    }
    for name, label in labels.items():
        s = seconds[name]
        line = f"  {label:<38} median {s['median'] * 1000:7.1f} ms   min {s['min'] * 1000:7.1f} ms"
        if name != "import_typer":
            line += f"   {ratios[f'{name}_over_import_typer']:5.1f}x import typer"
        say(line)
    for name, mods in loaded.items():
        say(f"  heavy libraries {labels[name]} loads: {', '.join(mods) or 'none'}")
    goals = [
        {
            "goal": f"switchover --help < {GOAL_HELP_S:g} s",
            "value": f"{seconds['help']['median']:.3f} s",
            "pass": seconds["help"]["median"] < GOAL_HELP_S,
        },
        {
            "goal": f"switchover status (SQLite) < {GOAL_STATUS_S:g} s",
            "value": f"{seconds['status']['median']:.3f} s",
            "pass": seconds["status"]["median"] < GOAL_STATUS_S,
        },
    ]
    for g in goals:
        say(f"    {g['goal']:<45} {g['value']:>10}   {'PASS' if g['pass'] else 'MISS'}")
    if load_after > 0.5 * (os.cpu_count() or 1):
        say(f"  load average {load_after:.2f}: the machine was busy, absolute figures are noisy")
    return {
        "meta": {
            "runs": args.runs,
            "quick": args.quick,
            "cpus": os.cpu_count(),
            "load_average_1min_after": load_after,
            "bytecode": "cached (temporary PYTHONPYCACHEPREFIX)",
            "python": sys.version.split()[0],
            "typer": harness.version_of("typer"),
        },
        "seconds": seconds,
        "ratios": ratios,
        "heavy_loaded": loaded,
        "goals": goals,
    }


def main(argv: list[str] | None = None) -> int:
    return harness.bench_main("start-up benchmark", parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())

"""switchover OpenFeature benchmark: OFREP on loopback beside ``/v1/decide``, and the
in-process provider beside ``decide()``.

Run from the repository root::

    .venv/bin/python bench/ofrep.py              # about 30 s
    .venv/bin/python bench/ofrep.py --quick      # about 10 s
    .venv/bin/python bench/ofrep.py --json out.json

``bench/run.py`` runs this too (``--no-ofrep`` skips it), under "ofrep" in the JSON.

1. HTTP, a real ``switchover serve`` on 127.0.0.1 (migration ``voice_v2``, 25 % of
   ``stt``), the closed-loop load generator of ``bench/httpload.py`` (16 keep-alive
   connections): ``POST /v1/decide`` with one context, ``POST
   /ofrep/v1/evaluate/flags/voice_v2.stt`` (one OFREP evaluation) and ``POST
   /ofrep/v1/evaluate/flags`` (bulk: the 3 flags of the store per request), in three
   interleaved rounds of equal length. Evaluations per second and p99 latency (the
   median round's); the ratios are OFREP over ``/v1/decide`` in the same run. The OFREP
   answers are first checked against the Python SDK on 500 keys.
2. In process: ``SwitchoverProvider`` through the OpenFeature SDK's client
   (``get_boolean_value``) and the provider's ``resolve_boolean_details`` alone, against
   ``MigrationHandle.decide()`` on the same snapshot, timed interleaved (``harness``).

Exit status: 0 when the run completed, 1 when OFREP disagrees with the SDK, 2 on an error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

import harness
import httpload

MIGRATION = "voice_v2"
FLAG = "voice_v2.stt"
PERCENTAGE = 25
ROUNDS = 3
say = harness.say


def _store(workdir: Path) -> tuple[str, str]:
    from switchover.bootstrap import bootstrap
    from switchover.commands import CreateMigration, SetFeature, SetPercentage, handle
    from switchover.settings import Settings

    db = f"sqlite:///{workdir / 'store.db'}"
    app = bootstrap(Settings(database_url=db), migrate=True)
    try:
        handle(app, CreateMigration(migration=MIGRATION, features=("stt", "tts"), actor="bench"))
        handle(app, SetFeature(migration=MIGRATION, feature="stt", enabled=True, actor="bench"))
        handle(app, SetPercentage(migration=MIGRATION, percentage=PERCENTAGE, actor="bench"))
        return db, app.tokens.create("bench", "viewer", actor="bench")
    finally:
        app.close()


def _requests(port: int, token: str, path: str, bodies: Sequence[Any]) -> list[bytes]:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\n"
    )
    out = []
    for body in bodies:
        raw = json.dumps(body, separators=(",", ":")).encode()
        out.append(f"{head}Content-Length: {len(raw)}\r\n\r\n".encode() + raw)
    return out


def _check(base: str, token: str, db: str, keys: Sequence[str]) -> int:
    """OFREP answers that differ from the Python SDK's decisions."""
    from switchover import connect

    with connect(db, background=False) as client, httpx.Client(timeout=10) as http:
        handle = client.migration(MIGRATION)
        wrong = 0
        for key in keys:
            r = http.post(
                f"{base}/ofrep/v1/evaluate/flags/{FLAG}",
                json={"context": {"targetingKey": key}},
                headers={"Authorization": f"Bearer {token}"},
            )
            wrong += r.json().get("value") is not handle.decide("stt", {"user_id": key}).candidate
        return wrong


def _http(args: argparse.Namespace, workdir: Path, keys: list[str]) -> dict[str, Any]:
    db, token = _store(workdir)
    server = httpload.start_server(httpload.default_cli(), db, workdir, extra=["--no-controller"])
    try:
        port, base = server.port, server.base_url
        mismatches = _check(base, token, db, keys[:500])
        runs = {
            "decide": (
                _requests(
                    port,
                    token,
                    "/v1/decide",
                    [
                        {"migration": MIGRATION, "feature": "stt", "contexts": [{"user_id": k}]}
                        for k in keys
                    ],
                ),
                1,
            ),
            "ofrep_single": (
                _requests(
                    port,
                    token,
                    f"/ofrep/v1/evaluate/flags/{FLAG}",
                    [{"context": {"targetingKey": k}} for k in keys],
                ),
                1,
            ),
            "ofrep_bulk": (
                _requests(
                    port,
                    token,
                    "/ofrep/v1/evaluate/flags",
                    [{"context": {"targetingKey": k}} for k in keys],
                ),
                3,
            ),
        }
        out: dict[str, Any] = {"mismatches_with_sdk": mismatches, "concurrency": args.concurrency}
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
        for _ in range(ROUNDS):  # interleaved, so load drifting on a shared machine hits all
            for name, (requests, per_request) in runs.items():
                rounds[name].append(
                    httpload.run_load(
                        port,
                        requests,
                        per_request,
                        args.concurrency,
                        args.warmup,
                        args.duration / ROUNDS,
                    ).to_dict()
                )
        for name, results in rounds.items():
            secs = sum(r["duration_s"] for r in results)
            result = {
                "requests": sum(r["requests"] for r in results),
                "errors": sum(r["errors"] for r in results),
                "requests_per_s": round(sum(r["requests"] for r in results) / secs, 1),
                "evaluations_per_s": round(
                    sum(r["decisions_per_s"] * r["duration_s"] for r in results) / secs, 1
                ),
                "p99_ms": sorted(r["p99_ms"] for r in results)[len(results) // 2],
                "first_error": next((r["first_error"] for r in results if r["first_error"]), None),
            }
            out[name] = result
            say(
                f"  {name:<13} {result['evaluations_per_s']:>9,.0f} evaluations/s  "
                f"{result['requests_per_s']:>8,.0f} req/s  p99 {result['p99_ms']:.2f} ms"
                + (
                    f"  ({result['errors']} errors: {result['first_error']})"
                    if result["errors"]
                    else ""
                )
            )
        decide = out["decide"]
        for name in ("ofrep_single", "ofrep_bulk"):
            out[f"{name}_vs_decide"] = {
                "evaluations_per_s": round(
                    out[name]["evaluations_per_s"] / decide["evaluations_per_s"], 3
                ),
                "p99": round(out[name]["p99_ms"] / decide["p99_ms"], 3),
            }
            ratio = out[f"{name}_vs_decide"]
            say(
                f"  {name} / decide: {ratio['evaluations_per_s']:.2f}x the evaluations per "
                f"second, {ratio['p99']:.2f}x the p99"
            )
        say(f"  OFREP answers that differ from the SDK (500 keys): {mismatches}")
        return out
    finally:
        server.stop()


def _in_process(args: argparse.Namespace, keys: list[str]) -> dict[str, Any]:
    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext

    from switchover.core.migration import Migration
    from switchover.openfeature import SwitchoverProvider
    from switchover.sdk.backends.memory import MemoryBackend
    from switchover.sdk.client import Client

    migration = Migration(MIGRATION, percentage=PERCENTAGE, features={"stt": True, "tts": False})
    client = Client(MemoryBackend([migration]), background=False)
    provider = SwitchoverProvider(client, check_interval=None)
    api.set_provider_and_wait(provider, domain="bench")
    try:
        of = api.get_client("bench")
        handle = client.migration(MIGRATION)
        contexts = [{"user_id": k} for k in keys]
        of_contexts = [EvaluationContext(k) for k in keys]

        def decide(chunk: Sequence[Any]) -> None:
            for c in chunk:
                handle.decide("stt", c)

        def resolve(chunk: Sequence[Any]) -> None:
            for c in chunk:
                provider.resolve_boolean_details(FLAG, False, c)

        def client_value(chunk: Sequence[Any]) -> None:
            for c in chunk:
                of.get_boolean_value(FLAG, False, c)

        size = 1000
        schedule = [
            ("decide", decide, harness.chunked(contexts, size)),
            ("provider_resolve", resolve, harness.chunked(of_contexts, size)),
            ("openfeature_client", client_value, harness.chunked(of_contexts, size)),
        ]
        rounds = max(5, len(keys) // size)
        timings = asyncio.run(harness.time_interleaved(schedule, rounds))
        base = timings["decide"].median_ns
        out: dict[str, Any] = {}
        for name, t in timings.items():
            out[name] = {"median_ns": round(t.median_ns, 1), "p99_ns": round(t.p99_ns, 1)}
            if name != "decide":
                out[name]["vs_decide"] = round(t.median_ns / base, 2)
            say(
                f"  {name:<19} {t.median_ns / 1000:7.2f} us per evaluation"
                + ("" if name == "decide" else f"  ({t.median_ns / base:.1f}x decide())")
            )
        return out
    finally:
        api.clear_providers()
        client.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    keys = harness.make_keys(5_000 if args.quick else 20_000, 20261130)
    say("OpenFeature benchmark: OFREP on loopback vs /v1/decide, the provider vs decide()")
    fig: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="switchover-ofrep-") as tmp:
        try:
            fig["http"] = _http(args, Path(tmp), keys)
        except httpload.Skip as exc:
            say(f"  HTTP skipped: {exc}")
            fig["http"] = {"skipped": str(exc)}
    say("in process (median of per-batch means, interleaved, GC off)")
    fig["in_process"] = _in_process(args, keys)
    return fig


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="shorter runs, fewer keys")
    p.add_argument("--json", help="write the figures to this file")
    p.add_argument("--concurrency", type=int, default=16, help="HTTP connections (16)")
    args = p.parse_args(argv)
    args.duration = 1.5 if args.quick else 4.0
    args.warmup = 0.3 if args.quick else 0.5
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    code = harness.bench_main("ofrep", parse_args, run, argv)
    if code == 0 and args.json:
        fig = json.loads(Path(args.json).read_text())
        if fig.get("http", {}).get("mismatches_with_sdk"):
            print("ofrep: OFREP disagrees with the SDK", file=sys.stderr)
            return 1
    return code


if __name__ == "__main__":
    sys.exit(main())

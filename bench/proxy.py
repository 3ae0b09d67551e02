"""``switchover proxy``: the latency it adds to a webhook, and one process's requests/s.

Run from the repository root::

    .venv/bin/python bench/proxy.py            # 3 rounds of 4 s per path at 500 req/s
    .venv/bin/python bench/proxy.py --quick    # 2 rounds of 1.5 s
    .venv/bin/python bench/proxy.py --json out.json

Three paths to one upstream (a minimal ASGI app under uvicorn, its own process), each
loaded open-loop at ``--rate`` requests/s on loopback with a small JSON webhook body:

* ``direct``: the client calls the upstream;
* ``switchover``: through ``switchover proxy`` (its own process; SQLite store, a
  migration at 50 %, key ``json:contact_id``, HMAC-SHA256 signature checked, every
  request recorded), with legacy and candidate both pointing at the upstream;
* ``passthrough``: through a minimal proxy measured in the same run: an ASGI app under
  uvicorn that forwards with one pooled ``httpx.AsyncClient`` and nothing else.

The paths are timed interleaved, round after round, so a machine whose load drifts
skews them alike. Added latency = the path's percentile minus ``direct``'s. Then each
proxy's requests/s in a closed loop (``--concurrency`` connections). The goal (issue 17):
at most 1 ms added at p99; LiteLLM documents ~3 ms, Portkey under 1 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from harness import percentile, say
from httpload import free_port

HOST = "127.0.0.1"
SECRET = "bench-webhook-secret"
BODY = b'{"contact_id": "%d", "type": "InboundMessage", "message": {"body": "Hi, can I book?"}}'
GOAL_P99_MS = 1.0


# the servers ------------------------------------------------------------------------------


async def _upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    body = b'{"ok":true,"reply":"Sure, what time suits you?"}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _passthrough(upstream: str) -> Any:
    import httpx

    client: dict[str, httpx.AsyncClient] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    client["c"] = httpx.AsyncClient(
                        base_url=upstream, limits=httpx.Limits(max_connections=256)
                    )
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await client["c"].aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        r = await client["c"].request(
            scope["method"],
            scope["path"],
            content=body,
            headers=[(k, v) for k, v in scope["headers"] if k != b"host"],
        )
        await send(
            {
                "type": "http.response.start",
                "status": r.status_code,
                "headers": [
                    (k, v)
                    for k, v in r.headers.raw
                    if k.lower() not in (b"connection", b"transfer-encoding")
                ],
            }
        )
        await send({"type": "http.response.body", "body": r.content})

    return app


def _serve(kind: str, port: int, upstream: str | None) -> None:
    import uvicorn

    app = _upstream if kind == "upstream" else _passthrough(upstream or "")
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


class Proc:
    def __init__(self, name: str, cmd: list[str], port: int, env: dict[str, str]) -> None:
        self.name = name
        self.port = port
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True
        )

    def wait_ready(self, path: str = "/", timeout: float = 60.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.proc.stderr.read()[-500:]}")  # type: ignore[union-attr]
            try:
                httpx.get(f"http://{HOST}:{self.port}{path}", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start in {timeout} s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# the load ---------------------------------------------------------------------------------


def _request(port: int, i: int) -> bytes:
    body = BODY % i
    sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return (
        f"POST /webhooks/ghl HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-Signature: sha256={sig}\r\n\r\n"
    ).encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> int:
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def open_loop(port: int, rate: float, seconds: float, conns: int = 32) -> dict[str, Any]:
    """``rate`` requests/s for ``seconds``; latencies from the scheduled send time."""
    pool: asyncio.Queue[tuple[Any, Any]] = asyncio.Queue()
    for _ in range(conns):
        pool.put_nowait(await asyncio.open_connection(HOST, port))
    reqs = [_request(port, i) for i in range(1000)]
    latencies: list[float] = []
    errors = 0

    async def one(i: int, at: float) -> None:
        nonlocal errors
        conn = await pool.get()
        try:
            status = await _exchange(conn[0], conn[1], reqs[i % len(reqs)])
            if status != 200:
                errors += 1
            latencies.append((time.perf_counter() - at) * 1000.0)
        except Exception:
            errors += 1
            conn = await asyncio.open_connection(HOST, port)
        finally:
            pool.put_nowait(conn)

    tasks = []
    start = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        at = start + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, at)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        _, w = pool.get_nowait()
        w.close()
    return {"latencies": latencies, "errors": errors, "sent": n}


async def closed_loop(port: int, conns: int, seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(HOST, port)
        req = _request(port, 1)
        while time.perf_counter() < stop:
            await _exchange(reader, writer, req)
            done += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conns)))
    return done / (time.perf_counter() - started)


# the run ----------------------------------------------------------------------------------


def _store(workdir: Path) -> str:
    from switchover.bootstrap import bootstrap
    from switchover.settings import Settings
    from switchover.store.engine import create_store_engine
    from switchover.store.schema import upgrade

    url = f"sqlite:///{workdir / 'proxy-bench.db'}"
    engine = create_store_engine(url)
    upgrade(engine)
    engine.dispose()
    app = bootstrap(Settings(database_url=url))
    app.rollout.create("ghl_langgraph", stickiness="contact_id", actor="bench")
    app.rollout.set_percentage("ghl_langgraph", 50, actor="bench")
    app.close()
    return url


def run(args: argparse.Namespace) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHOVER_")}
    env["WEBHOOK_SECRET"] = SECRET
    me = str(Path(__file__).resolve())
    procs: list[Proc] = []
    with tempfile.TemporaryDirectory(prefix="switchover-proxy-bench-") as tmp:
        url = _store(Path(tmp))
        try:
            up = Proc(
                "upstream", [sys.executable, me, "--serve", "upstream", str(free_port())], 0, env
            )
            up.port = int(up.proc.args[-1])  # type: ignore[index]
            procs.append(up)
            up.wait_ready()
            upstream = f"http://{HOST}:{up.port}"
            sw_port = free_port()
            sw = Proc(
                "switchover proxy",
                [
                    sys.executable,
                    "-m",
                    "switchover.cli.main",
                    "--db",
                    url,
                    "proxy",
                    "--migration",
                    "ghl_langgraph",
                    "--legacy",
                    upstream,
                    "--candidate",
                    upstream,
                    "--key",
                    "json:contact_id",
                    "--signature-secret-env",
                    "WEBHOOK_SECRET",
                    "--port",
                    str(sw_port),
                    "--progress-interval",
                    "0",
                ],
                sw_port,
                env,
            )
            procs.append(sw)
            pt_port = free_port()
            pt = Proc(
                "passthrough",
                [sys.executable, me, "--serve", "passthrough", str(pt_port), upstream],
                pt_port,
                env,
            )
            procs.append(pt)
            sw.wait_ready("/_switchover/livez")
            pt.wait_ready()
            paths = {"direct": up.port, "switchover": sw_port, "passthrough": pt_port}
            say(
                f"proxy: {args.rate:g} req/s open loop, {args.rounds} rounds of "
                f"{args.seconds:g} s per path, interleaved"
            )
            for port in paths.values():  # warm-up: connections, pools, caches
                asyncio.run(open_loop(port, args.rate, 0.5))
            samples: dict[str, list[float]] = {p: [] for p in paths}
            errors = dict.fromkeys(paths, 0)
            for r in range(args.rounds):
                for name, port in paths.items():
                    res = asyncio.run(open_loop(port, args.rate, args.seconds))
                    samples[name].extend(res["latencies"])
                    errors[name] += res["errors"]
                say(f"  round {r + 1}/{args.rounds} done")
            out: dict[str, Any] = {"rate": args.rate, "paths": {}}
            for name, values in samples.items():
                values.sort()
                out["paths"][name] = {
                    "requests": len(values),
                    "errors": errors[name],
                    "p50_ms": round(percentile(values, 50), 3),
                    "p99_ms": round(percentile(values, 99), 3),
                }
            direct = out["paths"]["direct"]
            for name in ("switchover", "passthrough"):
                p = out["paths"][name]
                p["added_p50_ms"] = round(p["p50_ms"] - direct["p50_ms"], 3)
                p["added_p99_ms"] = round(p["p99_ms"] - direct["p99_ms"], 3)
            out["throughput"] = {}
            out["cpu_ms_per_request"] = {}
            serving = {"switchover": sw, "passthrough": pt, "direct": up}
            for name in ("switchover", "passthrough", "direct"):
                cpu = psutil.Process(serving[name].proc.pid)
                before = sum(cpu.cpu_times()[:2])
                started = time.perf_counter()
                rate = asyncio.run(closed_loop(paths[name], args.concurrency, args.seconds))
                served = rate * (time.perf_counter() - started)
                used = sum(cpu.cpu_times()[:2]) - before
                out["throughput"][name] = round(rate)
                out["cpu_ms_per_request"][name] = round(used * 1000 / max(1.0, served), 3)
        finally:
            for p in reversed(procs):
                p.stop()
    sw_, pt_ = out["paths"]["switchover"], out["paths"]["passthrough"]
    out["ratios"] = {
        "added_p99_switchover_over_passthrough": round(sw_["added_p99_ms"] / pt_["added_p99_ms"], 2)
        if pt_["added_p99_ms"] > 0
        else None,
        "throughput_switchover_over_passthrough": round(
            out["throughput"]["switchover"] / max(1, out["throughput"]["passthrough"]), 2
        ),
    }
    out["goal"] = {
        "goal": f"added p99 <= {GOAL_P99_MS} ms at {args.rate:g} req/s",
        "value": sw_["added_p99_ms"],
        "pass": sw_["added_p99_ms"] <= GOAL_P99_MS,
    }
    say(
        f"  {'path':<12} {'p50 ms':>8} {'p99 ms':>8} {'+p50 ms':>8} {'+p99 ms':>8} "
        f"{'errors':>7} {'req/s (c=' + str(args.concurrency) + ')':>14}"
    )
    for name, p in out["paths"].items():
        say(
            f"  {name:<12} {p['p50_ms']:>8.2f} {p['p99_ms']:>8.2f} "
            f"{p.get('added_p50_ms', 0):>8.2f} {p.get('added_p99_ms', 0):>8.2f} "
            f"{p['errors']:>7} {out['throughput'][name]:>14,}"
        )
    cpu = out["cpu_ms_per_request"]
    say(
        f"  CPU per request of the serving process (closed loop): switchover "
        f"{cpu['switchover']:.3f} ms, passthrough {cpu['passthrough']:.3f} ms, "
        f"upstream alone {cpu['direct']:.3f} ms"
    )
    say(
        f"  goal: {out['goal']['goal']}: {out['goal']['value']} ms "
        f"{'PASS' if out['goal']['pass'] else 'MISS'}; load average {os.getloadavg()[0]:.2f}"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/proxy.py", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2 rounds of 1.5 s per path")
    p.add_argument("--rate", type=float, default=500.0, help="requests/s (500)")
    p.add_argument("--rounds", type=int, help="rounds per path (3; quick 2)")
    p.add_argument("--seconds", type=float, help="seconds per path and round (4; quick 1.5)")
    p.add_argument("--concurrency", type=int, default=16, help="closed-loop connections (16)")
    p.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    p.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        kind, port, *rest = args.serve
        _serve(kind, int(port), rest[0] if rest else None)
        return 0
    args.rounds = args.rounds or (2 if args.quick else 3)
    args.seconds = args.seconds or (1.5 if args.quick else 4.0)
    out = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

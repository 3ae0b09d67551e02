"""``POST /v1/decide`` on loopback: start ``switchover serve``, load it, stop it.

The contract measured (the endpoint is defined by the server, not here)::

    switchover --db URL token create bench --role viewer --json   -> {"token": ...}
    switchover --db URL serve --host 127.0.0.1 --port PORT --no-demo
    GET  /healthz                                                 -> 200
    POST /v1/decide  Authorization: Bearer TOKEN
         {"migration": M, "feature": F, "contexts": [{"user_id": "42"}, ...]}
      -> 200 {"decisions": [{"side": "candidate", "reason": "bucket_in", ...}], "version": N}

The load generator is a closed loop: ``concurrency`` asyncio workers, each with one
keep-alive HTTP/1.1 connection, send the next request as soon as the previous answer
arrived, for a fixed duration after a short warm-up. Requests are pre-encoded and the
client speaks raw HTTP/1.1 over asyncio streams, so the client costs a few tens of
microseconds per request and most of the CPU is left to the server (both share this
machine's cores). Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness import percentile

HOST = "127.0.0.1"


class Skip(Exception):
    """The HTTP section cannot run; the message says why."""


# server lifecycle -----------------------------------------------------------------------


def create_token(cli: Path, db_url: str) -> str:
    cmd = [str(cli), "--db", db_url, "token", "create", "bench", "--role", "viewer", "--json"]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Skip(f"`switchover token create` could not run: {exc}") from exc
    if res.returncode != 0:
        raise Skip(f"`switchover token create` exited {res.returncode}: {_tail(res.stderr)}")
    data = _find_json(res.stdout)
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise Skip(f"`switchover token create --json` printed no token: {_tail(res.stdout)}")
    return token


def _find_json(text: str) -> Any:
    text = text.strip()
    with contextlib.suppress(ValueError):
        return json.loads(text)
    start = text.find("{")
    if start >= 0:
        with contextlib.suppress(ValueError):
            return json.loads(text[start : text.rfind("}") + 1])
    return None


def _tail(text: str, limit: int = 300) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else "(no output)")[:limit]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    _log: Any = field(repr=False, default=None)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self) -> str:
        try:
            return _tail(self.log_path.read_text(errors="replace"))
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()


def start_server(
    cli: Path, db_url: str, workdir: Path, timeout: float = 30.0, *, extra: Sequence[str] = ()
) -> Server:
    """``switchover serve --no-demo [extra…]`` on a free loopback port, once /healthz answers."""
    port = free_port()
    log_path = workdir / "server.log"
    log = log_path.open("wb")
    cmd = [str(cli), "--db", db_url, "serve", "--host", HOST, "--port", str(port), "--no-demo"]
    cmd += extra
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=server_env(),
        )
    except OSError as exc:
        log.close()
        raise Skip(f"`switchover serve` could not start: {exc}") from exc
    server = Server(proc, port, log_path, log)
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as http:
        while True:
            code = proc.poll()
            if code is not None:
                server.stop()
                raise Skip(f"`switchover serve` exited {code}: {server.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if http.get(f"{server.base_url}/healthz").status_code == 200:
                    return server
            if time.monotonic() > deadline:
                server.stop()
                raise Skip(f"GET /healthz not 200 within {timeout:.0f} s: {server.log_tail()}")
            time.sleep(0.1)


# one checked request ------------------------------------------------------------------


def check_decisions(
    base_url: str,
    token: str,
    migration: str,
    feature: str,
    keys: Sequence[str],
    expected: Sequence[bool],
    batch: int = 100,
) -> list[tuple[str, str, bool]]:
    """Ask the server about ``keys``; return the (key, server side, sdk) that disagree.

    Raises Skip when the endpoint is missing or its answer does not follow the contract.
    """
    mismatches: list[tuple[str, str, bool]] = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10.0) as http:
        for i in range(0, len(keys), batch):
            part = keys[i : i + batch]
            body = {
                "migration": migration,
                "feature": feature,
                "contexts": [{"user_id": k} for k in part],
            }
            r = http.post("/v1/decide", json=body)
            if r.status_code == 404:
                raise Skip("POST /v1/decide answered 404 (endpoint not there yet)")
            if r.status_code != 200:
                raise Skip(f"POST /v1/decide answered {r.status_code}: {r.text[:200]}")
            try:
                decisions = r.json()["decisions"]
                sides = [d["side"] for d in decisions]
            except (ValueError, KeyError, TypeError) as exc:
                raise Skip(f"POST /v1/decide answer is not {{'decisions': [...]}}: {exc}") from exc
            if len(sides) != len(part):
                raise Skip(f"POST /v1/decide gave {len(sides)} decisions for {len(part)} contexts")
            for key, side, want in zip(part, sides, expected[i : i + batch], strict=True):
                if side not in ("legacy", "candidate"):
                    raise Skip(f"POST /v1/decide returned side {side!r}")
                if (side == "candidate") != want:
                    mismatches.append((key, side, want))
    return mismatches


# load generator -----------------------------------------------------------------------


def build_requests(
    port: int, token: str, migration: str, feature: str, keys: Sequence[str], per_request: int
) -> list[bytes]:
    """Pre-encoded HTTP/1.1 requests, ``per_request`` contexts each, cycling over keys."""
    out = []
    head = (
        f"POST /v1/decide HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        "Accept: application/json\r\n"
    )
    for i in range(0, len(keys) - per_request + 1, per_request):
        body = json.dumps(
            {
                "migration": migration,
                "feature": feature,
                "contexts": [{"user_id": k} for k in keys[i : i + per_request]],
            },
            separators=(",", ":"),
        ).encode()
        out.append(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return out


class _Conn:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> int:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(raw)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = -1
        chunked = False
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        if chunked:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length >= 0:
            await self.reader.readexactly(length)
        else:
            await self.reader.read()
            close = True
        if close:
            await self.close()
        return status


@dataclass
class LoadResult:
    contexts_per_request: int
    concurrency: int
    duration_s: float
    requests: int
    errors: int
    requests_per_s: float
    decisions_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    client_cpu: float
    """CPU seconds the load generator used per wall second (1.0 = one full core)."""
    first_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "contexts_per_request": self.contexts_per_request,
            "concurrency": self.concurrency,
            "duration_s": round(self.duration_s, 3),
            "requests": self.requests,
            "errors": self.errors,
            "requests_per_s": round(self.requests_per_s, 1),
            "decisions_per_s": round(self.decisions_per_s, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "max_ms": round(self.max_ms, 3),
            "client_cpu_cores": round(self.client_cpu, 2),
            "first_error": self.first_error,
        }


async def _load(
    port: int,
    requests: Sequence[bytes],
    per_request: int,
    concurrency: int,
    warmup_s: float,
    duration_s: float,
) -> LoadResult:
    clock = time.perf_counter_ns
    cpu0 = time.process_time()
    latencies: list[int] = []
    errors = 0
    first_error: str | None = None
    start = clock()
    measure_from = start + int(warmup_s * 1e9)
    measure_until = measure_from + int(duration_s * 1e9)
    n = len(requests)

    async def worker(w: int) -> None:
        nonlocal errors, first_error
        conn = _Conn(port)
        i = w * (n // concurrency)
        try:
            while True:
                t0 = clock()
                if t0 >= measure_until:
                    break
                raw = requests[i % n]
                i += 1
                try:
                    status = await conn.request(raw)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    status = -1
                    await conn.close()
                    if first_error is None:
                        first_error = f"{type(exc).__name__}: {exc}"
                t1 = clock()
                if t0 < measure_from:
                    continue
                if status == 200:
                    latencies.append(t1 - t0)
                else:
                    errors += 1
                    if first_error is None:
                        first_error = f"HTTP {status}"
        finally:
            await conn.close()

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    end = clock()
    cpu = time.process_time() - cpu0
    elapsed = max(end, measure_until) - measure_from
    latencies.sort()
    done = len(latencies)
    secs = elapsed / 1e9
    ms = 1e6
    return LoadResult(
        contexts_per_request=per_request,
        concurrency=concurrency,
        duration_s=secs,
        requests=done,
        errors=errors,
        requests_per_s=done / secs,
        decisions_per_s=done * per_request / secs,
        p50_ms=percentile(latencies, 50) / ms if done else float("nan"),
        p99_ms=percentile(latencies, 99) / ms if done else float("nan"),
        max_ms=latencies[-1] / ms if done else float("nan"),
        client_cpu=cpu / ((end - start) / 1e9),
        first_error=first_error,
    )


def run_load(
    port: int,
    requests: Sequence[bytes],
    per_request: int,
    concurrency: int,
    warmup_s: float,
    duration_s: float,
) -> LoadResult:
    return asyncio.run(_load(port, requests, per_request, concurrency, warmup_s, duration_s))


def default_cli() -> Path:
    """The ``switchover`` script next to the running interpreter (the project's venv)."""
    import sys

    here = Path(sys.executable).parent / "switchover"
    if here.exists():
        return here
    return Path(__file__).resolve().parent.parent / ".venv" / "bin" / "switchover"


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env

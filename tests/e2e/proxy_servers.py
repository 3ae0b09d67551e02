"""Real servers on loopback for the proxy's tests: a legacy and a candidate webhook
service (Starlette under uvicorn, each on a free port, in a thread of its own) and the
proxy itself, served by uvicorn in front of them."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from support.serving import free_port
from switchover.proxy import ProxyApp, ProxyConfig, parse
from switchover.sdk.client import Client, connect
from switchover.store.engine import create_store_engine
from switchover.store.schema import upgrade

NAME = "ghl_langgraph"
SECRET = "whsec-test-0123456789"


class ThreadServer:
    """``app`` under uvicorn on a free loopback port, in a daemon thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive(), "the server thread died at start-up"
            assert time.monotonic() < deadline, "the server did not start in 10 s"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@dataclass
class Seen:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    """One side's service. Tests change ``status``, ``delay`` and ``outcome`` as they go."""

    name: str
    status: int = 200
    delay: float = 0.0
    outcome: str | None = None
    body: dict[str, Any] | None = None
    """Answer this instead of the default echo."""
    seen: list[Seen] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        """As new: the next test starts from a service that answers 200 at once."""
        self.status, self.delay, self.outcome, self.body = 200, 0.0, None, None
        self.seen.clear()
        self.chunks.clear()
        self.release = threading.Event()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/stream", self.stream, methods=["GET"]),
                Route("/upload", self.upload, methods=["POST"]),
                Route("/{rest:path}", self.handle, methods=["GET", "POST", "PUT", "HEAD"]),
            ]
        )

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.seen.append(
            Seen(
                request.method,
                request.url.path,
                request.url.query,
                {k.lower(): v for k, v in request.headers.items()},
                body,
            )
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        headers = {"X-Switchover-Outcome": self.outcome} if self.outcome else {}
        headers["Connection"] = "keep-alive, X-Upstream-Hop"
        headers["X-Upstream-Hop"] = "1"
        payload = self.body if self.body is not None else {"side": self.name, "bytes": len(body)}
        return JSONResponse(payload, status_code=self.status, headers=headers)

    async def stream(self, request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first;"
            await asyncio.to_thread(self.release.wait, 5)
            yield b"second;"
            yield b"last"

        return StreamingResponse(chunks(), media_type="text/plain")

    async def upload(self, request: Request) -> Response:
        async for chunk in request.stream():
            if chunk:
                self.chunks.append(chunk)
        return JSONResponse({"side": self.name, "chunks": len(self.chunks)})


@contextmanager
def upstreams() -> Iterator[tuple[Upstream, Upstream, str, str]]:
    legacy, candidate = Upstream("legacy"), Upstream("candidate")
    with ThreadServer(legacy.app()) as ls, ThreadServer(candidate.app()) as cs:
        yield legacy, candidate, ls.url, cs.url


_TEMPLATE: dict[str, Path] = {}


def fresh_store(directory: Path) -> str:
    """A migrated, empty SQLite store in ``directory``: a copy of one migrated once per
    test session (Alembic takes the better part of a second each time)."""
    template = _TEMPLATE.get("db")
    if template is None or not template.exists():
        template = Path(tempfile.mkdtemp(prefix="switchover-proxy-tests-")) / "template.db"
        engine = create_store_engine(f"sqlite:///{template}")
        upgrade(engine)
        engine.dispose()
        _TEMPLATE["db"] = template
    target = directory / "store.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


def config(legacy_url: str, candidate_url: str, **extra: Any) -> ProxyConfig:
    data = {
        "migration": NAME,
        "legacy": legacy_url,
        "candidate": candidate_url,
        "key": "json:contact_id",
        **extra,
    }
    return parse(data, env={"WEBHOOK_SECRET": SECRET})


@contextmanager
def proxying(
    cfg: ProxyConfig, db_url: str, token: str | None = None
) -> Iterator[tuple[str, ProxyApp, Client]]:
    """The proxy on a free port, deciding from the store (or the switchover server) at
    ``db_url``; records are flushed by the test (``client.recorder.flush()``)."""
    client = connect(db_url, token=token, refresh_interval=0.1, flush_interval=3600)
    app = ProxyApp(cfg, client, progress_interval=0)
    try:
        with ThreadServer(app) as server:
            yield server.url, app, client
    finally:
        client.close()


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.02)

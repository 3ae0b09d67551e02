"""A real server on loopback and Debian's Chromium driven by Playwright.

The browser tests skip where Chromium or Playwright is missing, with how to enable
them, unless SWITCHOVER_REQUIRE_BROWSER=1 (set by .ci/run), where they must run.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from switchover.api.app import create_app
from switchover.bootstrap import App, bootstrap
from switchover.core.clock import ManualClock
from switchover.settings import Settings

CHROMIUM = os.environ.get("SWITCHOVER_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("SWITCHOVER_ARTIFACTS", "artifacts")) / "screenshots"


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (make test installs it)"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing: install it with 'sudo apt-get install chromium'"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Module-scoped: Playwright's sync API keeps an event loop running on this thread
    while it is open, and later tests call ``asyncio.run``."""
    why = _missing()
    if why:
        if os.environ.get("SWITCHOVER_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests are required (SWITCHOVER_REQUIRE_BROWSER=1): {why}")
        pytest.skip(f"browser tests skipped: {why}; set SWITCHOVER_REQUIRE_BROWSER=1 to require")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


class LiveServer:
    def __init__(self, app: App) -> None:
        self.app = app
        self.api = create_app(app)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.api, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    """SQLite only: the engines are covered by the HTTP tests; this proves the browser."""
    clock = ManualClock()
    url = f"sqlite:///{tmp_path / 'dash.db'}"
    a = bootstrap(Settings(database_url=url), clock=clock, migrate=True)
    try:
        with LiveServer(a) as server:
            yield server
    finally:
        a.close()


@pytest.fixture
def shots() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS

"""Running the proxy under uvicorn, with a graceful drain on SIGTERM.

The first SIGTERM (or Ctrl-C) makes readiness answer 503 at once; after ``drain.delay``
seconds (time for a load balancer to notice) the listener closes, requests in flight
have ``drain.timeout`` seconds to finish, shadow copies end, the recorded calls are
flushed, and the process exits 0. A second Ctrl-C stops at once.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from types import FrameType

import uvicorn

from switchover.proxy.app import ProxyApp


class JsonLines(logging.Formatter):
    """Every log line as one JSON object; the proxy's own lines are JSON already."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        head = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if message.startswith("{"):
            try:
                return json.dumps({**head, **json.loads(message)})
            except ValueError:
                pass
        if record.exc_info:
            head["exception"] = record.exc_info[0].__name__ if record.exc_info[0] else ""
        return json.dumps({**head, "message": message})


def configure_logging(level: str = "info") -> dict[str, object]:
    """JSON lines on stderr for the proxy, the SDK and uvicorn; uvicorn's log config."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {
            "uvicorn": {"level": "WARNING", "propagate": True},
            "uvicorn.error": {"level": "WARNING", "propagate": True},
            "uvicorn.access": {"level": "WARNING", "propagate": False},
            "httpx": {"level": "WARNING", "propagate": True},
            "httpcore": {"level": "WARNING", "propagate": True},
        },
    }


class ProxyServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: ProxyApp) -> None:
        super().__init__(config)
        self.proxy = app
        self._timer: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.proxy.draining:
            if sig == signal.SIGINT:
                self.force_exit = True
            return
        self.proxy.begin_drain()
        delay = self.proxy.config.drain.delay
        if delay <= 0:
            self.should_exit = True
            return
        self._timer = threading.Timer(delay, self._close)
        self._timer.daemon = True
        self._timer.start()

    def _close(self) -> None:
        self.should_exit = True


def serve(app: ProxyApp, host: str, port: int, log_level: str = "info") -> None:
    """Serve until SIGTERM/SIGINT and the drain; returns normally after a clean drain."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_config=configure_logging(log_level),
        access_log=False,
        server_header=False,  # the upstream's Server and Date pass through, not twice
        date_header=False,
        timeout_graceful_shutdown=int(max(1, app.config.drain.timeout)),
        timeout_keep_alive=75,
    )
    ProxyServer(config, app).run()

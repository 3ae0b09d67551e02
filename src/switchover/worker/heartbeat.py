"""The worker's heartbeat to the registry (``WORKER_HEARTBEAT_INTERVAL`` seconds, 10 by
default, 0: none): name, instance, version, jobs and load, on a daemon thread. A failed
heartbeat is logged once and retried at the next interval; it never touches a call."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from importlib import metadata
from typing import Any

log = logging.getLogger("switchover.worker")


def version() -> str:
    try:
        return metadata.version("switchover")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


def instance_name(worker_name: str) -> str:
    return f"{worker_name}@{socket.gethostname()}:{os.getpid()}"[:200]


class Heartbeat:
    """Sends ``beat()`` (a body) with ``send`` every ``interval`` seconds until stopped."""

    def __init__(
        self,
        send: Callable[[dict[str, Any]], None],
        beat: Callable[[], dict[str, Any]],
        interval: float,
    ) -> None:
        self.send = send
        self.beat = beat
        self.interval = interval
        self.sent = 0
        self.failing = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="switchover-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def once(self) -> bool:
        try:
            self.send(self.beat())
        except Exception as exc:
            if not self.failing:
                log.warning("heartbeat to the registry failed (%s); retrying", exc)
            self.failing = True
            return False
        if self.failing:
            log.info("heartbeat to the registry works again")
        self.failing = False
        self.sent += 1
        return True

    def _run(self) -> None:
        while True:
            self.once()
            if self._stop.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

"""A real ``switchover serve`` in a subprocess, on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any SWITCHOVER_ setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHOVER_")}
    return {**env, **extra}


@contextmanager
def serving(
    db: str, cwd: Path, *args: str, ready: str = "/healthz", timeout: float = 30.0
) -> Iterator[str]:
    """``switchover --db DB serve --port P ARGS…`` until it answers ``ready``; its base URL.

    On the way out it is stopped (SIGTERM) and must not have printed a traceback.
    """
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "switchover.cli.main",
            "--db",
            db,
            "serve",
            "--port",
            str(port),
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=cwd,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(base + ready, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"serve did not answer {ready} in {timeout} s"
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        assert "Traceback" not in (err or ""), err

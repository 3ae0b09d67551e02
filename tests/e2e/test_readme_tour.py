"""The README's five-minute tour runs as written, in order, on a fresh store.

The tour is read from README.md itself: its ``make run PORT=…`` line starts the server
(the command the Makefile's ``run`` target runs) on a port of this test's choosing, and
every other block runs in one shell, as a newcomer would paste them, in a fresh
directory that holds only the checkout's ``.venv`` and ``examples``. Python blocks are
saved to a file and run with the virtual environment's ``python``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)  # the virtual environment the tests run in


def tour_blocks() -> list[tuple[str, str]]:
    """``(language, code)`` of each fenced block of the tour, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## A five-minute tour")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```(\w+)\n(.*?)```", text[start:end], flags=re.S)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tour_dir(tmp_path: Path) -> Path:
    if not (VENV / "bin" / "activate").exists():
        pytest.skip(f"no virtual environment at {VENV}: run the tour test from `make test`")
    (tmp_path / ".venv").symlink_to(VENV)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    return tmp_path


def _env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHOVER_", "VIRTUAL_ENV"))}
    venv_bin = str(VENV / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env["PORT"] = str(port)
    env["SWITCHOVER_ACTOR"] = "tour"
    return env


@pytest.fixture
def server(tour_dir: Path) -> Iterator[tuple[int, list[str]]]:
    blocks = tour_blocks()
    first = blocks[0][1].strip()
    assert re.fullmatch(r"make run PORT=\d+", first), f"the tour must start the server: {first!r}"
    recipe = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "$(BIN)/switchover serve --host $(HOST) --port $(PORT)" in recipe
    port = _port()
    proc = subprocess.Popen(
        [str(VENV / "bin" / "switchover"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tour_dir,
        env=_env(port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    pump = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")))
    pump.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "".join(lines)
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not get ready in 60 s"
            time.sleep(0.2)
        yield port, lines
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        pump.join(timeout=10)


def test_the_tour_runs_as_written(tour_dir: Path, server: tuple[int, list[str]]) -> None:
    port, server_output = server
    script = ["set -euo pipefail"]
    for i, (language, code) in enumerate(tour_blocks()[1:]):
        if language == "sh":
            script.append(code)
            if "/v1/migrations/voice_v2/percentage" in code:  # the last hand-made change
                script.append("echo '--- status by hand'; switchover status voice_v2 --json")
        elif language == "python":
            (tour_dir / f"tour_{i}.py").write_text(code, encoding="utf-8")
            script.append(f"echo '--- tour_{i}.py'; python tour_{i}.py")
        else:
            pytest.fail(f"a tour block in {language!r}: the test runs sh and python only")
    script.append("echo '--- final status'; switchover status voice_v2 --json")
    run = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=tour_dir,
        env=_env(port),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = run.stdout
    assert run.returncode == 0, f"{out[-4000:]}\n{run.stderr[-4000:]}"
    assert "Traceback" not in run.stderr, run.stderr[-4000:]

    # the changes took effect and stayed: resume kept the hand-set 10 % and caching,
    # the HTTP call then set 20 %, and no plan moved them in between
    after = out.split("--- status by hand", 1)[1].lstrip()
    status, _ = json.JSONDecoder().raw_decode(after)  # the JSON right after the marker
    m = status.get("migration", status)
    assert m["enabled"] is True and m["features"]["caching"] is True, status
    assert m["percentage"] == 20, status
    # then seed 004's plan, replacing the demo's, applied its canary at once
    final = json.loads(out.rsplit("--- final status", 1)[1])
    m = final.get("migration", final)
    assert m["percentage"] == 1 and m["features"]["stt"] is True, final
    assert m["features"]["caching"] is False, final
    # the tenant override decided the Python snippet's call
    assert "candidate tenant_allow" in out
    assert "hello from v2" in out
    # the HTTP examples answered with the port chosen, not 8080
    assert '"decisions"' in out and f"127.0.0.1:{port}/docs" in out
    # the agent's key went in from the operator's environment and came back to a worker
    assert "cmgr32z4q000039dudjfah00c" in out
    assert '"llm_api_key":"sk-demo-not-a-real-key"' in out.replace(" ", "")
    # the audit says who resumed, and the plan was replaced by seed 004's
    assert "bob" in out and "voice-v2-rollout" in out
    assert (tour_dir / ".env").read_text().startswith("SWITCHOVER_SECRET_KEY=")
    assert f"http://127.0.0.1:{port}/login?code=" in "".join(server_output)

"""The worker against a real ``switchover serve`` on loopback, and its SIGTERM drain.

Everything a user runs is a subprocess: ``agents import``, ``token create``, ``serve``,
``loadtest``, ``worker start``. The load tests are small (a few seconds, few callers).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from switchover.worker.backend import Backend
from switchover.worker.config_client import ConfigClient, ConfigUnavailable

EXAMPLE = Path(__file__).parents[2] / "examples" / "agents.json"
GREETER = "cmgr32z4q000039dudjfah00c"
SUPPORT = "cmgr3b1xk000139du8h2kq7pz"
SALES = "cmgr3c7pa000239dubv0m1yqe"
RETIRED = "cmgr3d2ze000339du4r5s6t7u"
SECRET = "sk-greeting-e2e-secret-42"
FERNET = "x4Cq2vT0M1c3yS8F4d6Hj8KlM0nP2rT4vX6zA8bC0dE="


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHOVER_")}
    for name in ("BACKEND_URL", "LIVEKIT_URL", "OPENAI_API_KEY", "MAX_CONCURRENCY"):
        base.pop(name, None)
    base.update({"SWITCHOVER_SECRET_KEY": FERNET, "GREETING_OPENAI_API_KEY": SECRET, **extra})
    return base


def cli(*args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchover.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env(**extra),
        cwd=cwd,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(db: str, cwd: Path, *, served_a_config: bool = True, **extra: str) -> Iterator[str]:
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
            "--no-demo",
            "--no-controller",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env(**extra),
        cwd=cwd,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not start in 30 s"
            time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log = proc.stderr.read() if proc.stderr else ""
        assert SECRET not in log  # the access log names agents, never keys
        if served_a_config:
            assert f"runtime config fetched for agent {GREETER}" in log


def test_loadtest_config_client_and_stale_if_error_against_a_real_server(
    db_url: str, tmp_path: Path
) -> None:
    assert cli("--db", db_url, "agents", "import", str(EXAMPLE), cwd=tmp_path).returncode == 0
    made = cli(
        "--db", db_url, "token", "create", "core", "--role", "worker", "--json", cwd=tmp_path
    )
    token = json.loads(made.stdout)["token"]
    viewer = cli(
        "--db", db_url, "token", "create", "eyes", "--role", "viewer", "--json", cwd=tmp_path
    )
    created = cli(
        "--db",
        db_url,
        "migration",
        "create",
        "core_worker",
        "--stickiness",
        "campaign_id",
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    assert (
        cli(
            "--db",
            db_url,
            "rollout",
            "set",
            "core_worker",
            "--percentage",
            "100",
            "--reason",
            "all on the core worker",
            cwd=tmp_path,
        ).returncode
        == 0
    )
    with serving(db_url, tmp_path) as base:
        agents = f"{GREETER},{SUPPORT},{SALES}"
        run = cli(
            "loadtest",
            "--agents",
            agents,
            "--concurrent",
            "2",  # ten calls a caller make the 90 % cache criterion: two callers get there
            "--duration",
            "8",  # soonest on a busy machine too
            "--turn-ms",
            "20",
            "--turns",
            "1",
            "--migration",
            "core_worker",
            "--json",
            cwd=tmp_path,
            BACKEND_URL=base,
            SWITCHOVER_TOKEN=token,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        report = json.loads(run.stdout)
        assert report["passed"] is True and report["total_calls"] >= 20
        assert report["success_rate"] == 1.0 and report["cache_hit_rate"] > 0.9
        assert report["sides"] == {"core_worker": report["total_calls"]}  # 100 %: candidate
        assert report["peak_active_jobs"] <= 2 and report["max_queue_depth"] == 0
        assert {c["criterion"][:12] for c in report["criteria"]} >= {"success rate", "cache hit ra"}

        failing = cli(
            "loadtest",
            "--agents",
            f"{GREETER},{RETIRED}",
            "--concurrent",
            "2",
            "--duration",
            "1",
            "--turn-ms",
            "10",
            cwd=tmp_path,
            BACKEND_URL=base,
            SWITCHOVER_TOKEN=token,
        )
        assert failing.returncode == 1, failing.stdout + failing.stderr
        assert "Load test FAILED" in failing.stdout and "agent_inactive" in failing.stdout
        refused = cli(
            "loadtest",
            "--agents",
            GREETER,
            "--duration",
            "1",
            cwd=tmp_path,
            BACKEND_URL=base,
            SWITCHOVER_TOKEN=json.loads(viewer.stdout)["token"],
        )
        assert refused.returncode == 1  # a viewer token cannot read configs: every call fails
        remote = cli(
            "loadtest",
            "--agents",
            GREETER,
            "--duration",
            "1",
            cwd=tmp_path,
            BACKEND_URL="http://10.1.2.3:8080",
            SWITCHOVER_TOKEN=token,
        )
        assert remote.returncode == 2 and "this machine" in remote.stderr

        backend = Backend(base, token)
        configs = ConfigClient(
            backend.runtime_config, ttl=0, error_backoff=0, env={"CARTESIA_API_KEY": "ck-env"}
        )
        fresh = asyncio.run(configs.get(GREETER, "camp_inbound_reception"))
        assert fresh.source == "fetch" and fresh.config["llm_api_key"] == SECRET
        assert fresh.config["tts_api_key"] == "ck-env" and fresh.config["is_primary"] is True
        assert backend.inbound_route("+14155550100").agent_id == GREETER
    stale = asyncio.run(configs.get(GREETER, "camp_inbound_reception"))  # server gone
    assert (
        stale.source == "stale" and stale.config["system_prompt"] == fresh.config["system_prompt"]
    )
    with pytest.raises(ConfigUnavailable):
        asyncio.run(configs.get(SUPPORT))
    backend.close()


def test_worker_start_reports_and_drains_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "WORKER_NAME=core-e2e\nMAX_CONCURRENCY=7\nOPENAI_API_KEY=sk-from-dotenv-file\n"
    )
    check = cli("worker", "start", "--check", cwd=tmp_path, BACKEND_URL="http://127.0.0.1:9")
    assert check.returncode == 0, check.stderr
    out = check.stdout
    assert "Worker Name: core-e2e" in out and "Max Concurrency: 7 jobs" in out
    assert "OPENAI_API_KEY: SET" in out and "sk-from-dotenv-file" not in out
    assert "Backend not reachable" in out
    bad = cli("worker", "start", "--check", cwd=tmp_path, MAX_CONCURRENCY="lots")
    assert bad.returncode == 2 and "MAX_CONCURRENCY" in bad.stderr
    nolk = cli("worker", "start", cwd=tmp_path, BACKEND_URL="http://127.0.0.1:9")
    assert nolk.returncode == 2 and "LIVEKIT_URL" in nolk.stderr

    proc = subprocess.Popen(
        [sys.executable, "-m", "switchover.cli.main", "worker", "start"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env=env(
            BACKEND_URL="http://127.0.0.1:9",
            LIVEKIT_URL="ws://127.0.0.1:9",
            LIVEKIT_API_KEY="devkey",
            LIVEKIT_API_SECRET="x" * 32,
            PORT="0",
        ),
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while not any("Waiting for calls" in ln for ln in lines):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            lines.append(proc.stdout.readline())
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, "".join(lines) + rest
        assert "Draining" in rest and "Drained in" in rest and "0 cancelled" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_cost_estimate_prints_the_seeds_table(tmp_path: Path) -> None:
    run = cli(
        "worker",
        "cost-estimate",
        "--agents",
        "40",
        "--per-agent",
        "20",
        "--workers",
        "2",
        "--per-worker",
        "60",
        "--json",
        cwd=tmp_path,
    )
    data = json.loads(run.stdout)
    assert (data["before_monthly"], data["after_monthly"], data["saving_pct"]) == (800, 120, 85.0)
    table = cli("worker", "cost-estimate", cwd=tmp_path)
    assert "$800.00" in table.stdout and "$680.00" in table.stdout


def test_loadtest_names_the_cause_when_the_server_cannot_decrypt_keys(
    db_url: str, tmp_path: Path
) -> None:
    """A server started with another SWITCHOVER_SECRET_KEY answers 503 secret_key; the
    load test says so instead of a bare config_unavailable."""
    from switchover.agents.keyring import generate_key

    assert cli("--db", db_url, "agents", "import", str(EXAMPLE), cwd=tmp_path).returncode == 0
    made = cli(
        "--db", db_url, "token", "create", "core", "--role", "worker", "--json", cwd=tmp_path
    )
    token = json.loads(made.stdout)["token"]
    other_key = generate_key()
    with serving(db_url, tmp_path, served_a_config=False, SWITCHOVER_SECRET_KEY=other_key) as base:
        run = cli(
            "loadtest",
            "--agents",
            GREETER,
            "--duration",
            "1",
            "--json",
            cwd=tmp_path,
            BACKEND_URL=base,
            SWITCHOVER_TOKEN=token,
        )
    report = json.loads(run.stdout)
    assert run.returncode == 1 and report["passed"] is False
    assert set(report["error_types"]) == {"config_unavailable:secret_key"}, report

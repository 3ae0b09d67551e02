"""``switchover serve`` as a real server process, talked to over real HTTP."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from switchover.bootstrap import bootstrap
from switchover.settings import Settings


def _switchover() -> list[str]:
    """The installed console script, as a user runs it."""
    script = Path(sys.executable).with_name("switchover")
    if script.exists():
        return [str(script)]
    found = shutil.which("switchover")
    return [found] if found else [sys.executable, "-m", "switchover.cli.main"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHOVER_")}
    env["SWITCHOVER_ACTOR"] = "serve-test"
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, proc: subprocess.Popen[str], base: str) -> None:
        self.proc = proc
        self.base = base
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.pumps = [
            threading.Thread(target=_pump, args=(stream, sink), daemon=True)
            for stream, sink in ((proc.stdout, self.stdout), (proc.stderr, self.stderr))
        ]
        for pump in self.pumps:
            pump.start()

    def output(self, expect: str = "", timeout: float = 3.0) -> str:
        """Stdout so far, waiting a little for ``expect`` (read by a background thread)."""
        deadline = time.monotonic() + timeout
        while expect not in " ".join("".join(self.stdout).split()):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return "".join(self.stdout)


def _pump(stream, sink: list[str]) -> None:  # type: ignore[no-untyped-def]
    for line in iter(stream.readline, ""):
        sink.append(line)


@contextmanager
def serving(db: str, *extra: str, cwd: Path) -> Iterator[Server]:
    port = free_port()
    proc = subprocess.Popen(
        [*_switchover(), "--db", db, "serve", "--host", "127.0.0.1", "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=cwd,
    )
    server = Server(proc, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                time.sleep(0.2)
                pytest.fail(f"serve exited with {proc.returncode}: {''.join(server.stderr)}")
            try:
                if httpx.get(server.base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"serve did not answer /healthz in 30 s: {''.join(server.stderr)}")
            time.sleep(0.1)
        yield server
        # a prompt stop on SIGTERM, as a process manager sends it; uvicorn shuts down
        # cleanly, then re-raises the signal, so the status is 0 or "killed by SIGTERM"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) in (0, -signal.SIGTERM), "".join(server.stderr)
        for pump in server.pumps:
            pump.join(timeout=5)
        assert "Traceback" not in "".join(server.stderr)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def cli(db: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchover.cli.main", "--db", db, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        cwd=cwd,
        check=False,
    )


def test_serve_answers_decisions_and_changes_over_http(db_url: str, tmp_path: Path) -> None:
    with serving(db_url, "--no-demo", cwd=tmp_path) as server:
        health = httpx.get(server.base + "/healthz").json()
        assert health["ok"] is True and health["snapshot"]["migrations"] == []
        assert "no API tokens yet" in server.output("no API tokens yet")

        made = cli(db_url, "token", "create", "ops", "--role", "operator", "--json", cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        token = json.loads(made.stdout)["token"]
        viewer = cli(db_url, "token", "create", "ro", "--role", "viewer", "--json", cwd=tmp_path)
        viewer_token = json.loads(viewer.stdout)["token"]

        with httpx.Client(
            base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as http:
            # --no-demo: the store stays empty
            assert http.get("/v1/migrations").json() == []
            created = http.post(
                "/v1/migrations", json={"name": "voice_v2", "features": ["stt", "tts"]}
            )
            assert created.status_code == 201, created.text
            decide = {
                "migration": "voice_v2",
                "feature": "stt",
                "contexts": [{"user_id": str(i)} for i in range(50)],
            }
            first = http.post("/v1/decide", json=decide)
            assert first.status_code == 200, first.text
            assert {d["reason"] for d in first.json()["decisions"]} == {"feature_off"}

            for path, body in (
                ("/v1/migrations/voice_v2/features/stt", {"enabled": True}),
                ("/v1/migrations/voice_v2/percentage", {"percentage": 100, "reason": "go"}),
            ):
                resp = http.put(path, json=body)
                assert resp.status_code == 200, resp.text
            assert resp.json()["updated_by"] == "ops"

            deadline = time.monotonic() + 3
            while True:
                body = http.post("/v1/decide", json=decide).json()
                if {d["side"] for d in body["decisions"]} == {"candidate"}:
                    break
                assert time.monotonic() < deadline, body
                time.sleep(0.05)
            assert body["version"] == 3

            # a viewer reads but may not change; no token at all is refused
            ro = {"Authorization": f"Bearer {viewer_token}"}
            assert http.post("/v1/decide", json=decide, headers=ro).status_code == 200
            resp = http.post("/v1/migrations/voice_v2/kill", headers=ro)
            assert resp.status_code == 403
            assert resp.json()["error"]["code"] == "forbidden"
            assert httpx.get(server.base + "/v1/migrations").status_code == 401

            audit = http.get("/v1/migrations/voice_v2/audit").json()
            assert [(e["action"], e["actor"]) for e in audit] == [
                ("set_percentage", "ops"),
                ("enable_feature", "ops"),
                ("create", "ops"),
            ]

        # the CLI sees what the server wrote
        status = cli(db_url, "status", "voice_v2", "--json", cwd=tmp_path)
        data = json.loads(status.stdout)
        assert (data["percentage"], data["enabled"], data["version"]) == (100, True, 3)


def test_first_run_starts_the_demo_and_prints_a_one_time_sign_in_link(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    with serving(db, "--demo-rate", "40", cwd=tmp_path) as server:
        out = " ".join(server.output("demo:").split())
        assert "created the demo" in out
        assert f"dashboard: {server.base}/" in out
        link = re.search(r"sign in: (\S+)", out).group(1)  # type: ignore[union-attr]
        assert link.startswith(server.base + "/login?code=")
        assert "swo_" not in out  # the token itself is never printed
        with httpx.Client(base_url=server.base, follow_redirects=False, timeout=10) as browser:
            assert browser.get(link).status_code == 303
            page = browser.get("/migrations/voice_v2")
            assert page.status_code == 200
            assert "Break the candidate" in page.text and 'data-phase="canary"' in page.text
        assert httpx.get(link, follow_redirects=False).status_code == 401  # used once
        time.sleep(2.5)  # the demo's recorder flushes every 2 s

    a = bootstrap(Settings(database_url=db))
    try:
        (m,) = a.rollout.list()
        assert m.name == "voice_v2" and m.stickiness == "user_id"
        assert a.plans.get("voice_v2").plan.name == "voice-v2-demo"
        now = datetime.now(UTC)
        seen = a.metrics.operations("voice_v2", since=now - timedelta(hours=1), until=now)
        assert {"stt", "llm", "tts"} <= set(seen)
        (token,) = a.tokens.list()
        assert (token.name, token.role) == ("dashboard", "operator")
        versions = len(a.rollout.audit("voice_v2", limit=1000))
    finally:
        a.close()

    # a later start resumes the demo's traffic and creates nothing; --no-demo runs none
    with serving(db, "--no-controller", cwd=tmp_path) as server:
        out = " ".join(server.output("demo:").split())
        assert "created the demo" not in out and "created the operator token" not in out
        assert f"sign in: {server.base}/login " in out + " "
        assert "demo: 15 simulated calls/s" in out
    with serving(db, "--no-demo", "--no-controller", cwd=tmp_path) as server:
        assert "demo:" not in server.output("API docs")
    a = bootstrap(Settings(database_url=db))
    try:
        assert len(a.rollout.audit("voice_v2", limit=1000)) == versions
        assert len(a.tokens.list()) == 1
    finally:
        a.close()


def test_sdk_over_http_follows_the_server_and_survives_its_death(tmp_path: Path) -> None:
    """``switchover.connect("http://…")`` for processes without database access."""
    import switchover
    from switchover.core.decision import Reason, Side

    db = f"sqlite:///{tmp_path / 'http.db'}"
    client = None
    try:
        with serving(db, "--no-demo", cwd=tmp_path) as server:
            made = cli(db, "token", "create", "ops", "--role", "operator", "--json", cwd=tmp_path)
            token = json.loads(made.stdout)["token"]
            app_token = cli(
                db, "token", "create", "app", "--role", "viewer", "--json", cwd=tmp_path
            )
            ro = json.loads(app_token.stdout)["token"]
            with httpx.Client(
                base_url=server.base, headers={"Authorization": f"Bearer {token}"}
            ) as ops:
                ops.post("/v1/migrations", json={"name": "voice_v2", "features": ["stt"]})
                client = switchover.connect(server.base, token=ro, refresh_interval=0.05)
                m = client.migration("voice_v2")
                assert m.decide("stt", {"user_id": "1"}).reason is Reason.FEATURE_OFF
                ops.put("/v1/migrations/voice_v2/features/stt", json={"enabled": True})
                ops.put("/v1/migrations/voice_v2/percentage", json={"percentage": 100})
            deadline = time.monotonic() + 5
            while m.decide("stt", {"user_id": "1"}).side is not Side.CANDIDATE:
                assert time.monotonic() < deadline, client.health()
                time.sleep(0.02)
            assert m.status()["percentage"] == 100
        # the server is gone now: the last snapshot keeps serving, and says it is stale
        deadline = time.monotonic() + 5
        while not client.health()["stale"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        d = m.decide("stt", {"user_id": "1"})
        assert (d.side, d.reason) == (Side.CANDIDATE, Reason.BUCKET_IN)
        assert token not in str(client.health()) and ro not in str(client.health())
    finally:
        if client is not None:
            client.close()


def test_sdk_over_http_with_a_bad_token_decides_legacy(tmp_path: Path) -> None:
    import switchover
    from switchover.core.decision import Reason

    db = f"sqlite:///{tmp_path / 'bad.db'}"
    with (
        serving(db, cwd=tmp_path) as server,
        switchover.connect(server.base, token="swo_wrong", background=False) as client,
    ):
        d = client.migration("voice_v2").decide("stt", {"user_id": "1"})
        assert d.reason is Reason.STORE_UNREACHABLE
        assert "401" in client.health()["last_error"]


def test_sdk_over_http_records_routed_calls_on_the_server(tmp_path: Path) -> None:
    import asyncio

    import switchover

    db = f"sqlite:///{tmp_path / 'rec.db'}"
    with serving(db, "--no-demo", cwd=tmp_path) as server:
        ops = json.loads(
            cli(db, "token", "create", "ops", "--role", "operator", "--json", cwd=tmp_path).stdout
        )["token"]
        worker = json.loads(
            cli(db, "token", "create", "svc", "--role", "worker", "--json", cwd=tmp_path).stdout
        )["token"]
        headers = {"Authorization": f"Bearer {ops}"}
        with httpx.Client(base_url=server.base, headers=headers) as http:
            http.post("/v1/migrations", json={"name": "voice_v2", "features": ["stt"]})
            http.put("/v1/migrations/voice_v2/features/stt", json={"enabled": True})
            http.put("/v1/migrations/voice_v2/percentage", json={"percentage": 100})
            with switchover.connect(server.base, token=worker, background=False) as client:
                m = client.migration("voice_v2")

                async def legacy(x: int) -> int:
                    return x

                async def candidate(x: int) -> int:
                    if x % 4 == 0:
                        raise ValueError("candidate bug")
                    return x

                async def calls() -> list[int]:
                    return [
                        await m.route(
                            "stt", {"user_id": str(i)}, i, legacy=legacy, candidate=candidate
                        )
                        for i in range(40)
                    ]

                assert asyncio.run(calls()) == list(range(40))
                assert client.recorder.flush() is True
                report = m.window()
            cand = report["sides"]["candidate"]
            assert (cand["calls"], cand["fallbacks"], cand["error_types"]) == (
                40,
                10,
                {"ValueError": 10},
            )
            prom = http.get("/metrics").text
            labels = 'migration="voice_v2",operation="stt",side="candidate"'
            assert f"switchover_fallbacks_total{{{labels}}} 10.0" in prom

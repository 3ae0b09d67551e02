"""The worker registry end to end: a worker's heartbeats through a real ``switchover
serve``, listed by ``GET /v1/workers``, ``switchover worker list`` and the dashboard;
bad heartbeats refused naming the field; a silent worker turns stale."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from test_worker import cli, serving

from switchover.worker.backend import Backend
from switchover.worker.calls import Dispatcher
from switchover.worker.config_client import ConfigClient
from switchover.worker.heartbeat import Heartbeat
from switchover.worker.livekit_app import CoreWorker
from switchover.worker.runtime import WorkerRuntime
from switchover.worker.settings import WorkerSettings

COOKIE = "switchover_session"
"""The dashboard's session cookie (web/session.py): a token, as the login form sets it."""


def token(db: str, cwd: Path, name: str, role: str) -> str:
    made = cli("--db", db, "token", "create", name, "--role", role, "--json", cwd=cwd)
    assert made.returncode == 0, made.stderr
    return str(json.loads(made.stdout)["token"])


def test_a_workers_heartbeats_list_it_everywhere_and_it_turns_stale(
    db_url: str, tmp_path: Path
) -> None:
    worker_token = token(db_url, tmp_path, "core", "worker")
    viewer = token(db_url, tmp_path, "eyes", "viewer")
    with serving(db_url, tmp_path, served_a_config=False) as base:
        settings = WorkerSettings.from_env(
            {
                "WORKER_NAME": "core-voice-worker",
                "MAX_CONCURRENCY": "25",
                "WORKER_HEARTBEAT_INTERVAL": "1",
                "SWITCHOVER_MIGRATION": "core_worker",
            }
        )
        backend = Backend(base, worker_token)
        core = CoreWorker(
            settings, Dispatcher(ConfigClient(backend.runtime_config)), WorkerRuntime(25)
        )
        core.runtime.stats.active, core.runtime.stats.started = 5, 42
        beats = Heartbeat(backend.heartbeat, core.heartbeat_body, 1.0)
        assert beats.once()
        beat_at = time.monotonic()

        seen = httpx.get(base + "/v1/workers", headers={"Authorization": f"Bearer {viewer}"})
        assert seen.status_code == 200
        (w,) = seen.json()
        assert (w["name"], w["status"], w["jobs_active"], w["jobs_total"]) == (
            "core-voice-worker",
            "active",
            5,
            42,
        )
        assert w["load"] == 0.2 and w["side"] == "candidate" and w["migration"] == "core_worker"
        assert w["version"] and w["instance"].startswith("core-voice-worker@")

        page = httpx.get(base + "/", cookies={COOKIE: viewer})
        assert page.status_code == 200 and "core-voice-worker" in page.text
        assert "data-workers" in page.text

        bad = httpx.post(
            base + "/v1/workers/heartbeat",
            json={**core.heartbeat_body(), "instance": "other", "load": 7},
            headers={"Authorization": f"Bearer {worker_token}"},
        )
        assert bad.status_code == 422 and "load" in bad.text
        refused = httpx.post(
            base + "/v1/workers/heartbeat",
            json=core.heartbeat_body(),
            headers={"Authorization": f"Bearer {viewer}"},
        )
        assert refused.status_code == 403
        backend.close()

        listed = cli("--db", db_url, "worker", "list", "--json", cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert [x["name"] for x in json.loads(listed.stdout)] == ["core-voice-worker"]
        human = cli("--db", db_url, "worker", "list", cwd=tmp_path)
        assert "workers" in human.stdout and "5 / 42" in human.stdout

        time.sleep(max(0.0, 3.3 - (time.monotonic() - beat_at)))  # three missed beats
        (w,) = httpx.get(base + "/v1/workers", headers={"Authorization": f"Bearer {viewer}"}).json()
        assert w["status"] == "stale"

"""Observations sent while the server is SIGKILLed and restarted are stored exactly once.

A client posts batches with an ``Idempotency-Key`` and retries a batch, with the same
key, until it gets an answer; meanwhile the server is killed (SIGKILL) and started again
several times, so some batches are committed without their answer reaching the client.
Every call must be counted once: none lost, none doubled.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from support.serving import clean_env, free_port
from switchover.bootstrap import bootstrap
from switchover.settings import Settings

BATCHES = 60
PER_BATCH = 50
KILLS = 5


def _start(db: str, port: int, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "switchover.cli.main",
            "--db",
            db,
            "serve",
            "--no-demo",
            "--no-controller",
            "--port",
            str(port),
        ],
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


@pytest.mark.postgres
def test_retried_batches_across_sigkills_are_stored_once(pg_url: str, tmp_path: Path) -> None:
    db_url = pg_url
    a = bootstrap(Settings(database_url=db_url))
    a.rollout.create("voice_v2", features=["stt"], actor="seed")
    token = a.tokens.create("probe", "worker", actor="seed")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = [_start(db_url, port, tmp_path)]
    done = threading.Event()
    kills = 0

    def killer() -> None:
        nonlocal kills
        while not done.is_set() and kills < KILLS:
            time.sleep(1.5)
            server[0].send_signal(signal.SIGKILL)
            server[0].wait()
            kills += 1
            server[0] = _start(db_url, port, tmp_path)

    thread = threading.Thread(target=killer)
    thread.start()
    accepted = 0
    replays = 0
    now = time.time()
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
            for b in range(BATCHES):
                key = str(uuid.uuid4())
                body = {
                    "observations": [
                        {
                            "migration": "voice_v2",
                            "operation": "stt",
                            "side": "candidate",
                            "latency_ms": 100 + i,
                            "ok": i % 10 != 0,
                            "error_type": None if i % 10 else "timeout",
                            "at": now,
                        }
                        for i in range(PER_BATCH)
                    ]
                }
                deadline = time.monotonic() + 60
                while True:
                    try:
                        r = client.post(
                            "/v1/observations",
                            json=body,
                            headers={"Idempotency-Key": key},
                            timeout=5,
                        )
                        if r.status_code == 200:
                            accepted += r.json()["accepted"]
                            replays += bool(r.json().get("replay"))
                            break
                        assert r.status_code in (502, 503), r.text
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, f"batch {b} never answered"
                    time.sleep(0.05)
                time.sleep(0.08)
    finally:
        done.set()
        thread.join()
        server[0].kill()
        server[0].wait()
    report = a.metrics.window("voice_v2", last=timedelta(hours=1)).to_dict()
    a.close()
    stored = report["sides"]["candidate"]["calls"]
    assert kills == KILLS
    assert accepted == BATCHES * PER_BATCH
    assert stored == BATCHES * PER_BATCH, f"stored {stored}, sent {BATCHES * PER_BATCH}"
    print(
        f"{kills} SIGKILLs, {BATCHES * PER_BATCH} observations, {stored} stored, "
        f"{replays} batches answered as replays"
    )

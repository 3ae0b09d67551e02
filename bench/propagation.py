"""How fast a change made in one process reaches another process's decisions.

On PostgreSQL the client LISTENs for the store's NOTIFY; the watcher here polls only
every 60 s, so what is measured is the NOTIFY path: commit -> notification -> reload
-> the next ``decide()`` answers the new way. Needs a PostgreSQL server; skipped
otherwise.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from typing import Any

import sqlalchemy as sa

from switchover.core.clock import ManualClock
from switchover.rollout.service import RolloutService
from switchover.store.engine import create_store_engine
from switchover.store.repository import Store
from switchover.store.schema import upgrade

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

_WATCHER = textwrap.dedent(
    """
    import json, sys, time
    import switchover
    client = switchover.connect(sys.argv[1], refresh_interval=60)
    m = client.migration("propagation")
    print("ready", flush=True)
    for line in sys.stdin:
        want = line.strip()
        while m.decide(None, {"user_id": "probe"}).side.value != want:
            time.sleep(0.0002)
        print(json.dumps(time.time()), flush=True)
    client.close()
    """
)


class Skip(Exception):
    pass


def _database(admin_url: str) -> tuple[str, sa.Engine]:
    admin = create_store_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            name = f"swo_bench_{uuid.uuid4().hex[:8]}"
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        raise Skip(f"PostgreSQL not reachable at {admin_url} ({type(exc).__name__})") from exc
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    return url, admin


def measure(rounds: int = 20) -> dict[str, Any]:
    admin_url = os.environ.get("SWITCHOVER_BENCH_POSTGRES_URL", DEFAULT_PG)
    url, admin = _database(admin_url)
    name = sa.engine.make_url(url).database
    store = Store.from_url(url)
    watcher = None
    try:
        upgrade(store.engine)
        svc = RolloutService(store, ManualClock())
        svc.create("propagation", actor="bench")
        watcher = subprocess.Popen(
            [sys.executable, "-c", _WATCHER, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert watcher.stdin is not None and watcher.stdout is not None
        if watcher.stdout.readline().strip() != "ready":
            raise Skip("the watcher process did not start")
        time.sleep(0.5)
        delays_ms: list[float] = []
        for i in range(rounds):
            to_candidate = i % 2 == 0
            watcher.stdin.write(("candidate" if to_candidate else "legacy") + "\n")
            watcher.stdin.flush()
            time.sleep(0.05)
            started = time.time()
            svc.set_percentage("propagation", 100 if to_candidate else 0, actor="bench")
            seen = json.loads(watcher.stdout.readline())
            delays_ms.append((seen - started) * 1000)
        delays_ms.sort()
        return {
            "rounds": rounds,
            "median_ms": statistics.median(delays_ms),
            "p90_ms": delays_ms[int(0.9 * (len(delays_ms) - 1))],
            "max_ms": delays_ms[-1],
        }
    finally:
        if watcher is not None:
            watcher.kill()
            watcher.wait()
        store.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

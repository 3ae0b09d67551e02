"""A leader whose PostgreSQL connection stalls loses the lead; a standby takes over.

Two ``switchover controller run`` processes: the leader talks to PostgreSQL through a TCP
proxy, the standby directly. When the proxy stops forwarding (the database "hangs" for
the leader only), PostgreSQL ends the leader's idle lock session after the lock's TTL,
the standby takes the lock, and verdicts go on, one per interval, with none from the old
leader once its network comes back.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from switchover.bootstrap import bootstrap
from switchover.settings import Settings

from .tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres
INTERVAL = 10
PLAN = f"""\
plan: failover
interval: {INTERVAL}s
window: 5m
phases:
  - {{name: canary, percentage: 5, duration: 1h}}
  - {{name: all, percentage: 100, duration: 1h}}
"""


def _controller(url: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHOVER_")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "switchover.cli.main",
            "--db",
            url,
            "controller",
            "run",
            "--poll",
            "0.5",
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _holder(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT holder FROM locks WHERE name = 'controller'")).first()
    return None if row is None else str(row[0])


def _verdicts(engine: sa.Engine) -> list[tuple[int, str, float]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT interval, actor, at FROM verdicts WHERE migration = 'voice_v2' "
                "ORDER BY interval"
            )
        ).all()
    return [(int(r[0]), str(r[1]), r[2].timestamp()) for r in rows]


def _until(what: str, check, timeout: float) -> float:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < timeout, f"{what} did not happen in {timeout} s"
        time.sleep(0.2)
    return time.monotonic() - start


@pytest.fixture
def stage(pg_url: str, tmp_path: Path) -> Iterator[tuple[str, TcpProxy, sa.Engine]]:
    a = bootstrap(Settings(database_url=pg_url))
    a.rollout.create("voice_v2", features=["stt"], actor="seed")
    a.plans.apply("voice_v2", PLAN, "failover.yaml", actor="seed")
    a.close()
    url = sa.engine.make_url(pg_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    engine = sa.create_engine(pg_url)
    try:
        yield proxied, proxy, engine
    finally:
        proxy.flow()
        proxy.stop()
        engine.dispose()


def test_a_stalled_leader_loses_the_lead_and_verdicts_go_on(
    pg_url: str, stage: tuple[str, TcpProxy, sa.Engine], tmp_path: Path
) -> None:
    proxied, proxy, engine = stage
    leader = _controller(proxied, tmp_path)
    standby = None
    try:
        _until("the leader taking the lock", lambda: _holder(engine) is not None, 30)
        first = _holder(engine)
        standby = _controller(pg_url, tmp_path)
        _until("a first verdict", lambda: len(_verdicts(engine)) >= 1, 3 * INTERVAL)
        time.sleep(2)
        assert _holder(engine) == first  # the standby waits while the leader is healthy

        proxy.stall()
        stalled_at = time.time()
        took = _until(
            "the standby taking over", lambda: _holder(engine) not in (None, first), 4 * INTERVAL
        )
        assert took <= 2 * INTERVAL, f"failover took {took:.1f} s"
        print(f"failover after a stall: {took:.1f} s (interval {INTERVAL} s)")
        _until(
            "a verdict from the new leader",
            lambda: any(at > stalled_at + took for _, _, at in _verdicts(engine)),
            3 * INTERVAL,
        )

        proxy.flow()  # the old leader's network comes back
        time.sleep(INTERVAL + 2)
        assert _holder(engine) not in (None, first), "the old leader took the lock back"
        verdicts = _verdicts(engine)
        intervals = [i for i, _, _ in verdicts]
        assert len(intervals) == len(set(intervals)), verdicts  # one verdict per interval
        gaps = [b - a for a, b in itertools.pairwise(intervals)]
        assert all(g <= 2 for g in gaps), f"intervals without a verdict: {verdicts}"
    finally:
        for proc in (leader, standby):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

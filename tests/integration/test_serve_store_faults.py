"""A real ``switchover serve`` on PostgreSQL behind a TCP proxy that cuts and stalls.

While the store is gone or hangs, the server keeps deciding from its snapshot for the
tokens it has verified, answers ``/healthz`` at once, and says on ``/readyz`` that it is
degraded; when the store is back, it is ready again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from support.serving import serving
from switchover.bootstrap import bootstrap
from switchover.settings import Settings

from .tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres


@pytest.fixture
def served(pg_url: str, tmp_path: Path) -> Iterator[tuple[str, TcpProxy, str]]:
    a = bootstrap(Settings(database_url=pg_url))
    a.rollout.create("voice_v2", features=["stt"], actor="seed")
    a.rollout.set_percentage("voice_v2", 50, actor="seed")
    token = a.tokens.create("svc", "viewer", actor="seed")
    a.close()
    url = sa.engine.make_url(pg_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        with serving(proxied, tmp_path, "--no-demo", "--no-controller", ready="/readyz") as base:
            yield base, proxy, token
            proxy.flow()
    finally:
        proxy.flow()
        proxy.stop()


def _decide(client: httpx.Client, i: int) -> int:
    body = {"migration": "voice_v2", "feature": None, "contexts": [{"user_id": str(i)}]}
    try:
        return client.post("/v1/decide", json=body, timeout=5).status_code
    except httpx.TransportError:
        return 0


def _round(base: str, token: str, n: int = 60) -> list[int]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers) as client, ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda i: _decide(client, i), range(n)))


def test_decisions_and_health_survive_a_cut_and_a_stall(
    served: tuple[str, TcpProxy, str],
) -> None:
    base, proxy, token = served
    assert set(_round(base, token)) == {200}  # the token is now verified and cached

    proxy.stop()  # the database goes away
    time.sleep(6)  # past the token cache's 5 s: checks now need the store
    during_cut = _round(base, token)
    assert during_cut.count(200) == len(during_cut), during_cut
    ready = httpx.get(f"{base}/readyz", timeout=5)
    assert ready.status_code == 503 and ready.json()["degraded"], ready.text

    proxy.start()
    proxy.stall()  # the database answers nothing at all
    time.sleep(6)
    started = time.monotonic()
    health = httpx.get(f"{base}/healthz", timeout=5)
    assert health.status_code == 200 and time.monotonic() - started < 2.0
    during_stall = _round(base, token, 40)
    assert during_stall.count(200) == len(during_stall), during_stall
    stranger = httpx.post(
        f"{base}/v1/decide",
        json={"migration": "voice_v2", "contexts": [{}]},
        headers={"Authorization": "Bearer swo_never-seen"},
        timeout=30,
    )
    assert stranger.status_code in (401, 503)  # never a 200 for a token nobody verified

    proxy.flow()
    deadline = time.monotonic() + 30
    while (ready := httpx.get(f"{base}/readyz", timeout=5)).status_code != 200:
        assert time.monotonic() < deadline, f"not ready 30 s after the store is back: {ready.text}"
        time.sleep(0.5)

"""Seed 002 judged on proxied traffic alone: GoHighLevel webhooks go through the proxy,
which records every request; the controller reads nothing else."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from proxy_servers import NAME, config, fresh_store, proxying, upstreams, wait_for

from switchover.bootstrap import bootstrap
from switchover.control.controller import Controller
from switchover.control.plans import PlanService
from switchover.core.clock import ManualClock
from switchover.settings import Settings

PLAN = Path(__file__).parents[2] / "examples" / "plans" / "seed-002-langgraph-cutover.yaml"
CONTACTS = 1200
"""At the first phase's 10 %, enough for the plan's 100 candidate calls."""


async def _send(base: str, n: int, connections: int = 8) -> list[int]:
    """``n`` GoHighLevel-like webhooks, one contact each, over keep-alive connections.

    Plain HTTP/1.1 on asyncio streams: an HTTP client library would cost this process
    more CPU than the proxy it is testing."""
    host, port = base.removeprefix("http://").split(":")
    statuses: list[int] = []
    todo = iter(range(n))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        for i in todo:
            body = json.dumps({"contact_id": f"contact-{i}", "type": "InboundMessage"})
            writer.write(
                f"POST /webhooks/ghl HTTP/1.1\r\nHost: {host}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                f"{body}".encode()
            )
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
            statuses.append(int(head[9:12]))
            if "content-length:" in head:
                length = int(head.split("content-length:")[1].split("\r\n")[0])
                await reader.readexactly(length)
            else:  # chunked: read to the last chunk
                await reader.readuntil(b"0\r\n\r\n")
        writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return statuses


def test_seed_002_plan_rolls_back_a_failing_candidate_from_the_proxys_records(
    tmp_path: Path,
) -> None:
    db_url = fresh_store(tmp_path)
    clock = ManualClock(datetime.now(UTC))
    app = bootstrap(Settings(database_url=db_url), clock=clock)
    try:
        app.rollout.create(NAME, stickiness="contact_id", actor="alice")
        PlanService(app.store, clock).apply(NAME, PLAN.read_text(), PLAN.name, actor="alice")
        controller = Controller(app.store, clock, settle=0.0, env={})
        assert [o.verdict.action.value for o in controller.tick()] == ["start"]
        assert app.rollout.get(NAME).percentage == 10

        with upstreams() as (legacy, candidate, lu, cu):
            legacy.outcome = "booked=1"  # the Node.js service books
            candidate.status = 500  # the Python service fails every message
            with proxying(config(lu, cu), db_url) as (base, proxy, client):
                wait_for(lambda: client.migration(NAME).snapshot.percentage == 10)  # type: ignore[union-attr]
                statuses = asyncio.run(_send(base, CONTACTS))
                wait_for(lambda: proxy.inflight == 0)
                client.recorder.flush()
        share = statuses.count(500) / CONTACTS
        assert 0.07 < share < 0.13  # the phase's 10 %, answered by the candidate as it is

        clock.advance(301)  # the plan's interval is 5 minutes
        (outcome,) = controller.tick()
    finally:
        app.close()
    verdict = outcome.verdict
    assert verdict.action.value == "rollback_total", verdict.reasons
    checks = {c.name: c for c in verdict.checks}
    error_rate = checks["error_rate < 5%"]
    assert error_rate.result.value == "fail"
    assert error_rate.samples[0] == statuses.count(500)
    booked = checks["outcome_drop.booked <= 2%"]
    assert booked.samples[1] == statuses.count(200)  # from the outcome header
    assert outcome.migration_after is not None and outcome.migration_after.percentage == 0

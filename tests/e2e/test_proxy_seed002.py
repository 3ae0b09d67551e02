"""Seed 002 judged on proxied traffic alone: GoHighLevel webhooks go through the proxy,
which records every request; the controller reads nothing else."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
from proxy_servers import NAME, config, fresh_store, proxying, upstreams, wait_for

from switchover.bootstrap import bootstrap
from switchover.control.controller import Controller
from switchover.control.plans import PlanService
from switchover.core.clock import ManualClock
from switchover.settings import Settings

PLAN = Path(__file__).parents[2] / "examples" / "plans" / "seed-002-langgraph-cutover.yaml"
CONTACTS = 1200
"""At the first phase's 10 %, enough for the plan's 100 candidate calls."""


async def _send(base: str, n: int) -> list[int]:
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=base, limits=limits) as http:
        gate = asyncio.Semaphore(16)

        async def one(i: int) -> int:
            async with gate:
                r = await http.post("/webhooks/ghl", json={"contact_id": f"contact-{i}"})
                return r.status_code

        return await asyncio.gather(*(one(i) for i in range(n)))


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

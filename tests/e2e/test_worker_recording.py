"""Seed 000 on real jobs: worker jobs on both sides record into the migration through a
real ``switchover serve``, and the controller advances the seed's plan on them.

The test plays the seed's backend (``selectWorkerForCall``): each job goes to the side
the migration decides for its campaign. The legacy side is a per-agent deployment
running the same worker code with ``SWITCHOVER_SIDE=legacy``; the candidate is the core
worker. Jobs run in livekit-agents' own fake job context with fake providers (no LiveKit
server, no provider API here); everything else is real: HTTP config fetches, the HTTP
ingest, the store, the CLI's controller pass. The seed plan's phase durations are cut
to seconds so the advance happens in the test's time.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("livekit.agents")

from livekit.agents.testing import fake_job_context
from test_worker import cli, serving

from switchover.sdk.client import connect
from switchover.worker.backend import Backend
from switchover.worker.calls import Dispatcher
from switchover.worker.config_client import ConfigClient
from switchover.worker.livekit_app import CoreWorker, PreparedCall, Providers
from switchover.worker.recording import JobRecorder
from switchover.worker.runtime import WorkerRuntime
from switchover.worker.settings import WorkerSettings
from unit.integrations_livekit.fakes import FakeLLM, FakeTTS, KeptAudio

SEED_PLAN = Path(__file__).parents[2] / "examples" / "plans" / "seed-000-core-worker.yaml"
GREETER = "cmgr32z4q000039dudjfah00c"
CAMPAIGNS = [f"camp{i:02d}" for i in range(40)]


def agents_file(tmp_path: Path) -> Path:
    path = tmp_path / "agents.json"
    agent = {"id": GREETER, "name": "Greeting Agent", "system_prompt": "Greet the caller."}
    campaigns = [{"id": c, "name": c, "agents": [{"agent_id": GREETER}]} for c in CAMPAIGNS]
    path.write_text(json.dumps({"agents": [agent], "campaigns": campaigns}))
    return path


def quick_seed_plan(tmp_path: Path) -> Path:
    """The seed 000 plan as written, with its days turned into seconds."""
    text = SEED_PLAN.read_text()
    for before, after in (
        ("interval: 5m", "interval: 1s\nmin_samples: 10"),
        ("duration: 2d", "duration: 2s"),
        ("duration: 3d", "duration: 3s"),
    ):
        assert before in text
        text = text.replace(before, after)
    path = tmp_path / "seed-000-quick.yaml"
    path.write_text(text)
    return path


async def one_turn(ctx: Any, prepared: PreparedCall) -> None:
    session = prepared.session
    session.output.audio = KeptAudio()
    await session.start(prepared.agent)
    assert prepared.record is not None
    prepared.record.session_ready()
    await session.run(user_input="Hello")
    await session.aclose()


def worker(base: str, token: str, side: str) -> tuple[CoreWorker, Any]:
    settings = WorkerSettings.from_env(
        {
            "BACKEND_URL": base,
            "SWITCHOVER_TOKEN": token,
            "SWITCHOVER_MIGRATION": "core_worker",
            "SWITCHOVER_SIDE": side,
        }
    )
    backend = Backend(base, token)
    client = connect(base, token=token, background=False)
    core = CoreWorker(
        settings,
        Dispatcher(ConfigClient(backend.runtime_config), backend.inbound_route),
        WorkerRuntime(8),
        Providers(llm=lambda c: FakeLLM(side), tts=lambda c: FakeTTS(3), stt=lambda c: None),
        recorder=JobRecorder(client.migration("core_worker"), side, settings.operations),
        converse=one_turn,
    )
    return core, client


def ok(*args: str, cwd: Path) -> Any:
    run = cli(*args, "--json", cwd=cwd)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout)


def test_worker_jobs_on_both_sides_advance_the_seed_000_plan(db_url: str, tmp_path: Path) -> None:
    db = ("--db", db_url)
    ok(*db, "agents", "import", str(agents_file(tmp_path)), cwd=tmp_path)
    token = ok(*db, "token", "create", "core", "--role", "worker", cwd=tmp_path)["token"]
    ok(*db, "migration", "create", "core_worker", "--stickiness", "campaign_id", cwd=tmp_path)
    ok(*db, "plan", "apply", "core_worker", str(quick_seed_plan(tmp_path)), cwd=tmp_path)
    started = ok(*db, "controller", "run", "--once", cwd=tmp_path)
    assert [v["action"] for v in started] == ["start"]
    assert ok(*db, "migration", "show", "core_worker", cwd=tmp_path)["percentage"] == 10

    with serving(db_url, tmp_path, served_a_config=False) as base:
        sides = {s: worker(base, token, s) for s in ("legacy", "candidate")}
        decider = sides["candidate"][1].migration("core_worker")
        routed = {c: decider.decide(None, {"campaign_id": c}).side.value for c in CAMPAIGNS}
        on_candidate = [c for c in CAMPAIGNS if routed[c] == "candidate"]
        assert 1 <= len(on_candidate) <= 12  # 10 % of campaigns, give or take
        jobs = [("candidate", on_candidate[i % len(on_candidate)]) for i in range(8)]
        jobs += [("legacy", c) for c in CAMPAIGNS if routed[c] == "legacy"][:4]

        async def run_jobs() -> list[str]:
            replies: list[str] = []

            async def job(side: str, campaign: str, n: int) -> None:
                meta = {"agent_id": GREETER, "campaign_id": campaign, "lead_id": f"lead{n}"}
                with fake_job_context(job_id=f"job{n}", job_metadata=json.dumps(meta)) as ctx:
                    ctx._on_shutdown = replies.append
                    await sides[side][0].entrypoint(ctx)

            for n, (side, campaign) in enumerate(jobs):
                await job(side, campaign, n)
            return replies

        refusals = asyncio.run(run_jobs())
        assert refusals == []
        for _, client in sides.values():
            assert client.recorder.flush()
            client.close()

        time.sleep(2.2)  # the phase's (shortened) minimum duration
        passed = ok(*db, "controller", "run", "--once", cwd=tmp_path)
    assert [v["action"] for v in passed] == ["advance"], passed
    shown = ok(*db, "migration", "show", "core_worker", cwd=tmp_path)
    assert shown["percentage"] == 50
    status = ok(*db, "status", "core_worker", cwd=tmp_path)
    assert status["plan"]["phase"] == "day3-4"

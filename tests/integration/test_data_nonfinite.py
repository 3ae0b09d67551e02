"""Issue 21 in the data migration, on both engines: "NaN and Infinity reached
voice_agent_metrics", and "calls with a NaN duration were classed completed"."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from switchover.core.clock import ManualClock
from switchover.data.migrate import MigrateOptions, Migrator
from switchover.data.seed import seed_demo
from switchover.data.source import Source


@pytest.fixture
def source(data_url: str) -> Iterator[Source]:
    src = Source(data_url)
    yield src
    src.dispose()


def test_broken_durations_and_latencies_never_reach_the_metrics(
    source: Source, clock: ManualClock
) -> None:
    seed_demo(source, configs=60, calls=400, now=clock.now())
    # SQLite stores NaN as NULL; infinity is kept by both engines
    broken = [math.inf] + ([math.nan] if source.engine.dialect.name == "postgresql" else [])
    with source.engine.begin() as conn:
        config = (
            conn.execute(
                sa.text(
                    "SELECT c.config_id FROM voice_agent_calls c JOIN voice_agent_configs v "
                    "ON v.id = c.config_id JOIN tenants t ON t.id = v.tenant_id "
                    "GROUP BY c.config_id HAVING COUNT(*) >= 4 ORDER BY c.config_id"
                )
            )
            .scalars()
            .first()
        )
        calls = (
            conn.execute(
                sa.text("SELECT id FROM voice_agent_calls WHERE config_id = :c ORDER BY id"),
                {"c": config},
            )
            .scalars()
            .all()
        )
        for call, value in zip(calls, broken, strict=False):
            conn.execute(
                sa.text(
                    "UPDATE voice_agent_calls SET duration_seconds = :v, latency_ms = :v, "
                    "status = 'completed', outcome = NULL WHERE id = :id"
                ),
                {"v": value, "id": call},
            )
        finite = conn.execute(
            sa.text(
                "SELECT duration_seconds, latency_ms FROM voice_agent_calls "
                "WHERE config_id = :c AND id NOT IN :ids"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            {"c": config, "ids": calls[: len(broken)]},
        ).all()

    run = Migrator(source, clock).migrate(MigrateOptions(skip_invalid=True, batch_size=25))
    assert run.status == "completed", run.error

    with source.engine.connect() as conn:
        metrics = conn.execute(
            sa.text(
                "SELECT config_id, total_calls, avg_duration_seconds, p95_latency_ms "
                "FROM voice_agent_metrics"
            )
        ).all()
        outcomes = (
            conn.execute(
                sa.text("SELECT outcome FROM voice_agent_calls WHERE id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                ),
                {"ids": calls[: len(broken)]},
            )
            .scalars()
            .all()
        )
    assert metrics
    for _cid, _total, avg, p95 in metrics:
        assert avg is None or math.isfinite(avg)
        assert p95 is None or math.isfinite(p95)
    [(_, total, avg, _)] = [m for m in metrics if m[0] == config]
    assert total == len(calls)  # the broken calls still count as calls
    durations = [d for d, _ in finite if d is not None]
    assert avg == (pytest.approx(sum(durations) / len(durations), abs=1e-3) if durations else None)
    assert outcomes == ["failed"] * len(broken)  # never "completed"

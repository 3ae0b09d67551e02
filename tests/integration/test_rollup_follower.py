"""The one follower of the rollups table, as the controller, the charts and ``/metrics``
use it: rows whose transactions commit out of id order are still judged and counted.

PostgreSQL hands ids out at insert time, so a transaction holding a lower id can commit
after the follower has read higher ones, and a rolled-back insert leaves its id unused for
ever (a gap the follower gives up in time). SQLite serialises writers and reuses a
rolled-back id, so ids there become visible in order: these tests are PostgreSQL's.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from switchover.bootstrap import App
from switchover.control.evidence import EvidenceCache
from switchover.core.evidence import CANDIDATE
from switchover.core.rollup import Rollup, RollupKey, minute_of
from switchover.metrics.prometheus import StoreCollector
from switchover.store import tables as t
from switchover.store.engine import create_store_engine
from switchover.store.follower import RollupFollower

NAME = "voice-v2"


def _rollup(calls: int) -> Rollup:
    r = Rollup()
    for i in range(calls):
        r.add(100.0 + i, True, None, False, None)
    return r


def _row(minute: int, calls: int) -> dict[str, object]:
    r = _rollup(calls)
    return {
        "minute": minute,
        "migration": NAME,
        "operation": "call",
        "side": "candidate",
        "count": r.count,
        "errors": r.errors,
        "fallbacks": r.fallbacks,
        "data": r.to_dict(),
    }


def _insert(app: App, minute: int, calls: int) -> None:
    with app.store.transaction() as tx:
        tx.insert_rollups([(RollupKey(minute, NAME, "call", "candidate"), _rollup(calls))])


@pytest.fixture
def slow(app: App) -> Iterator[sa.Engine]:
    """A second writer whose transaction we hold open."""
    engine = create_store_engine(app.settings.database_url)
    yield engine
    engine.dispose()


def _candidate_calls(cache: EvidenceCache, minute: int) -> int:
    return cache.evidence(NAME).pools(minute, minute + 1, None)[CANDIDATE].calls


def _metric_calls(collector: StoreCollector) -> float:
    for family in collector.collect():
        if family.name == "switchover_calls":
            return sum(
                s.value
                for s in family.samples
                if s.labels.get("migration") == NAME and s.labels.get("side") == "candidate"
            )
    raise AssertionError("no switchover_calls family")


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_rollup_committed_out_of_id_order_is_judged_and_counted(
    app: App, slow: sa.Engine
) -> None:
    assert app.store.is_postgres
    minute = minute_of(app.clock.now().timestamp())
    app.rollout.create(NAME, actor="alice", reason="test")
    cache = EvidenceCache(app.store)
    cache.track([NAME], minute)
    collector = StoreCollector(app.store)
    assert _metric_calls(collector) == 0
    with slow.begin() as conn:
        conn.execute(t.rollups.insert(), [_row(minute, 11)])  # a lower id, not committed yet
        _insert(app, minute, 7)  # a higher id, committed first
        cache.refresh(minute)
        assert _candidate_calls(cache, minute) == 7
        assert cache.follower is not None and cache.follower.gaps == 1
        assert _metric_calls(collector) == 7
    cache.refresh(minute)
    assert _candidate_calls(cache, minute) == 18  # the late row is in the controller's pool
    assert cache.follower.gaps == 0
    assert _metric_calls(collector) == 18  # and in /metrics


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_rolled_back_insert_leaves_a_gap_that_is_given_up_in_time(
    app: App, slow: sa.Engine
) -> None:
    now = [0.0]
    follower = RollupFollower(app.store, monotonic=lambda: now[0], gap_seconds=60.0)
    minute = minute_of(app.clock.now().timestamp())
    follower.start()
    with slow.connect() as conn:
        tx = conn.begin()
        conn.execute(t.rollups.insert(), [_row(minute, 3)])
        tx.rollback()  # its id is never used
    _insert(app, minute, 5)
    rows = follower.poll()
    assert [r.rollup.count for _, r in rows] == [5]
    assert follower.gaps == 1
    now[0] = 30.0
    assert follower.poll() == [] and follower.gaps == 1  # still looked for
    now[0] = 61.0
    assert follower.poll() == [] and follower.gaps == 0  # given up: nothing waits for it
    _insert(app, minute, 2)
    assert [r.rollup.count for _, r in follower.poll()] == [2]

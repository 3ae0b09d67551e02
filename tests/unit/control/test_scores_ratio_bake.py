"""Scores, the sample ratio guardrail and the bake after the last phase, through the
seeded simulator (the real controller on the in-memory store, on a virtual clock).

Grids, not one setting: each claim runs over seeds and traffic levels. Measured on a
loaded 2-CPU machine, this file takes about 15 s.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from switchover.control.simulate import Change, SideModel, SimulationResult, Traffic, simulate
from switchover.core.evidence import Pool
from switchover.core.observation import observation_from_dict
from switchover.core.plan import load_plan, parse_seconds
from switchover.core.scores import counter_names, score_counters, score_stats
from switchover.errors import ValidationError

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "plans"


def run(source: str, traffic: Traffic, seed: int, **kw: object) -> SimulationResult:
    return simulate(load_plan(source, "test.yaml"), source, traffic, seed=seed, **kw)  # type: ignore[arg-type]


def rolled_back(r: SimulationResult) -> bool:
    return any(e.action.startswith("rollback") for e in r.timeline)


# --- scores ----------------------------------------------------------------------------------

SCORED = """
plan: scored
interval: 1m
guardrails: ["score_drop.csat <= 0.2"]
phases:
  - {name: p10, percentage: 10, duration: 1h, gates: ["score.csat >= 4.0"]}
  - {name: p50, percentage: 50, duration: 1h, gates: ["score.csat >= 4.0"]}
"""


def rated(mean: float, sd: float = 0.8) -> SideModel:
    return SideModel(p95_ms=400.0, error_rate=0.005, scores=(("csat", mean, sd),))


@pytest.mark.parametrize("rate", [1.0, 200.0])
def test_equal_mean_scores_complete_without_a_rollback(rate: float) -> None:
    """A candidate rated like legacy (4.5 +- 0.8) is never rolled back by either score
    gate: 10 seeds at 1 and 200 calls/s (``bench/verdicts.py`` runs the large grid)."""
    side = rated(4.5)
    results = [run(SCORED, Traffic(rate, side, side), seed) for seed in range(10)]
    assert not [r.timeline for r in results if rolled_back(r)]
    if rate >= 20:  # at 1 call/s the 10 % phase gives ~360 candidate calls in its hour
        assert all(r.state == "completed" for r in results)


@pytest.mark.parametrize("rate", [20.0, 200.0])
def test_a_candidate_rated_half_a_point_lower_is_rolled_back(rate: float) -> None:
    """4.0 against legacy's 4.5: the drop of 0.5 exceeds the 0.2 margin. Caught in the
    first phase in every one of 30 seeds."""
    results = [run(SCORED, Traffic(rate, rated(4.5), rated(4.0)), seed) for seed in range(30)]
    for r in results:
        assert rolled_back(r), r.timeline
        back = next(e for e in r.timeline if e.action.startswith("rollback"))
        assert back.phase == "(not started)" and back.at <= 3600  # in the 10 % phase
        assert "score_drop.csat" in back.summary or "score.csat" in back.summary


def test_a_mean_score_below_the_gate_fails_it_even_when_both_sides_agree() -> None:
    """``score.csat >= 4.0`` is absolute: both sides at 3.5 fail it."""
    r = run(SCORED, Traffic(20.0, rated(3.5), rated(3.5)), 1)
    back = next(e for e in r.timeline if e.action.startswith("rollback"))
    assert "score.csat >= 4 failed: score.csat mean 3." in back.summary
    assert "with every look counted the mean is below 3." in back.summary


def test_score_counters_add_up_to_the_mean_and_standard_deviation() -> None:
    totals: dict[str, float] = {}
    for value in (5, 4, 3, 4):
        for k, v in score_counters({"csat": value}).items():
            totals[k] = totals.get(k, 0.0) + v
    stats = score_stats(totals, "csat")
    assert (stats.n, stats.mean) == (4, 4.0)
    assert math.isclose(stats.sd, math.sqrt(2 / 3))
    assert Pool(0, 1, calls=4, outcomes=totals).score("csat") == stats
    assert Pool(0, 1, calls=4).score("csat").mean is None  # no scored call: no mean


def test_an_observation_carries_scores_as_counters_and_bad_scores_name_the_field() -> None:
    obs = observation_from_dict(
        {
            "migration": "m",
            "operation": "call",
            "side": "candidate",
            "latency_ms": 10,
            "outcome": {"booked": 1},
            "scores": {"csat": 4},
        },
        default_at=0.0,
    )
    n, total, squares = counter_names("csat")
    assert obs.outcome == {"booked": 1.0, n: 1.0, total: 4.0, squares: 16.0}
    for bad in ({"csat": "great"}, {"c.sat": 4}, {"csat": float("inf")}, [4]):
        base = {"migration": "m", "operation": "call", "side": "legacy", "latency_ms": 1}
        with pytest.raises(ValidationError) as err:
            observation_from_dict({**base, "scores": bad}, default_at=0.0)
        assert err.value.field == "scores"


# --- the sample ratio guardrail --------------------------------------------------------------

RATIO = """
plan: ratio
interval: 1m
phases:
  - {name: p10, percentage: 10, duration: 30m}
  - {name: p50, percentage: 50, duration: 30m}
"""
HEALTHY = SideModel(p95_ms=400.0, error_rate=0.005)


@pytest.mark.parametrize("rate", [5.0, 50.0, 500.0])
def test_a_candidate_that_loses_a_third_of_its_records_is_held_for_a_sample_ratio_mismatch(
    rate: float,
) -> None:
    """The candidate's calls reach the store only two times in three: its share of
    calls is ~6.9 % at 10 %. Held (never rolled back), with the reason, within 15
    minutes, in every seed."""
    losing = SideModel(p95_ms=400.0, error_rate=0.005, recorded=2 / 3)
    for seed in range(10):
        r = run(RATIO, Traffic(rate, HEALTHY, losing), seed)
        assert not rolled_back(r)
        holds = [e for e in r.timeline if e.action == "hold"]
        assert holds, r.timeline
        assert "sample ratio (candidate share 10.00%) failed" in holds[0].summary
        assert "the sides' calls are not comparable" in holds[0].summary
        assert holds[0].at <= 15 * 60 + 60 or rate < 50


@pytest.mark.parametrize("rate", [1.0, 50.0, 500.0])
def test_a_candidate_that_records_every_call_is_never_held_for_its_sample_ratio(
    rate: float,
) -> None:
    for seed in range(10):
        r = run(RATIO, Traffic(rate, HEALTHY, HEALTHY), seed)
        assert not [e for e in r.timeline if "sample ratio" in e.summary], r.timeline


def test_srm_false_turns_the_guardrail_off() -> None:
    losing = SideModel(p95_ms=400.0, error_rate=0.005, recorded=2 / 3)
    r = run(RATIO + "srm: false\n", Traffic(50.0, HEALTHY, losing), 0)
    assert r.state == "completed"


def test_srm_and_bake_refuse_bad_values_naming_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        load_plan(RATIO + "srm: maybe\n", "p.yaml")
    assert err.value.field == "srm" and "true" in err.value.message
    with pytest.raises(ValidationError) as err:
        load_plan(RATIO + "bake: a week\n", "p.yaml")
    assert err.value.field == "bake" and "7d" not in err.value.message
    assert "duration" in err.value.message


# --- bake ------------------------------------------------------------------------------------

BAKED = """
plan: baked
interval: 1m
guardrails: ["error_rate < 5%"]
bake: 1h
phases:
  - {name: p50, percentage: 50, duration: 20m}
  - {name: p100, percentage: 100, duration: 20m}
"""


def test_a_baked_plan_completes_only_after_its_bake() -> None:
    for seed in range(5):
        r = run(BAKED, Traffic(50.0, HEALTHY, HEALTHY), seed)
        assert r.state == "completed", r.timeline
        done = r.timeline[-1]
        assert done.action == "complete" and done.at >= 40 * 60 + 3600
        assert "and 1h of baking: rollout complete" in done.summary


def test_a_regression_while_baking_still_rolls_back() -> None:
    """The candidate starts failing 20 % of calls 30 minutes into the bake."""
    spike = Change(40 * 60 + 30 * 60, SideModel(p95_ms=400.0, error_rate=0.20))
    for seed in range(5):
        r = run(BAKED, Traffic(50.0, HEALTHY, HEALTHY, changes=(spike,)), seed)
        back = next(e for e in r.timeline if e.action.startswith("rollback"))
        assert spike.at < back.at <= spike.at + 5 * 60
        assert back.percentage == 50 and "P1: rolling back to phase 'p50'" in back.summary
        assert "error_rate" in back.summary and "failed" in back.summary


# --- seed 002's example ----------------------------------------------------------------------


def seed_002(hours_for_days: bool = True) -> str:
    """The example with hours for days (as ``test_examples_simulate.py`` does)."""
    data = yaml.safe_load((EXAMPLES / "seed-002-langgraph-cutover.yaml").read_text())
    for phase in data["phases"]:
        phase["duration"] = f"{parse_seconds(phase['duration'], 'duration') / 24:g}s"
    data["bake"] = f"{parse_seconds(data['bake'], 'bake') / 24:g}s"
    return yaml.safe_dump(data)


def lead_agent(routing_failure: float) -> SideModel:
    return SideModel(
        p95_ms=1200.0,
        error_rate=0.004,
        outcomes=(("routing_failure", routing_failure), ("booked", 0.3)),
        scores=(("csat", 4.4, 0.9),),
    )


def test_seed_002_fails_a_candidate_with_8_percent_routing_failures() -> None:
    """The seed asks for agent routing accuracy above 95 %: 8 % failures against
    legacy's 1 % are rolled back in the first phase, in every seed."""
    source = seed_002()
    for seed in range(5):
        r = run(source, Traffic(5.0, lead_agent(0.01), lead_agent(0.08)), seed)
        back = next(e for e in r.timeline if e.action.startswith("rollback"))
        assert back.phase == "(not started)"
        assert "outcome.routing_failure < 5% failed" in back.summary


def test_seed_002_completes_a_healthy_candidate_after_its_bake() -> None:
    source = seed_002()
    r = run(source, Traffic(5.0, lead_agent(0.01), lead_agent(0.01)), 3)
    assert r.state == "completed", r.timeline
    assert "baking" in " ".join(e.summary for e in r.timeline) or r.timeline[-1].at >= (
        8 * 3600 + 2 * 3600
    )

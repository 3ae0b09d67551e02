"""Agents, the runtime config's defaults, key handling, cost and load-test acceptance."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from switchover.core.agents import (
    Agent,
    masked,
    parse_agent,
    parse_campaign,
    runtime_config,
    runtime_config_answer,
)
from switchover.core.cost import estimate
from switchover.core.loadtest import LoadtestReport, acceptance
from switchover.errors import ValidationError


def test_runtime_config_fills_the_seeds_defaults_and_null_keys() -> None:
    cfg = runtime_config(Agent("a1", "Bare"), {})
    assert cfg == {
        "agent_id": "a1",
        "name": "Bare",
        "livekit_agent_name": "core-voice-worker",
        "system_prompt": "You are a helpful AI assistant.",
        "personality": None,
        "voice_id": "default",
        "llm_provider": "openai",
        "llm_model": "gpt-4o-mini",
        "temperature": 0.7,
        "llm_api_key": None,
        "tts_provider": "cartesia",
        "tts_api_key": None,
        "stt_provider": "assemblyai",
        "stt_api_key": None,
        "livekit_url": None,
        "livekit_api_key": None,
        "livekit_api_secret": None,
        "max_concurrent_calls": 3,
        "campaign_id": None,
        "is_primary": None,
    }


def test_runtime_config_keeps_the_agents_values_including_temperature_zero() -> None:
    agent = parse_agent(
        {"id": "a1", "name": "Cold", "temperature": 0, "voice_id": "echo", "llm_model": "gpt-4o"}
    ).agent
    cfg = runtime_config(agent, {"llm_api_key": "sk-x"}, campaign_id="c1", is_primary=True)
    assert cfg["temperature"] == 0.0 and cfg["voice_id"] == "echo" and cfg["llm_model"] == "gpt-4o"
    assert cfg["llm_api_key"] == "sk-x" and cfg["campaign_id"] == "c1" and cfg["is_primary"]
    assert masked(cfg)["llm_api_key"] == "<set>" and masked(cfg)["tts_api_key"] is None


def test_cached_until_is_five_minutes_ahead_in_utc() -> None:
    answer = runtime_config_answer({}, datetime(2025, 10, 16, 14, 19, tzinfo=UTC))
    assert answer["success"] is True and answer["cached_until"] == "2025-10-16T14:24:00.000Z"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"id": "bad id!", "name": "x"}, "id"),
        ({"id": "a", "name": ""}, "name"),
        ({"id": "a", "name": "x", "temperature": 3}, "temperature"),
        ({"id": "a", "name": "x", "llm_provider": "skynet"}, "llm_provider"),
        ({"id": "a", "name": "x", "max_concurrent_calls": 0}, "max_concurrent_calls"),
        ({"id": "a", "name": "x", "livekit_url": "http://x"}, "livekit_url"),
        ({"id": "a", "name": "x", "sytem_prompt": "typo"}, "sytem_prompt"),
        ({"id": "a", "name": "x", "keys": {"openai": "sk"}}, "keys"),
        ({"id": "a", "name": "x", "keys": {"llm_api_key": {"env": "NOPE_NOT_SET"}}}, "keys"),
    ],
)
def test_bad_agents_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_agent(data)
    assert info.value.field == field


def test_a_campaign_has_at_most_one_primary_and_no_duplicates() -> None:
    with pytest.raises(ValidationError, match="more than one agent is primary"):
        parse_campaign(
            {
                "id": "c",
                "agents": [
                    {"agent_id": "a", "is_primary": True},
                    {"agent_id": "b", "is_primary": True},
                ],
            }
        )
    with pytest.raises(ValidationError, match="listed twice"):
        parse_campaign({"id": "c", "agents": ["a", "a"]})


def test_cost_estimate_matches_seed_000s_numbers() -> None:
    e = estimate(40, 20, 2, 60).to_dict()
    assert (e["before_monthly"], e["after_monthly"], e["saving_monthly"]) == (800, 120, 680)
    assert e["saving_pct"] == 85.0 and e["saving_yearly"] == 8160
    with pytest.raises(ValidationError):
        estimate(-1, 20, 2, 60)


def _report(**kw: object) -> LoadtestReport:
    base: dict = dict(
        duration_s=300,
        concurrent=10,
        agents=["a"],
        total_calls=50,
        succeeded=50,
        refused=0,
        errors=0,
        avg_config_fetch_ms=1.0,
        cache_hits=48,
        cache_misses=2,
        avg_session_start_ms=5.0,
        avg_latency_ms=1200.0,
        p95_latency_ms=1800.0,
        max_latency_ms=2100.0,
        cpu_percent=(45, 60),
        memory_mb=(512, 530),
        memory_growth=0.03,
        peak_active_jobs=10,
        max_queue_depth=0,
    )
    base.update(kw)
    return LoadtestReport(**base)


def test_the_seeds_example_run_passes_every_criterion() -> None:
    assert all(c.passed for c in acceptance(_report()))


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        ({"succeeded": 49, "errors": 1}, "success rate"),
        ({"avg_latency_ms": 2500.0}, "average latency"),
        ({"cache_hits": 40, "cache_misses": 10}, "cache hit rate"),
        ({"memory_growth": 0.5}, "memory stable"),
    ],
)
def test_each_criterion_fails_on_its_own(change: dict, failing: str) -> None:
    failed = [c.name for c in acceptance(_report(**change)) if not c.passed]
    assert len(failed) == 1 and failed[0].startswith(failing)


def test_no_calls_fails_rather_than_passing_vacuously() -> None:
    r = _report(total_calls=0, succeeded=0, cache_hits=0, cache_misses=0, avg_latency_ms=None)
    assert not any(c.passed for c in acceptance(r)[:3])

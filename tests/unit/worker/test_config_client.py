"""The worker's config cache: TTL, single-flight, stale-if-error, keys from the environment.

A fetch function stands in for the control plane (the HTTP path is covered end to end in
tests/e2e/test_worker_backend.py); a ManualClock moves time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from switchover.core.clock import ManualClock
from switchover.worker.config_client import ConfigClient, ConfigRejected, ConfigUnavailable


class Backend:
    """Counts fetches; can be slow, down, or refuse."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0
        self.down = False
        self.reject: int | None = None
        self.prompt = "v1"
        self._lock = threading.Lock()

    def __call__(self, agent_id: str, campaign_id: str | None) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        if self.down:
            raise ConfigUnavailable("backend down")
        if self.reject is not None:
            raise ConfigRejected(self.reject, "inactive", f"agent {agent_id!r} is not active")
        return {
            "agent_id": agent_id,
            "system_prompt": self.prompt,
            "llm_provider": "openai",
            "tts_provider": "cartesia",
            "stt_provider": "assemblyai",
            "llm_api_key": "sk-agent-own" if agent_id == "with-key" else None,
            "tts_api_key": None,
            "stt_api_key": None,
            "livekit_url": None,
            "livekit_api_key": None,
            "livekit_api_secret": None,
            "campaign_id": campaign_id,
        }


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_ttl_serves_from_cache_until_it_expires_then_fetches_again() -> None:
    backend, clock = Backend(), ManualClock()
    client = ConfigClient(backend, ttl=300, clock=clock)
    first = run(client.get("a1", "c1"))
    assert (first.source, backend.calls) == ("fetch", 1)
    backend.prompt = "v2"
    clock.advance(299)
    assert run(client.get("a1", "c1")).config["system_prompt"] == "v1"
    clock.advance(2)
    again = run(client.get("a1", "c1"))
    assert (again.source, again.config["system_prompt"], backend.calls) == ("fetch", "v2", 2)
    assert client.stats.to_dict()["hits"] == 1 and client.stats.misses == 2


def test_campaigns_are_cached_apart() -> None:
    backend = Backend()
    client = ConfigClient(backend, clock=ManualClock())
    run(client.get("a1", "c1"))
    run(client.get("a1", "c2"))
    assert backend.calls == 2


def test_one_hundred_jobs_starting_at_once_cause_one_fetch() -> None:
    backend = Backend(delay=0.05)
    client = ConfigClient(backend, clock=ManualClock())

    async def burst() -> list[Any]:
        return await asyncio.gather(*(client.get("a1", "c1") for _ in range(100)))

    results = run(burst())
    assert backend.calls == 1
    assert {r.config["system_prompt"] for r in results} == {"v1"}
    assert client.stats.fetches == 1 and client.stats.coalesced == 99


def test_single_flight_holds_across_threads_with_their_own_loops() -> None:
    backend = Backend(delay=0.05)
    client = ConfigClient(backend, clock=ManualClock())
    got: list[str] = []

    def job() -> None:
        got.append(asyncio.run(client.get("a1")).config["agent_id"])

    threads = [threading.Thread(target=job) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["a1"] * 20 and backend.calls == 1


def test_backend_down_serves_the_last_config_up_to_the_maximum_staleness() -> None:
    backend, clock = Backend(), ManualClock()
    client = ConfigClient(backend, ttl=300, max_staleness=3600, error_backoff=5, clock=clock)
    run(client.get("a1"))
    backend.down = True
    clock.advance(600)
    stale = run(client.get("a1"))
    assert stale.source == "stale" and stale.config["system_prompt"] == "v1"
    calls = backend.calls
    run(client.get("a1"))  # within the back-off: no new fetch
    assert backend.calls == calls
    assert client.stats.stale_served == 2 and client.stats.fetch_errors == 1
    clock.advance(3600)
    with pytest.raises(ConfigUnavailable):
        run(client.get("a1"))


def test_backend_back_up_refreshes_after_the_backoff() -> None:
    backend, clock = Backend(), ManualClock()
    client = ConfigClient(backend, ttl=10, error_backoff=5, clock=clock)
    run(client.get("a1"))
    backend.down = True
    clock.advance(11)
    assert run(client.get("a1")).source == "stale"
    backend.down, backend.prompt = False, "v2"
    clock.advance(6)
    fresh = run(client.get("a1"))
    assert (fresh.source, fresh.config["system_prompt"]) == ("fetch", "v2")


def test_nothing_cached_and_backend_down_raises() -> None:
    backend = Backend()
    backend.down = True
    with pytest.raises(ConfigUnavailable):
        run(ConfigClient(backend, clock=ManualClock()).get("a1"))


def test_a_deactivated_agent_is_not_served_stale() -> None:
    backend, clock = Backend(), ManualClock()
    client = ConfigClient(backend, ttl=10, clock=clock)
    run(client.get("a1"))
    backend.reject = 400
    clock.advance(11)
    with pytest.raises(ConfigRejected) as info:
        run(client.get("a1"))
    assert info.value.status == 400
    backend.reject = None
    assert run(client.get("a1")).source == "fetch"  # the entry was dropped, not kept
    assert client.stats.rejected == 1


def test_missing_keys_come_from_the_environment_and_own_keys_win() -> None:
    env = {"OPENAI_API_KEY": "sk-env-openai", "LIVEKIT_API_KEY": "lk-env", "LIVEKIT_URL": "wss://x"}
    client = ConfigClient(Backend(), clock=ManualClock(), env=env)
    shared = run(client.get("no-key"))
    assert shared.config["llm_api_key"] == "sk-env-openai"
    assert shared.key_sources["llm_api_key"] == "env:OPENAI_API_KEY"
    assert shared.key_sources["tts_api_key"] == "missing"  # CARTESIA_API_KEY not set
    assert shared.config["livekit_url"] == "wss://x"
    own = run(client.get("with-key"))
    assert own.config["llm_api_key"] == "sk-agent-own" and own.key_sources["llm_api_key"] == "agent"
    assert "sk-" not in repr(own.key_sources) and client.stats.env_fallbacks >= 3

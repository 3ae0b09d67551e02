"""``switchover.openfeature.SwitchoverProvider`` through the OpenFeature SDK's own client:
the same sides as ``decide()``, its metadata, its events and ``track()``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from switchover.core.clock import ManualClock
from switchover.core.migration import Migration, Override
from switchover.sdk.backends.memory import MemoryBackend
from switchover.sdk.client import Client

api = pytest.importorskip("openfeature.api", reason="pip install -e '.[test]' (openfeature-sdk)")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.event import EventDetails, ProviderEvent  # noqa: E402
from openfeature.exception import ErrorCode  # noqa: E402
from openfeature.flag_evaluation import Reason  # noqa: E402
from openfeature.provider import ProviderStatus  # noqa: E402
from openfeature.track import TrackingEventDetails  # noqa: E402

from switchover.openfeature import SwitchoverProvider  # noqa: E402

VOICE = Migration(
    "voice_v2",
    percentage=40,
    features={"stt": True, "tts": False},
    tenants={"acme": Override.ALLOW, "globex": Override.DENY},
    version=3,
)
DOMAIN = "switchover-provider-test"


@pytest.fixture
def world() -> Iterator[tuple[MemoryBackend, Client, ManualClock, SwitchoverProvider]]:
    clock = ManualClock()
    backend = MemoryBackend([VOICE], clock=clock)
    client = Client(backend, clock=clock, background=False)
    provider = SwitchoverProvider(client, flag="voice_v2.stt", check_interval=None)
    api.set_provider_and_wait(provider, domain=DOMAIN)
    try:
        yield backend, client, clock, provider
    finally:
        api.clear_providers()
        client.close()


def test_the_stock_client_gets_the_sides_decide_gives(world) -> None:
    _, client, _, _ = world
    of = api.get_client(DOMAIN)
    handle = client.migration("voice_v2")
    for i in range(2000):
        tenant = ("acme", "globex", None, None, None)[i % 5]
        attributes = {} if tenant is None else {"tenant_id": tenant}
        details = of.get_boolean_details(
            "voice_v2.stt", False, EvaluationContext(f"user-{i}", attributes)
        )
        d = handle.decide("stt", {"user_id": f"user-{i}", **attributes})
        assert details.value is d.candidate
        assert details.variant == d.side.value
        assert details.reason == (Reason.TARGETING_MATCH if tenant else Reason.SPLIT)
        assert details.flag_metadata["switchover_reason"] == d.reason.value
    side = of.get_string_value("voice_v2", "none", EvaluationContext("user-1"))
    assert side == handle.decide(None, {"user_id": "user-1"}).side.value


def test_errors_come_back_as_data_with_the_default(world) -> None:
    of = api.get_client(DOMAIN)
    missing = of.get_boolean_details("voice_v2.nope", True, EvaluationContext("u"))
    assert (missing.value, missing.error_code, missing.reason) == (
        True,
        ErrorCode.FLAG_NOT_FOUND,
        Reason.ERROR,
    )
    no_key = of.get_boolean_details("voice_v2.stt", True, EvaluationContext())
    assert (no_key.value, no_key.error_code) == (True, ErrorCode.TARGETING_KEY_MISSING)
    off = of.get_boolean_details("voice_v2.tts", True, EvaluationContext("u"))
    assert (off.value, off.reason, off.variant) == (False, Reason.DISABLED, "legacy")
    number = of.get_integer_details("voice_v2", 7, EvaluationContext("u"))
    assert (number.value, number.error_code) == (7, ErrorCode.TYPE_MISMATCH)


def test_metadata_and_ready(world) -> None:
    *_, provider = world
    assert api.get_provider_metadata(DOMAIN).name == "switchover"
    assert api.get_client(DOMAIN).get_provider_status() == ProviderStatus.READY
    assert provider.get_metadata().name == "switchover"


def test_stale_then_ready_then_changed_flags(world) -> None:
    backend, client, clock, provider = world
    seen: list[tuple[ProviderEvent, EventDetails]] = []
    of = api.get_client(DOMAIN)
    for event in (
        ProviderEvent.PROVIDER_STALE,
        ProviderEvent.PROVIDER_READY,
        ProviderEvent.PROVIDER_CONFIGURATION_CHANGED,
    ):
        of.add_handler(event, lambda details, event=event: seen.append((event, details)))
    _events(seen, 1)  # a READY handler added to a ready provider runs at once
    seen.clear()

    clock.advance(client.stale_after + 1)  # no refresh confirmed since: a hung store
    provider.check()
    assert _events(seen, 1) == [ProviderEvent.PROVIDER_STALE]
    assert of.get_provider_status() == ProviderStatus.STALE
    # stale still answers from the last snapshot
    assert of.get_boolean_details("voice_v2.stt", False, EvaluationContext("u")).error_code is None

    backend.put(replace(VOICE, percentage=60, version=4))
    client.refresh()
    provider.check()
    assert _events(seen, 3)[1:] == [
        ProviderEvent.PROVIDER_READY,
        ProviderEvent.PROVIDER_CONFIGURATION_CHANGED,
    ]
    assert seen[-1][1].flags_changed == ["voice_v2", "voice_v2.stt", "voice_v2.tts"]
    assert of.get_provider_status() == ProviderStatus.READY


def _events(seen: list[tuple[ProviderEvent, EventDetails]], n: int) -> list[ProviderEvent]:
    """The SDK runs handlers on its own threads: wait (up to 5 s) for ``n`` events."""
    deadline = time.monotonic() + 5
    while len(seen) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # and no more than those
    return [e for e, _ in seen]


def test_initialize_refuses_without_a_snapshot() -> None:
    class Down(MemoryBackend):
        """A store that cannot be reached (the edge of the world)."""

        def version(self) -> int:
            raise ConnectionError("connection refused")

    client = Client(Down([VOICE]), background=False)
    try:
        api.set_provider(SwitchoverProvider(client, check_interval=None), domain=DOMAIN)
        of = api.get_client(DOMAIN)
        for _ in range(100):
            if of.get_provider_status() != ProviderStatus.NOT_READY:
                break
            time.sleep(0.01)
        assert of.get_provider_status() == ProviderStatus.ERROR
        assert of.get_boolean_value("voice_v2", True, EvaluationContext("u")) is True
    finally:
        api.clear_providers()
        client.close()


def test_track_records_the_outcome_for_the_side(world) -> None:
    backend, client, _, _ = world
    of = api.get_client(DOMAIN)
    handle = client.migration("voice_v2")
    users = [f"user-{i}" for i in range(40)]
    for user in users:
        of.track("booked", EvaluationContext(user), TrackingEventDetails(value=2))
    of.track(
        "escalated",
        EvaluationContext("user-1"),
        TrackingEventDetails(attributes={"flag": "voice_v2", "operation": "call"}),
    )
    of.track("lost", EvaluationContext("u"), TrackingEventDetails(attributes={"flag": "nope"}))
    client.recorder.flush()
    totals: dict[tuple[str, str, str], float] = {}
    for key, rollup in backend.rollups:
        for name, value in rollup.outcomes.items():
            k = (key.operation, key.side, name)
            totals[k] = totals.get(k, 0.0) + value
    on_candidate = sum(handle.decide("stt", {"user_id": u}).candidate for u in users)
    assert 0 < on_candidate < len(users)
    assert totals[("stt", "candidate", "booked")] == 2 * on_candidate
    assert totals[("stt", "legacy", "booked")] == 2 * (len(users) - on_candidate)
    side = handle.decide(None, {"user_id": "user-1"}).side.value
    assert totals[("call", side, "escalated")] == 1
    assert not any(name == "lost" for *_, name in totals)

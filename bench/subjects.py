"""The three decision engines under test, each set up offline for the same rollout.

Every subject answers one question per key: is this caller in the 25 % rollout of
``stt`` (migration/group ``voice_v2``, stickiness on the user id)?

* switchover: ``client.migration("voice_v2").decide("stt", {"user_id": key})`` from a
  real SQLite store, through ``switchover.sdk.connect`` (background refresh on).
* UnleashClient 6: a ``FileCache`` bootstrapped with one ``flexibleRollout`` strategy
  (rollout 25, stickiness userId, groupId voice_v2), registration and metrics off,
  ``initialize_client(fetch_toggles=False)`` so the OfflineConnector only reads the
  cache; the URL points at a closed loopback port and is never contacted.
* GrowthBook 4: a force rule with ``coverage 0.25``, ``hashAttribute "id"``,
  ``hashVersion 2``, from local features (no client key, so no fetch). Two per-call
  paths: the sync ``GrowthBook`` (``set_attributes`` + ``is_on`` on one shared
  instance) and the async ``GrowthBookClient.is_on(key, UserContext)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIGRATION = "voice_v2"
FEATURE = "stt"
PERCENTAGE = 25
OFFLINE_URL = "http://127.0.0.1:9/api"


@dataclass
class Subject:
    name: str
    make_contexts: Callable[[Sequence[str]], list[Any]]
    """Turn keys into the per-call argument the library takes (built outside timing)."""
    run: Callable[[Sequence[Any]], object]
    """Call the library once per context, discarding the answers (the timed loop)."""
    collect: Callable[[Sequence[Any]], list[bool]]
    """Call the library once per context and return 'in the rollout' per context."""
    close: Callable[[], None]


@dataclass
class AsyncSubject:
    name: str
    make_contexts: Callable[[Sequence[str]], list[Any]]
    run: Callable[[Sequence[Any]], Awaitable[object]]
    collect: Callable[[Sequence[Any]], Awaitable[list[bool]]]
    close: Callable[[], Awaitable[None]]


# switchover ---------------------------------------------------------------------------


def create_store(path: Path) -> str:
    """A fresh SQLite store holding the benchmark migration; returns its URL."""
    from switchover.rollout import RolloutService
    from switchover.store import Store, upgrade

    url = f"sqlite:///{path}"
    store = Store.from_url(url)
    upgrade(store.engine)
    svc = RolloutService(store)
    svc.create(MIGRATION, features=[FEATURE], stickiness="user_id", actor="bench")
    svc.set_feature(MIGRATION, FEATURE, True, actor="bench")
    svc.set_percentage(MIGRATION, PERCENTAGE, actor="bench")
    store.engine.dispose()
    return url


def switchover_subject(url: str) -> Subject:
    import switchover.sdk as sdk

    client = sdk.connect(url)
    m = client.migration(MIGRATION)
    decide = m.decide

    probe = decide(FEATURE, {"user_id": "probe"})
    if probe.reason.value not in ("bucket_in", "bucket_out"):
        client.close()
        raise RuntimeError(f"switchover is not deciding by bucket: {probe!r}")

    def make_contexts(keys: Sequence[str]) -> list[Any]:
        return [{"user_id": k} for k in keys]

    def run(contexts: Sequence[Any]) -> None:
        for c in contexts:
            decide(FEATURE, c)

    def collect(contexts: Sequence[Any]) -> list[bool]:
        out = []
        for c in contexts:
            d = decide(FEATURE, c)
            if d.reason.value not in ("bucket_in", "bucket_out"):
                raise RuntimeError(f"unexpected decision for {c}: {d!r}")
            out.append(d.side == "candidate")
        return out

    return Subject("switchover", make_contexts, run, collect, client.close)


# UnleashClient ------------------------------------------------------------------------


def unleash_bootstrap() -> dict[str, Any]:
    return {
        "version": 2,
        "features": [
            {
                "name": FEATURE,
                "type": "release",
                "enabled": True,
                "impressionData": False,
                "strategies": [
                    {
                        "name": "flexibleRollout",
                        "parameters": {
                            "rollout": str(PERCENTAGE),
                            "stickiness": "userId",
                            "groupId": MIGRATION,
                        },
                        "constraints": [],
                    }
                ],
            }
        ],
    }


def unleash_subject(cache_dir: Path) -> Subject:
    from UnleashClient import UnleashClient
    from UnleashClient.cache import FileCache

    cache = FileCache("switchover-bench", directory=str(cache_dir))
    cache.bootstrap_from_dict(unleash_bootstrap())
    client = UnleashClient(
        url=OFFLINE_URL,
        app_name="switchover-bench",
        disable_metrics=True,
        disable_registration=True,
        cache=cache,
        refresh_interval=3600,  # the offline cache reload job stays idle while timing
    )
    client.initialize_client(fetch_toggles=False)
    if FEATURE not in client.feature_definitions():
        client.destroy()
        raise RuntimeError("UnleashClient did not load the bootstrapped toggle")
    is_enabled = client.is_enabled

    def make_contexts(keys: Sequence[str]) -> list[Any]:
        return [{"userId": k} for k in keys]

    def run(contexts: Sequence[Any]) -> None:
        for c in contexts:
            is_enabled(FEATURE, c)

    def collect(contexts: Sequence[Any]) -> list[bool]:
        return [bool(is_enabled(FEATURE, c)) for c in contexts]

    return Subject("UnleashClient", make_contexts, run, collect, client.destroy)


# GrowthBook ---------------------------------------------------------------------------


def growthbook_features() -> dict[str, Any]:
    return {
        FEATURE: {
            "defaultValue": False,
            "rules": [
                {
                    "id": "rollout-25",
                    "force": True,
                    "coverage": PERCENTAGE / 100,
                    "hashAttribute": "id",
                    "hashVersion": 2,
                    "seed": MIGRATION,
                }
            ],
        }
    }


def growthbook_subject() -> Subject:
    from growthbook import GrowthBook

    gb = GrowthBook(features=growthbook_features())
    set_attributes = gb.set_attributes
    is_on = gb.is_on

    def make_contexts(keys: Sequence[str]) -> list[Any]:
        return [{"id": k} for k in keys]

    def run(contexts: Sequence[Any]) -> None:
        for c in contexts:
            set_attributes(c)
            is_on(FEATURE)

    def collect(contexts: Sequence[Any]) -> list[bool]:
        out = []
        for c in contexts:
            set_attributes(c)
            out.append(bool(is_on(FEATURE)))
        return out

    return Subject("GrowthBook", make_contexts, run, collect, gb.destroy)


async def growthbook_async_subject() -> AsyncSubject:
    from growthbook import GrowthBookClient, UserContext

    client = GrowthBookClient(
        {"api_host": "http://127.0.0.1:9", "client_key": "sdk-bench", "refresh_strategy": None}
    )
    await client.set_features(growthbook_features())  # local payload; initialize() would fetch
    is_on = client.is_on

    def make_contexts(keys: Sequence[str]) -> list[Any]:
        return [UserContext(attributes={"id": k}) for k in keys]

    async def run(contexts: Sequence[Any]) -> None:
        for c in contexts:
            await is_on(FEATURE, c)

    async def collect(contexts: Sequence[Any]) -> list[bool]:
        return [bool(await is_on(FEATURE, c)) for c in contexts]

    return AsyncSubject("GrowthBookClient (async)", make_contexts, run, collect, client.close)

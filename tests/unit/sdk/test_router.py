"""The router: fallback to legacy, shadow comparison, outcomes and structured logs.

A small in-memory snapshot source stands in for the store and a ``MemorySink`` keeps
what the recorder flushes, so every test reads back exactly what it recorded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from switchover.core.migration import Migration
from switchover.core.rollup import Rollup, RollupKey
from switchover.errors import ValidationError
from switchover.sdk.client import Client, MigrationHandle
from switchover.sdk.recorder import MemorySink, Recorder

NAME = "voice_v2"
CTX = {"user_id": "u1", "tenant_id": "t1"}
PHONE = "+1 415 555 0100"
PHONE2 = "0044 20 7946 0958"
EMAIL = "jane.doe@example.com"
API_KEY = "sk-abc123def456ghi789"
PII = (PHONE, PHONE2, EMAIL, API_KEY)


class FixedSource:
    """A snapshot source that always serves the same migrations."""

    def __init__(self, migrations: Sequence[Migration]) -> None:
        self.migrations = list(migrations)

    def version(self) -> int:
        return 1

    def load(self) -> tuple[int, list[Migration]]:
        return 1, list(self.migrations)

    def wait_for_change(self, timeout: float, stop: threading.Event) -> None:
        stop.wait(timeout)

    def close(self) -> None:
        return None


class Hook:
    """An error hook that remembers what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, BaseException]] = []

    def __call__(self, what: str, exc: BaseException) -> None:
        self.calls.append((what, exc))


class Env:
    def __init__(self, client: Client, sink: MemorySink, hook: Hook) -> None:
        self.client = client
        self.sink = sink
        self.hook = hook
        self.m: MigrationHandle = client.migration(NAME)

    def rollups(self) -> dict[tuple[str, str], Rollup]:
        """Flush and merge what was recorded, per (operation, side)."""
        assert self.client.recorder.flush()
        out: dict[tuple[str, str], Rollup] = {}
        for key, rollup in self.sink.rollups:
            assert key.migration == NAME
            out.setdefault((key.operation, key.side), Rollup()).merge(rollup)
        return out

    def one(self, operation: str, side: str) -> Rollup:
        return self.rollups()[(operation, side)]


def _env(
    *,
    percentage: int = 100,
    enabled: bool = True,
    features: dict[str, bool] | None = None,
    max_samples: int = 1000,
    recorder: Recorder | None = None,
    sink: MemorySink | None = None,
) -> Env:
    m = Migration(
        name=NAME,
        enabled=enabled,
        percentage=percentage,
        features=features if features is not None else {"tts": True, "stt": True},
    )
    sink = sink or MemorySink()
    recorder = recorder or Recorder(sink, background=False, max_samples=max_samples)
    hook = Hook()
    client = Client(FixedSource([m]), background=False, recorder=recorder, error_hook=hook)
    return Env(client, sink, hook)


@pytest.fixture
def env() -> Iterator[Env]:
    e = _env()
    yield e
    e.client.close()


@pytest.fixture
def legacy_env() -> Iterator[Env]:
    e = _env(percentage=0)
    yield e
    e.client.close()


class Boom(Exception):
    pass


class LegacyDown(Exception):
    pass


# --- route: candidate failures fall back to legacy --------------------------------------


def test_candidate_exception_returns_legacy_result_and_records_the_fallback(env: Env) -> None:
    async def candidate(text: str) -> str:
        raise Boom("candidate broke")

    async def legacy(text: str) -> str:
        return f"legacy:{text}"

    result = asyncio.run(env.m.route("tts", CTX, "hi", legacy=legacy, candidate=candidate))
    assert result == "legacy:hi"
    r = env.one("tts", "candidate")
    assert (r.count, r.errors, r.fallbacks, r.total_failures) == (1, 1, 1, 0)
    assert r.error_types == {"Boom": 1}


def test_candidate_success_is_served_and_recorded(env: Env) -> None:
    async def candidate(text: str) -> str:
        return f"cand:{text}"

    def legacy(text: str) -> str:  # never called
        raise AssertionError("legacy must not run")

    assert asyncio.run(env.m.route("tts", CTX, "hi", legacy=legacy, candidate=candidate)) == (
        "cand:hi"
    )
    r = env.one("tts", "candidate")
    assert (r.count, r.errors, r.fallbacks) == (1, 0, 0)


def test_candidate_hanging_past_its_timeout_falls_back_quickly(env: Env) -> None:
    env.m.configure("tts", timeout=0.05)

    async def candidate() -> str:
        await asyncio.sleep(5)
        return "late"

    async def legacy() -> str:
        return "legacy"

    started = time.perf_counter()
    result = asyncio.run(env.m.route("tts", CTX, legacy=legacy, candidate=candidate))
    elapsed = time.perf_counter() - started
    assert result == "legacy"
    assert elapsed < 1.0
    r = env.one("tts", "candidate")
    assert (r.errors, r.fallbacks) == (1, 1)
    assert r.error_types == {"timeout": 1}
    assert r.sketch.max is not None and 40 <= r.sketch.max < 1000  # the time it was given


def test_per_call_timeout_overrides_the_operation_timeout(env: Env) -> None:
    async def candidate() -> str:
        await asyncio.sleep(5)
        return "late"

    started = time.perf_counter()
    result = asyncio.run(
        env.m.route("tts", CTX, legacy=lambda: "legacy", candidate=candidate, timeout=0.05)
    )
    assert result == "legacy"
    assert time.perf_counter() - started < 1.0
    assert env.one("tts", "candidate").error_types == {"timeout": 1}


def test_legacy_failing_after_the_candidate_is_a_total_failure(env: Env) -> None:
    cand_exc = Boom("candidate broke")
    legacy_exc = LegacyDown("legacy broke too")

    async def candidate() -> str:
        raise cand_exc

    async def legacy() -> str:
        raise legacy_exc

    with pytest.raises(LegacyDown) as info:
        asyncio.run(env.m.route("tts", CTX, legacy=legacy, candidate=candidate))
    assert info.value is legacy_exc
    assert info.value.candidate_error is cand_exc  # type: ignore[attr-defined]
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "Boom" in notes and "candidate broke" in notes
    r = env.one("tts", "candidate")
    assert (r.count, r.errors, r.total_failures) == (1, 1, 1)
    assert r.error_types == {"Boom": 1}


def test_legacy_chosen_directly_that_fails_is_reraised_unchanged(legacy_env: Env) -> None:
    exc = KeyError("missing")
    ran: list[str] = []

    async def candidate() -> str:
        ran.append("candidate")
        return "cand"

    async def legacy() -> str:
        raise exc

    with pytest.raises(KeyError) as info:
        asyncio.run(legacy_env.m.route("tts", CTX, legacy=legacy, candidate=candidate))
    assert info.value is exc
    assert not hasattr(info.value, "candidate_error")
    assert not getattr(info.value, "__notes__", [])
    assert ran == []
    r = legacy_env.rollups()
    assert ("tts", "candidate") not in r
    assert (r[("tts", "legacy")].count, r[("tts", "legacy")].errors) == (1, 1)
    assert r[("tts", "legacy")].error_types == {"KeyError": 1}


# --- route_sync: the same faults without an event loop -------------------------------------


def test_sync_candidate_exception_returns_legacy_result(env: Env) -> None:
    def candidate(text: str) -> str:
        raise Boom("candidate broke")

    assert env.m.route_sync(
        "tts", CTX, "hi", legacy=lambda t: f"legacy:{t}", candidate=candidate
    ) == ("legacy:hi")
    r = env.one("tts", "candidate")
    assert (r.count, r.errors, r.fallbacks) == (1, 1, 1)
    assert r.error_types == {"Boom": 1}


def test_sync_candidate_timeout_falls_back_through_a_thread(env: Env) -> None:
    env.m.configure("tts", timeout=0.05)
    release = threading.Event()

    def candidate() -> str:
        release.wait(5)
        return "late"

    try:
        started = time.perf_counter()
        assert env.m.route_sync("tts", CTX, legacy=lambda: "legacy", candidate=candidate) == (
            "legacy"
        )
        assert time.perf_counter() - started < 1.0
    finally:
        release.set()
    r = env.one("tts", "candidate")
    assert (r.errors, r.fallbacks) == (1, 1)
    assert r.error_types == {"timeout": 1}


def test_sync_total_failure_attaches_the_candidate_error(env: Env) -> None:
    cand_exc = Boom("candidate broke")
    legacy_exc = LegacyDown("legacy broke too")

    def candidate() -> str:
        raise cand_exc

    def legacy() -> str:
        raise legacy_exc

    with pytest.raises(LegacyDown) as info:
        env.m.route_sync("tts", CTX, legacy=legacy, candidate=candidate)
    assert info.value is legacy_exc
    assert info.value.candidate_error is cand_exc  # type: ignore[attr-defined]
    assert any("Boom" in n for n in getattr(info.value, "__notes__", []))
    assert env.one("tts", "candidate").total_failures == 1


def test_sync_legacy_chosen_directly_that_fails_is_reraised_unchanged(legacy_env: Env) -> None:
    exc = KeyError("missing")

    def legacy() -> str:
        raise exc

    with pytest.raises(KeyError) as info:
        legacy_env.m.route_sync("tts", CTX, legacy=legacy, candidate=lambda: "cand")
    assert info.value is exc
    assert not hasattr(info.value, "candidate_error")
    r = legacy_env.one("tts", "legacy")
    assert (r.count, r.errors, r.error_types) == (1, 1, {"KeyError": 1})


def test_sync_candidate_without_timeout_runs_in_the_callers_thread(env: Env) -> None:
    env.m.configure("tts", timeout=None)
    threads: list[int] = []

    def candidate() -> str:
        threads.append(threading.get_ident())
        return "cand"

    assert env.m.route_sync("tts", CTX, legacy=lambda: "legacy", candidate=candidate) == "cand"
    assert threads == [threading.get_ident()]


def test_configure_refuses_a_bad_timeout(env: Env) -> None:
    with pytest.raises(ValueError):
        env.m.configure("tts", timeout=0)
    with pytest.raises(ValueError):
        env.m.configure("tts", timeout=-1)


# --- arguments, the decorator, outcomes -----------------------------------------------------


def test_args_and_kwargs_reach_both_sides_unchanged(env: Env) -> None:
    seen: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    async def candidate(*args: Any, **kwargs: Any) -> str:
        seen.append(("candidate", args, kwargs))
        raise Boom("x")

    def legacy(*args: Any, **kwargs: Any) -> str:
        seen.append(("legacy", args, kwargs))
        return "legacy"

    asyncio.run(env.m.route("tts", CTX, "a", 2, legacy=legacy, candidate=candidate, voice="v"))
    env.m.route_sync(
        "tts", CTX, "b", legacy=legacy, candidate=lambda *a, **k: legacy(*a, **k), lang="en"
    )
    assert seen[0] == ("candidate", ("a", 2), {"voice": "v"})
    assert seen[1] == ("legacy", ("a", 2), {"voice": "v"})
    assert seen[2] == ("legacy", ("b",), {"lang": "en"})


def test_routed_decorator_on_an_async_candidate(env: Env) -> None:
    calls: list[tuple[str, str, str]] = []

    async def legacy_tts(text: str, *, voice: str = "default") -> str:
        calls.append(("legacy", text, voice))
        return f"legacy:{text}:{voice}"

    @env.m.routed("tts", legacy=legacy_tts)
    async def tts(text: str, *, voice: str = "default") -> str:
        """Speak."""
        calls.append(("candidate", text, voice))
        if text == "fail":
            raise Boom("no")
        return f"cand:{text}:{voice}"

    assert tts.__name__ == "tts" and tts.__doc__ == "Speak."
    assert asyncio.run(tts("hi", voice="x", context=CTX)) == "cand:hi:x"
    assert asyncio.run(tts("fail", context=CTX)) == "legacy:fail:default"
    # no context: no stickiness key, so legacy serves
    assert asyncio.run(tts("hi")) == "legacy:hi:default"
    assert calls == [
        ("candidate", "hi", "x"),
        ("candidate", "fail", "default"),
        ("legacy", "fail", "default"),
        ("legacy", "hi", "default"),
    ]
    r = env.rollups()
    assert (r[("tts", "candidate")].count, r[("tts", "candidate")].fallbacks) == (2, 1)
    assert r[("tts", "legacy")].count == 1


def test_routed_decorator_on_a_sync_candidate(env: Env) -> None:
    def legacy_tts(text: str) -> str:
        return f"legacy:{text}"

    @env.m.routed("tts", legacy=legacy_tts)
    def tts(text: str) -> str:
        if text == "fail":
            raise Boom("no")
        return f"cand:{text}"

    assert tts("hi", context=CTX) == "cand:hi"
    assert tts("fail", context=CTX) == "legacy:fail"
    assert tts("hi", context={"user_id": "u1"}) == "cand:hi"
    r = env.one("tts", "candidate")
    assert (r.count, r.fallbacks, r.error_types) == (3, 1, {"Boom": 1})


def test_routed_decorator_with_context_from_another_keyword_or_a_callable(env: Env) -> None:
    @env.m.routed("tts", legacy=lambda text: "legacy", context="ctx")
    def by_keyword(text: str) -> str:
        return "cand"

    @env.m.routed("tts", legacy=lambda user: "legacy", context=lambda user: {"user_id": user})
    def by_callable(user: str) -> str:
        return "cand"

    assert by_keyword("hi", ctx=CTX) == "cand"
    assert by_keyword("hi") == "legacy"
    assert by_callable("u9") == "cand"


def test_outcome_dict_and_callable_count_on_the_serving_side() -> None:
    for percentage, side in ((100, "candidate"), (0, "legacy")):
        e = _env(percentage=percentage)
        try:
            asyncio.run(
                e.m.route(
                    "tts",
                    CTX,
                    legacy=lambda: "abc",
                    candidate=lambda: "abcd",
                    outcome={"booked": 1},
                )
            )
            e.m.route_sync(
                "tts",
                CTX,
                legacy=lambda: "abc",
                candidate=lambda: "abcd",
                outcome=lambda result: {"chars": len(result)},
            )
            r = e.rollups()
            assert set(r) == {("tts", side)}
            chars = 4.0 if side == "candidate" else 3.0
            assert r[("tts", side)].outcomes == {"booked": 1.0, "chars": chars}
            assert r[("tts", side)].count == 2
        finally:
            e.client.close()


def test_outcome_of_a_fallback_is_counted_with_the_fallback(env: Env) -> None:
    def candidate() -> str:
        raise Boom("x")

    env.m.route_sync("tts", CTX, legacy=lambda: "ok", candidate=candidate, outcome={"booked": 1})
    r = env.one("tts", "candidate")
    assert (r.fallbacks, r.outcomes) == (1, {"booked": 1.0})


def test_a_failing_outcome_callable_does_not_break_the_call(env: Env) -> None:
    bad = ZeroDivisionError("no")

    def outcome(result: Any) -> dict[str, float]:
        raise bad

    assert (
        asyncio.run(
            env.m.route("tts", CTX, legacy=lambda: "l", candidate=lambda: "c", outcome=outcome)
        )
        == "c"
    )
    assert (
        env.m.route_sync("tts", CTX, legacy=lambda: "l", candidate=lambda: "c", outcome=outcome)
        == "c"
    )
    assert env.hook.calls == [("outcome", bad), ("outcome", bad)]
    r = env.one("tts", "candidate")
    assert (r.count, r.errors, r.outcomes) == (2, 0, {})


def test_an_outcome_callable_returning_garbage_does_not_break_the_call(env: Env) -> None:
    """A user callable returning a non-number must not turn a served call into an error."""

    def outcome(result: Any) -> dict[str, Any]:
        return {"booked": "yes"}

    result = env.m.route_sync(
        "tts", CTX, legacy=lambda: "l", candidate=lambda: "c", outcome=outcome
    )
    assert result == "c"
    r = env.one("tts", "candidate")
    assert r.count == 1
    assert r.outcomes == {}
    assert [what for what, _ in env.hook.calls] == ["outcome"]


def test_record_outcome_with_a_side_or_with_the_calls_context() -> None:
    for percentage, side in ((100, "candidate"), (0, "legacy")):
        e = _env(percentage=percentage)
        try:
            e.m.record_outcome("tts", {"booked": 1}, context=CTX)
            e.m.record_outcome("tts", {"booked": 2}, side="legacy")
            e.m.record_outcome("tts", {"delivered": 1}, side="candidate")
            r = e.rollups()
            expected = {"legacy": {"booked": 2.0}, "candidate": {"delivered": 1.0}}
            expected[side] = {**expected[side], "booked": expected[side].get("booked", 0) + 1}
            assert r[("tts", "legacy")].outcomes == expected["legacy"]
            assert r[("tts", "candidate")].outcomes == expected["candidate"]
            # outcomes are not calls
            assert r[("tts", "legacy")].count == r[("tts", "candidate")].count == 0
        finally:
            e.client.close()


def test_record_outcome_refuses_non_numbers(env: Env) -> None:
    with pytest.raises(ValidationError) as info:
        env.m.record_outcome("tts", {"booked": "yes"}, side="candidate")
    assert info.value.field == "outcome"
    with pytest.raises(ValueError):
        env.m.record_outcome("tts", {"booked": 1}, side="both")


@pytest.mark.parametrize(
    "migration_kw",
    [{"enabled": False}, {"features": {"tts": False, "stt": True}}],
    ids=["kill_switch", "feature_off"],
)
def test_kill_switch_or_feature_off_serves_legacy(migration_kw: dict[str, Any]) -> None:
    e = _env(**migration_kw)
    ran: list[str] = []

    def candidate() -> str:
        ran.append("candidate")
        return "cand"

    try:
        assert asyncio.run(e.m.route("tts", CTX, legacy=lambda: "legacy", candidate=candidate)) == (
            "legacy"
        )
        assert e.m.route_sync("tts", CTX, legacy=lambda: "legacy", candidate=candidate) == "legacy"
        assert ran == []
        r = e.rollups()
        assert set(r) == {("tts", "legacy")}
        assert r[("tts", "legacy")].count == 2
    finally:
        e.client.close()


def test_operation_maps_to_a_feature_through_configure() -> None:
    e = _env(features={"speech": True, "tts": False})
    try:
        both = {"legacy": lambda: "legacy", "candidate": lambda: "cand"}
        # by default an operation is its own feature: "tts" is off, "say" is unknown
        assert e.m.route_sync("tts", CTX, **both) == "legacy"
        assert e.m.route_sync("say", CTX, **both) == "legacy"
        e.m.configure("say", feature="speech")
        e.m.configure("tts", feature="speech")
        assert e.m.route_sync("say", CTX, **both) == "cand"
        assert e.m.route_sync("tts", CTX, **both) == "cand"
        e.m.configure("whole", feature=None)  # the migration alone decides
        assert e.m.route_sync("whole", CTX, **both) == "cand"
        # the handle is the same object each time, so its settings stay
        assert e.client.migration(NAME).route_sync("say", CTX, **both) == "cand"
    finally:
        e.client.close()


# --- shadow ---------------------------------------------------------------------------------


def _shadow_run(e: Env, n: int = 1, **kw: Any) -> list[Any]:
    async def main() -> list[Any]:
        out = [await e.m.shadow("tts", CTX, **kw) for _ in range(n)]
        await e.m.drain()
        return out

    return asyncio.run(main())


def test_shadow_serves_legacy_at_its_own_latency_and_compares_later(env: Env) -> None:
    async def legacy() -> str:
        return "hello"

    async def candidate() -> str:
        await asyncio.sleep(1.0)
        return "hello"

    async def main() -> tuple[str, float]:
        started = time.perf_counter()
        result = await env.m.shadow("tts", CTX, legacy=legacy, candidate=candidate)
        elapsed = time.perf_counter() - started
        await env.m.drain()
        return result, elapsed

    result, elapsed = asyncio.run(main())
    assert result == "hello"
    assert elapsed < 0.5
    r = env.rollups()
    assert r[("tts", "legacy")].count == 1
    cand = r[("tts", "candidate")]
    assert cand.count == 1 and cand.errors == 0
    assert cand.outcomes == {"shadow.match": 1.0}
    assert cand.sketch.min is not None and cand.sketch.min >= 900  # its own latency
    assert env.sink.samples == []


def test_shadow_candidate_exception_never_reaches_the_caller(env: Env) -> None:
    async def candidate(x: int) -> int:
        raise Boom(f"cannot {x}")

    assert _shadow_run(env, 3, legacy=lambda x: x + 1, candidate=candidate, x=1) == [2, 2, 2]
    cand = env.one("tts", "candidate")
    assert (cand.count, cand.errors, cand.error_types) == (3, 3, {"Boom": 3})
    assert cand.outcomes == {"shadow.candidate_error": 3.0}
    assert cand.fallbacks == 0
    assert [s["kind"] for s in env.sink.samples] == ["candidate_error"] * 3
    assert env.sink.samples[0]["candidate"]["error_type"] == "Boom"


def test_shadow_candidate_timeout_is_a_candidate_error(env: Env) -> None:
    env.m.configure("tts", timeout=0.05)

    async def candidate() -> str:
        await asyncio.sleep(5)
        return "late"

    started = time.perf_counter()
    assert _shadow_run(env, legacy=lambda: "l", candidate=candidate) == ["l"]
    assert time.perf_counter() - started < 2.0
    cand = env.one("tts", "candidate")
    assert cand.error_types == {"timeout": 1}
    assert cand.outcomes == {"shadow.candidate_error": 1.0}


def test_shadow_counts_matches_and_mismatches(env: Env) -> None:
    answers = iter(["same", "other", "same", 1, "same"])
    legacy_answers = iter(["same", "same", "same", "1", "same"])

    out = _shadow_run(env, 5, legacy=lambda: next(legacy_answers), candidate=lambda: next(answers))
    assert out == ["same", "same", "same", "1", "same"]
    cand = env.one("tts", "candidate")
    assert cand.outcomes == {"shadow.match": 3.0, "shadow.mismatch": 2.0}
    assert [s["kind"] for s in env.sink.samples] == ["mismatch", "mismatch"]
    assert {s["candidate"] for s in env.sink.samples} == {"other", 1}


def test_shadow_with_the_text_comparator(env: Env) -> None:
    out = _shadow_run(
        env, legacy=lambda: "Hello, World!", candidate=lambda: "hello world", compare="text"
    )
    assert out == ["Hello, World!"]
    assert env.one("tts", "candidate").outcomes == {"shadow.match": 1.0}


def test_shadow_with_an_unknown_comparator_name_is_refused(env: Env) -> None:
    with pytest.raises(ValidationError) as info:
        _shadow_run(env, legacy=lambda: 1, candidate=lambda: 1, compare="fuzzy")
    assert info.value.field == "compare"


def test_shadow_failing_compare_is_reported_and_counted(env: Env) -> None:
    bad = TypeError("cannot compare")

    def compare(a: Any, b: Any) -> bool:
        raise bad

    assert _shadow_run(env, 2, legacy=lambda: "l", candidate=lambda: "c", compare=compare) == [
        "l",
        "l",
    ]
    assert env.hook.calls == [("compare", bad), ("compare", bad)]
    cand = env.one("tts", "candidate")
    assert cand.outcomes == {"shadow.compare_error": 2.0}
    assert env.sink.samples == []


def test_shadow_legacy_failure_is_raised_and_not_compared(env: Env) -> None:
    exc = LegacyDown("legacy broke")

    def legacy() -> str:
        raise exc

    with pytest.raises(LegacyDown) as info:
        _shadow_run(env, legacy=legacy, candidate=lambda: "c")
    assert info.value is exc
    r = env.rollups()
    assert (r[("tts", "legacy")].errors, r[("tts", "legacy")].error_types) == (1, {"LegacyDown": 1})


def test_shadow_mismatch_samples_are_redacted_and_bounded() -> None:
    e = _env(max_samples=3)
    try:
        ctx = {"user_id": "u1", "phone": PHONE, "api_key": API_KEY, "note": f"call {PHONE2}"}

        async def main() -> None:
            for i in range(5):
                await e.m.shadow(
                    "tts",
                    ctx,
                    legacy=lambda i=i: {"to": EMAIL, "n": i},
                    candidate=lambda i=i: {"to": f"reply to {EMAIL}", "n": i},
                )
            await e.m.drain()

        asyncio.run(main())
        stats = e.client.recorder.stats()
        assert stats.pending_samples == 3
        assert stats.dropped_samples == 2
        assert e.one("tts", "candidate").outcomes == {"shadow.mismatch": 5.0}
        samples = e.sink.samples
        assert len(samples) == 3
        assert [s["legacy"]["n"] for s in samples] == [2, 3, 4]  # the newest are kept
        text = json.dumps(samples)
        for secret in PII:
            assert secret not in text
        s = samples[0]
        assert s["context"]["api_key"] == "[REDACTED:secret]"
        assert s["context"]["phone"] == "[REDACTED:phone]"
        assert s["context"]["user_id"] == "u1"
        assert s["legacy"]["to"] == "[REDACTED:email]"
        assert (s["migration"], s["operation"], s["kind"]) == (NAME, "tts", "mismatch")
    finally:
        e.client.close()


def test_shadow_sample_zero_never_runs_the_candidate(env: Env) -> None:
    ran: list[int] = []

    def candidate() -> str:
        ran.append(1)
        return "c"

    assert _shadow_run(env, 100, legacy=lambda: "l", candidate=candidate, sample=0.0) == ["l"] * 100
    assert ran == []
    r = env.rollups()
    assert set(r) == {("tts", "legacy")}
    assert r[("tts", "legacy")].count == 100


def test_shadow_sample_half_runs_the_candidate_on_about_half(env: Env) -> None:
    ran: list[int] = []

    def candidate() -> str:
        ran.append(1)
        return "l"

    random.seed(1234)
    _shadow_run(env, 400, legacy=lambda: "l", candidate=candidate, sample=0.5)
    assert 160 <= len(ran) <= 240
    assert env.one("tts", "candidate").outcomes == {"shadow.match": float(len(ran))}


def test_shadow_refuses_a_sample_outside_zero_to_one(env: Env) -> None:
    with pytest.raises(ValueError):
        _shadow_run(env, legacy=lambda: 1, candidate=lambda: 1, sample=1.5)


def test_shadow_under_the_kill_switch_does_not_run_the_candidate() -> None:
    e = _env(enabled=False)
    ran: list[int] = []

    def candidate() -> str:
        ran.append(1)
        return "c"

    try:
        assert _shadow_run(e, 5, legacy=lambda: "l", candidate=candidate) == ["l"] * 5
        assert ran == []
        assert set(e.rollups()) == {("tts", "legacy")}
    finally:
        e.client.close()


# --- structured logs --------------------------------------------------------------------


def _router_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "switchover.router"]


SECRET_CTX = {"user_id": "u1", "phone": PHONE2, "email": EMAIL, "api_key": API_KEY}
SECRET_MESSAGE = f"upstream refused {PHONE} for {EMAIL} using {API_KEY}"


def test_fallback_log_line_is_json_and_free_of_pii(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    def candidate() -> str:
        raise Boom(SECRET_MESSAGE)

    with caplog.at_level(logging.WARNING, logger="switchover.router"):
        env.m.route_sync("tts", SECRET_CTX, legacy=lambda: "l", candidate=candidate)
    lines = _router_lines(caplog)
    assert len(lines) == 1
    line = lines[0]
    assert line["event"] == "fallback"
    assert (line["migration"], line["operation"], line["error_type"]) == (NAME, "tts", "Boom")
    raw = "\n".join(r.getMessage() for r in caplog.records)
    for secret in PII:
        assert secret not in raw


def test_timeout_fallback_log_line_names_the_timeout(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    async def candidate() -> str:
        await asyncio.sleep(5)
        return "late"

    with caplog.at_level(logging.WARNING, logger="switchover.router"):
        asyncio.run(env.m.route("tts", CTX, legacy=lambda: "l", candidate=candidate, timeout=0.05))
    [line] = _router_lines(caplog)
    assert (line["event"], line["error_type"]) == ("fallback", "timeout")


def test_total_failure_log_line_is_json_and_free_of_pii(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    def candidate() -> str:
        raise Boom(SECRET_MESSAGE)

    def legacy() -> str:
        raise LegacyDown(f"legacy also refused {PHONE2} / {EMAIL}")

    with (
        caplog.at_level(logging.WARNING, logger="switchover.router"),
        pytest.raises(LegacyDown) as info,
    ):
        env.m.route_sync("tts", SECRET_CTX, legacy=legacy, candidate=candidate)
    lines = _router_lines(caplog)
    assert len(lines) == 1
    line = lines[0]
    assert line["event"] == "total_failure"
    assert (line["migration"], line["operation"]) == (NAME, "tts")
    assert line["candidate_error_type"] == "Boom"
    assert line["legacy_error_type"] == "LegacyDown"
    raw = "\n".join(r.getMessage() for r in caplog.records)
    for secret in PII:
        assert secret not in raw
    # the note added to the caller's exception is redacted too
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "Boom" in notes
    for secret in (PHONE, EMAIL, API_KEY):
        assert secret not in notes


# --- the caller's loop never waits for a flush ----------------------------------------------


class BlockingSink(MemorySink):
    """A store that takes up to a second to answer each write."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()
        self.writing = False

    def write(
        self, rollups: Sequence[tuple[RollupKey, Rollup]], samples: Sequence[dict[str, Any]]
    ) -> None:
        self.writing = True
        self.entered.set()
        try:
            self.release.wait(1.0)
            super().write(rollups, samples)
        finally:
            self.writing = False


def test_a_slow_background_flush_never_blocks_the_event_loop() -> None:
    sink = BlockingSink()
    recorder = Recorder(sink, flush_interval=0.01, background=True)
    e = _env(recorder=recorder, sink=sink)

    async def candidate(i: int) -> int:
        return i

    async def main() -> tuple[list[float], bool, bool]:
        await e.m.route("tts", CTX, 0, legacy=candidate, candidate=candidate)
        deadline = time.monotonic() + 5
        while not sink.entered.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        assert sink.entered.is_set(), "the background flush never started"
        writing_at_start = sink.writing
        latencies = []
        for i in range(200):
            started = time.perf_counter()
            await e.m.route("tts", CTX, i, legacy=candidate, candidate=candidate)
            e.m.record_outcome("tts", {"booked": 1}, side="candidate")
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0)
        return latencies, writing_at_start, sink.writing

    try:
        latencies, writing_at_start, writing_at_end = asyncio.run(main())
        assert writing_at_start and writing_at_end, "the flush was not in progress throughout"
        assert max(latencies) < 0.1  # the write takes 1 s
        assert sum(latencies) < 0.5
    finally:
        sink.release.set()
        e.client.close()
    total = Rollup()
    for _, r in sink.rollups:
        total.merge(r)
    assert total.count == 201  # nothing recorded during the slow flush was lost
    assert total.outcomes == {"booked": 200.0}


# --- samples kept while the store is down ----------------------------------------------------


class FailingSink(MemorySink):
    """A store that is down; while a flush is failing, shadow calls keep adding samples."""

    def __init__(self) -> None:
        super().__init__()
        self.recorder: Recorder | None = None
        self.during_write: list[dict[str, Any]] = []

    def write(
        self, rollups: Sequence[tuple[RollupKey, Rollup]], samples: Sequence[dict[str, Any]]
    ) -> None:
        assert self.recorder is not None
        for sample in self.during_write:
            self.recorder.add_sample(sample)
        self.during_write = []
        raise ConnectionError("store down")


def test_samples_dropped_while_the_store_is_down_are_all_counted() -> None:
    sink = FailingSink()
    recorder = Recorder(sink, background=False, max_samples=3)
    sink.recorder = recorder
    for i in range(3):
        recorder.add_sample({"migration": NAME, "operation": "tts", "n": i})
    sink.during_write = [{"migration": NAME, "operation": "tts", "n": 10 + i} for i in range(2)]
    assert recorder.flush() is False
    stats = recorder.stats()
    # 5 samples were offered to a buffer of 3: 2 were dropped, and the stats must say so
    assert stats.pending_samples == 3
    assert stats.dropped_samples == 2


def test_a_caller_cancelled_during_legacy_does_not_leave_drain_hanging(env: Env) -> None:
    """A request timeout around ``shadow`` cancels legacy; the shadow task must still end."""

    async def legacy() -> str:
        await asyncio.sleep(1)
        return "l"

    async def candidate() -> str:
        return "c"

    async def main() -> bool:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(
                env.m.shadow("tts", CTX, legacy=legacy, candidate=candidate), 0.05
            )
        try:
            await asyncio.wait_for(env.m.drain(), 2.0)
        except TimeoutError:
            return False
        return True

    assert asyncio.run(main()), "drain() never returned: the shadow task waits forever"


def test_a_candidate_timeout_inside_a_cancellation_handler_still_serves_legacy(env: Env) -> None:
    """An agent saying goodbye while it is being cancelled (a hang-up) still gets legacy's
    answer when the candidate times out, as with ``asyncio.timeout``."""
    said: list[str] = []

    async def candidate() -> str:
        await asyncio.sleep(5)
        return "late"

    async def legacy() -> str:
        return "goodbye"

    async def agent() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            said.append(
                await env.m.route("tts", CTX, legacy=legacy, candidate=candidate, timeout=0.05)
            )
            raise

    async def main() -> None:
        task = asyncio.create_task(agent())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert said == ["goodbye"]
    assert env.one("tts", "candidate").error_types == {"timeout": 1}


def test_routing_does_not_keep_finished_event_loops_alive(env: Env) -> None:
    """A worker that runs each job with ``asyncio.run`` must not grow by one loop per job."""
    import gc
    import weakref

    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def candidate() -> str:
        return "c"

    async def job() -> str:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        return await env.m.route("tts", CTX, legacy=candidate, candidate=candidate)

    for _ in range(20):
        assert asyncio.run(job()) == "c"
    gc.collect()
    alive = sum(ref() is not None for ref in loops)
    assert alive == 0, f"{alive} of 20 closed event loops are still referenced"

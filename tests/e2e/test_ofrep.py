"""OFREP on a real ``switchover serve``: the protocol's shapes over HTTP, and the stock
Python client (``openfeature-sdk`` + ``openfeature-provider-ofrep``) deciding as the
Python SDK does for 10,000 callers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from support.ofrep import FLAG, KEYS, Served, caller, ofrep_server, python_sides
from switchover.bootstrap import bootstrap
from switchover.commands import SetPercentage, handle
from switchover.settings import Settings

openfeature_api = pytest.importorskip("openfeature.api", reason="pip install -e '.[test]'")
ofrep = pytest.importorskip(
    "openfeature.contrib.provider.ofrep", reason="pip install -e '.[test]' (the OFREP provider)"
)
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import ErrorCode  # noqa: E402
from openfeature.flag_evaluation import FlagEvaluationDetails, Reason  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with ofrep_server(tmp_path_factory.mktemp("ofrep")) as s, httpx.Client(timeout=10) as http:
        _HTTP.append(http)
        yield s
        _HTTP.clear()


_HTTP: list[httpx.Client] = []


def _post(s: Served, path: str, body: object, token: str | None = None, **kw) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or s.tokens['viewer']}", **kw.pop("headers", {})}
    return _HTTP[0].post(f"{s.base}/ofrep/v1/{path}", json=body, headers=headers, **kw)


def test_a_flag_is_a_boolean_with_the_side_as_variant_and_the_reason(served: Served) -> None:
    sides = python_sides(served.db, keys=100)
    for i in range(100):
        key, tenant = caller(i)
        if tenant is not None:
            continue
        r = _post(served, f"evaluate/flags/{FLAG}", {"context": {"targetingKey": key}})
        assert r.status_code == 200
        body = r.json()
        assert body["value"] is sides[i]
        assert body["variant"] == ("candidate" if body["value"] else "legacy")
        assert body["key"] == FLAG
        assert body["reason"] == "SPLIT"
        assert body["metadata"]["migration"] == "voice_v2"
        assert body["metadata"]["feature"] == "stt"


def test_tenant_overrides_are_targeting_matches_even_without_a_key(served: Served) -> None:
    allow = _post(served, f"evaluate/flags/{FLAG}", {"context": {"tenant_id": "acme"}}).json()
    deny = _post(
        served, f"evaluate/flags/{FLAG}", {"context": {"targetingKey": "u", "tenant_id": "globex"}}
    ).json()
    assert (allow["value"], allow["variant"], allow["reason"]) == (
        True,
        "candidate",
        "TARGETING_MATCH",
    )
    assert (deny["value"], deny["variant"], deny["reason"]) == (False, "legacy", "TARGETING_MATCH")


def test_the_kill_switch_and_a_feature_off_are_disabled(served: Served) -> None:
    killed = _post(served, "evaluate/flags/legacy_api", {"context": {"targetingKey": "u1"}})
    off = _post(served, "evaluate/flags/voice_v2.tts", {"context": {"targetingKey": "u1"}})
    for r in (killed, off):
        assert r.status_code == 200
        assert (r.json()["value"], r.json()["reason"]) == (False, "DISABLED")


def test_the_stickiness_key_in_the_context_wins_over_targeting_key(served: Served) -> None:
    sides = python_sides(served.db, keys=50)
    for i in range(1, 50):
        if caller(i)[1] is not None:
            continue
        r = _post(
            served,
            f"evaluate/flags/{FLAG}",
            {"context": {"targetingKey": "someone-else", "user_id": caller(i)[0]}},
        )
        assert r.json()["value"] is sides[i]


def test_errors_have_the_ofrep_shapes(served: Served) -> None:
    missing = _post(served, "evaluate/flags/nope", {"context": {"targetingKey": "u"}})
    assert missing.status_code == 404
    assert missing.json()["errorCode"] == "FLAG_NOT_FOUND"
    assert missing.json()["key"] == "nope"
    feature = _post(served, "evaluate/flags/voice_v2.nope", {"context": {"targetingKey": "u"}})
    assert (feature.status_code, feature.json()["errorCode"]) == (404, "FLAG_NOT_FOUND")
    assert "stt, tts" in feature.json()["errorDetails"]
    no_key = _post(served, f"evaluate/flags/{FLAG}", {"context": {"plan": "pro"}})
    assert (no_key.status_code, no_key.json()["errorCode"]) == (400, "TARGETING_KEY_MISSING")
    bad = _post(served, f"evaluate/flags/{FLAG}", {"context": {"targetingKey": 42}})
    assert (bad.status_code, bad.json()["errorCode"]) == (400, "INVALID_CONTEXT")
    raw = _HTTP[0].post(
        f"{served.base}/ofrep/v1/evaluate/flags/{FLAG}",
        content=b"{not json",
        headers={"Authorization": f"Bearer {served.tokens['viewer']}"},
    )
    assert (raw.status_code, raw.json()["errorCode"]) == (400, "PARSE_ERROR")
    empty = _HTTP[0].post(
        f"{served.base}/ofrep/v1/evaluate/flags",
        headers={"Authorization": f"Bearer {served.tokens['viewer']}"},
    )
    assert (empty.status_code, empty.json()["errorCode"]) == (400, "PARSE_ERROR")
    assert _post(served, f"evaluate/flags/{FLAG}", {}).json()["errorCode"] == (
        "TARGETING_KEY_MISSING"  # what the Python provider sends for a client without context
    )
    bulk_bad = _post(served, "evaluate/flags", {"context": []})
    assert bulk_bad.status_code == 400
    assert bulk_bad.json() == {
        "errorCode": "INVALID_CONTEXT",
        "errorDetails": bulk_bad.json()["errorDetails"],
    }


def test_access_needs_a_token(served: Served) -> None:
    r = _HTTP[0].post(f"{served.base}/ofrep/v1/evaluate/flags/{FLAG}", json={"context": {}})
    assert r.status_code == 401
    r = _post(served, "evaluate/flags", {"context": {}}, token="not-a-token")
    assert r.status_code == 401
    assert _post(
        served, "evaluate/flags", {"context": {}}, token=served.tokens["worker"]
    ).is_success


def test_bulk_answers_every_flag_with_an_etag_and_304_until_a_change(
    served: Served, tmp_path: Path
) -> None:
    ctx = {"context": {"targetingKey": "user-7"}}
    first = _post(served, "evaluate/flags", ctx)
    assert first.status_code == 200
    etag = first.headers["etag"]
    flags = {f["key"]: f for f in first.json()["flags"]}
    assert set(flags) == {
        "legacy_api",
        "unleash_import",
        "voice_v2",
        "voice_v2.stt",
        "voice_v2.tts",
    }
    assert flags["legacy_api"]["reason"] == "DISABLED"
    # unleash_import sticks to userId: a targetingKey fills it
    assert flags["unleash_import"]["reason"] == "SPLIT"
    again = _post(served, "evaluate/flags", ctx, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    other = _post(served, "evaluate/flags", {"context": {"targetingKey": "user-8"}})
    assert other.headers["etag"] != etag or other.json()["flags"] == first.json()["flags"]

    app = bootstrap(Settings(database_url=served.db))
    try:
        handle(app, SetPercentage(migration="voice_v2", percentage=31, actor="test"))
        _until_current(served, app.store.store_version())
        r = _post(served, "evaluate/flags", ctx, headers={"If-None-Match": etag})
        assert r.status_code == 200
        assert r.headers["etag"] != etag
    finally:
        handle(app, SetPercentage(migration="voice_v2", percentage=30, actor="test"))
        _until_current(served, app.store.store_version())  # later tests expect 30 %
        app.close()


def _until_current(served: Served, version: int) -> None:
    """Wait for the server's snapshot to reach the store's ``version`` (within a second)."""
    for _ in range(100):
        if _HTTP[0].get(f"{served.base}/healthz").json()["snapshot"]["version"] == version:
            return
        time.sleep(0.05)
    pytest.fail(f"the server's snapshot did not reach version {version}")


def test_the_stock_python_client_decides_as_the_python_sdk(served: Served) -> None:
    """openfeature-sdk with openfeature-provider-ofrep, 10,000 callers, one request each."""
    token = served.tokens["viewer"]
    provider = ofrep.OFREPProvider(
        served.base, headers_factory=lambda: {"Authorization": f"Bearer {token}"}
    )
    domain = "switchover-ofrep-test"
    openfeature_api.set_provider(provider, domain=domain)
    try:
        client = openfeature_api.get_client(domain)

        def evaluate(i: int) -> FlagEvaluationDetails[bool]:
            key, tenant = caller(i)
            attributes = {} if tenant is None else {"tenant_id": tenant}
            return client.get_boolean_details(
                FLAG, False, EvaluationContext(targeting_key=key, attributes=attributes)
            )

        with ThreadPoolExecutor(8) as pool:  # eight callers at a time, as a service would
            answers = list(pool.map(evaluate, range(KEYS)))
        assert [a.error_message for a in answers if a.error_code is not None] == []
        got = [a.value for a in answers]
        reasons = {a.reason for a in answers}
        want = python_sides(served.db)
        assert got == want
        assert reasons == {Reason.SPLIT, Reason.TARGETING_MATCH}
        assert 0.25 < sum(got) / KEYS < 0.4

        missing = client.get_boolean_details("voice_v2.nope", True, EvaluationContext("u"))
        assert (missing.value, missing.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
        disabled = client.get_boolean_details("legacy_api", True, EvaluationContext("u"))
        assert (disabled.value, disabled.reason, disabled.variant) == (
            False,
            Reason.DISABLED,
            "legacy",
        )
    finally:
        openfeature_api.clear_providers()

"""The proxy's pure parts: configuration, keys, signatures, outcome headers, headers."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from switchover.errors import ValidationError
from switchover.proxy.config import parse
from switchover.proxy.headers import request_headers, response_headers
from switchover.proxy.keys import RequestView, extract
from switchover.proxy.observe import outcome, same_answer
from switchover.proxy.signature import verify

SECRET = "whsec-unit-4f1c"
BASE = {"migration": "m", "legacy": "http://127.0.0.1:1", "candidate": "http://127.0.0.1:2"}


def cfg(**extra: Any) -> Any:
    return parse({**BASE, "key": "json:contact_id", **extra}, env={"S": SECRET})


def view(body: bytes = b"", path: str = "/", query: bytes = b"", **headers: str) -> RequestView:
    return RequestView(path, query, [(k.encode(), v.encode()) for k, v in headers.items()], body)


def test_keys_come_from_json_headers_the_query_and_the_path() -> None:
    c = cfg()
    key = c.routes[0].key
    assert extract(key, view(b'{"contact_id": 42}')) == "42"
    assert extract(key, view(b'{"contact_id": ""}')) is None
    assert extract(key, view(b"not json")) is None
    assert extract(key, view(b'{"contact_id": {"nested": 1}}')) is None
    nested = cfg(key="json:data.contact.id").routes[0].key
    assert extract(nested, view(b'{"data": {"contact": {"id": "c1"}}}')) == "c1"
    header = cfg(key="header:X-Contact").routes[0].key
    assert extract(header, view(**{"x-contact": "c2"})) == "c2"
    query = cfg(key="query:contact").routes[0].key
    assert extract(query, view(query=b"a=1&contact=c3")) == "c3"
    path = cfg(key="path:-1").routes[0].key
    assert extract(path, view(path="/contacts/c4")) == "c4"
    assert extract(cfg(key="path:5").routes[0].key, view(path="/a")) is None


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"key": "cookie:x"}, "key"),
        ({"legacy": "127.0.0.1:3000"}, "legacy"),
        ({"signature_secret_env": "UNSET"}, "signature_secret_env"),
        ({"routes": [{"path": "/_switchover/x"}]}, "routes[0].path"),
        ({"routes": [{"path": "/h", "repeat_safe": "yes"}]}, "routes[0].repeat_safe"),
        ({"limits": {"max_concurrency": 0}}, "max_concurrency"),
        ({"shadow_sample": 2}, "shadow_sample"),
        ({"nonsense": 1}, "config"),
    ],
)
def test_a_bad_configuration_names_its_field(extra: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        cfg(**extra)
    assert err.value.field == field
    assert SECRET not in err.value.message


def test_routes_match_by_prefix_and_method_and_say_what_is_safe_to_repeat() -> None:
    c = cfg(routes=[{"path": "/hooks", "methods": ["POST"], "repeat_safe": True}])
    hooks, default = c.routes
    assert c.route_for("POST", "/hooks/ghl") is hooks
    assert c.route_for("POST", "/hooksmith") is default
    assert c.route_for("GET", "/hooks/ghl") is default
    assert c.repeat_safe(hooks, "POST") is True
    assert c.repeat_safe(default, "POST") is False
    assert c.repeat_safe(default, "GET") is True


def test_signatures_are_hex_with_or_without_the_prefix() -> None:
    sig = cfg(signature_secret_env="S").signature
    body = b'{"a": 1}'
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert verify(sig, body, digest)
    assert verify(sig, body, "sha256=" + digest)
    assert verify(sig, body, " sha256=" + digest.upper() + " ")
    assert not verify(sig, body, None)
    assert not verify(sig, body, "")
    assert not verify(sig, body + b" ", digest)
    assert not verify(sig, body, "sha1=" + digest)
    assert SECRET not in repr(sig)


def test_outcomes_come_from_the_header_and_the_status_class() -> None:
    assert outcome(200, None) == {"status.2xx": 1.0}
    assert outcome(503, "booked=1; routing_failure=0, qualified") == {
        "status.5xx": 1.0,
        "booked": 1.0,
        "routing_failure": 0.0,
        "qualified": 1.0,
    }
    assert outcome(200, "bad name=1, booked=x, inf=inf") == {"status.2xx": 1.0}
    assert same_answer((200, {"a": 1}), (200, {"a": 1}))
    assert not same_answer((200, {"a": 1}), (200, {"a": 1.5}))
    assert not same_answer((200, {"a": 1}), (201, {"a": 1}))


def test_hop_by_hop_headers_are_dropped_and_via_added() -> None:
    given = [
        (b"host", b"proxy:80"),
        (b"connection", b"close, x-hop"),
        (b"x-hop", b"1"),
        (b"transfer-encoding", b"chunked"),
        (b"x-forwarded-for", b"10.0.0.1"),
        (b"x-keep", b"1"),
    ]
    out = dict(request_headers(given, ("127.0.0.1", 5), "http", frozenset()))
    assert out == {
        b"x-keep": b"1",
        b"x-forwarded-for": b"10.0.0.1, 127.0.0.1",
        b"x-forwarded-host": b"proxy:80",
        b"x-forwarded-proto": b"http",
        b"via": b"1.1 switchover",
    }
    back = dict(response_headers([(b"upgrade", b"h2c"), (b"x-o", b"1")], frozenset({b"x-o"})))
    assert back == {b"via": b"1.1 switchover"}

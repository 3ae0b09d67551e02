"""The stickiness key (and tenant) of one request, from its JSON body, a header, the
query string or a path segment. A value that is missing or not a scalar is None: the
decision is then ``missing_key`` (legacy), never an error in the caller's path."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson

from switchover.proxy.config import KeySpec

_UNPARSED: Any = object()


class RequestView:
    """What key extraction reads of a request; the JSON body is parsed once, on demand."""

    __slots__ = ("_json", "_query", "body", "headers", "path", "query_string")

    def __init__(
        self,
        path: str,
        query_string: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | None,
    ) -> None:
        self.path = path
        self.query_string = query_string
        self.headers = headers
        self.body = body
        self._json: Any = _UNPARSED
        self._query: dict[str, str] | None = None

    def json(self) -> Any:
        if self._json is _UNPARSED:
            try:
                self._json = orjson.loads(self.body) if self.body else None
            except orjson.JSONDecodeError:
                self._json = None
        return self._json

    def header(self, name: str) -> str | None:
        wanted = name.encode("latin-1")
        for key, value in self.headers:
            if key == wanted:
                return value.decode("latin-1")
        return None

    def query(self, name: str) -> str | None:
        if self._query is None:
            self._query = dict(parse_qsl(self.query_string.decode("latin-1")))
        return self._query.get(name)


def extract(spec: KeySpec, request: RequestView) -> str | None:
    """The key's value as text, or None."""
    source = spec.source
    if source == "header":
        value: Any = request.header(spec.name)
    elif source == "json":
        value = request.json()
        for part in spec.name.split("."):
            if not isinstance(value, dict):
                return None
            value = value.get(part)
    elif source == "query":
        value = request.query(spec.name)
    else:
        segments = [s for s in request.path.split("/") if s]
        try:
            value = segments[spec.index]
        except IndexError:
            return None
    if value is None or isinstance(value, dict | list) or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)

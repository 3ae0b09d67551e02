"""The proxy's setup: from command-line options, a YAML file of routes, or both.

A route says which requests it takes (a path prefix and methods), where the stickiness
key is (``json:contact_id``, ``header:X-Contact-Id``, ``query:contact``, ``path:2``),
whether a request may be repeated on legacy after the candidate failed
(``repeat_safe``), and whether the candidate only shadows legacy (``mode: shadow``).
Options given on the command line win over the file's top-level values. Every error
names the option or the file's field, and how to fix it; a secret's value is never in
one.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from switchover.core.observation import is_name
from switchover.errors import ValidationError

KeySource = Literal["json", "header", "query", "path"]
KEY_SOURCES: tuple[KeySource, ...] = ("json", "header", "query", "path")
ALGORITHMS = ("sha256", "sha1", "sha512")
ENCODINGS = ("hex", "base64")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
"""RFC 9110 §9.2.1's safe methods: repeating one on legacy changes nothing."""
DEFAULT_OPERATION = "webhook"
DEFAULT_SIGNATURE_HEADER = "X-Signature"
DEFAULT_OUTCOME_HEADER = "X-Switchover-Outcome"
DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_MAX_CONCURRENCY = 256
RESERVED_PREFIX = "/_switchover/"
"""The proxy's own endpoints (liveness, readiness, metrics); never forwarded."""

TOP_KEYS = frozenset(
    {
        "migration",
        "legacy",
        "candidate",
        "key",
        "tenant",
        "feature",
        "operation",
        "signature",
        "outcome_header",
        "timeouts",
        "limits",
        "drain",
        "repeat_safe",
        "safe_methods",
        "mode",
        "shadow_sample",
        "routes",
    }
)
ROUTE_KEYS = frozenset(
    {
        "path",
        "methods",
        "operation",
        "key",
        "tenant",
        "feature",
        "repeat_safe",
        "mode",
        "shadow_sample",
        "signature",
    }
)
SIGNATURE_KEYS = frozenset({"header", "secret_env", "algorithm", "encoding", "prefix"})
TIMEOUT_KEYS = frozenset({"connect", "candidate", "legacy"})
LIMIT_KEYS = frozenset({"max_body_bytes", "max_concurrency"})
DRAIN_KEYS = frozenset({"delay", "timeout"})


@dataclass(frozen=True, slots=True)
class KeySpec:
    """Where one value of the request is: ``json:a.b``, ``header:N``, ``query:N``, ``path:I``."""

    source: KeySource
    name: str
    index: int = 0

    @property
    def needs_body(self) -> bool:
        return self.source == "json"

    def __str__(self) -> str:
        return f"{self.source}:{self.index if self.source == 'path' else self.name}"


@dataclass(frozen=True, slots=True)
class Signature:
    """HMAC over the raw body; the secret is read from ``secret_env`` when the proxy starts."""

    header: str
    secret_env: str
    secret: bytes = field(repr=False)
    algorithm: str = "sha256"
    encoding: str = "hex"
    prefix: str = "sha256="
    """Accepted before the digest, and optional (``sha256=<hex>`` or ``<hex>``)."""


@dataclass(frozen=True, slots=True)
class Route:
    operation: str
    key: KeySpec | None
    path: str = "/"
    methods: frozenset[str] | None = None
    """None: every method."""
    tenant: KeySpec | None = None
    feature: str | None = None
    repeat_safe: bool | None = None
    """True or False as declared; None: safe when the method is one of ``safe_methods``."""
    shadow: bool = False
    shadow_sample: float = 1.0
    signed: bool = True
    """Checked when the proxy has a signature configured."""

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        prefix = self.path
        return (
            prefix == "/"
            or path == prefix
            or (path.startswith(prefix) and (prefix.endswith("/") or path[len(prefix)] == "/"))
        )


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = 2.0
    candidate: float = 10.0
    """Seconds the candidate has to answer (its response head), and between reads."""
    legacy: float = 30.0


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    """Requests forwarded upstream at once (shadow copies included)."""


@dataclass(frozen=True, slots=True)
class Drain:
    delay: float = 0.0
    """Seconds between SIGTERM and closing the listener, with readiness already 503."""
    timeout: float = 30.0
    """Seconds in-flight requests have to finish once the listener is closed."""


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    migration: str
    legacy: str
    candidate: str
    routes: tuple[Route, ...]
    """In order of precedence; the default route (top-level ``key``) last."""
    signature: Signature | None = None
    outcome_header: str = DEFAULT_OUTCOME_HEADER
    timeouts: Timeouts = Timeouts()
    limits: Limits = Limits()
    drain: Drain = Drain()
    safe_methods: frozenset[str] = frozenset(SAFE_METHODS)

    def route_for(self, method: str, path: str) -> Route | None:
        for route in self.routes:
            if route.matches(method, path):
                return route
        return None

    def repeat_safe(self, route: Route, method: str) -> bool:
        """May a request the candidate failed be sent to legacy too?"""
        if route.repeat_safe is not None:
            return route.repeat_safe
        return method in self.safe_methods

    def describe(self) -> dict[str, Any]:
        """The configuration as JSON, without the secret."""
        sig = self.signature
        return {
            "migration": self.migration,
            "legacy": self.legacy,
            "candidate": self.candidate,
            "signature": None
            if sig is None
            else {
                "header": sig.header,
                "secret_env": sig.secret_env,
                "algorithm": sig.algorithm,
                "encoding": sig.encoding,
                "prefix": sig.prefix,
            },
            "outcome_header": self.outcome_header,
            "timeouts": {
                "connect": self.timeouts.connect,
                "candidate": self.timeouts.candidate,
                "legacy": self.timeouts.legacy,
            },
            "limits": {
                "max_body_bytes": self.limits.max_body_bytes,
                "max_concurrency": self.limits.max_concurrency,
            },
            "drain": {"delay": self.drain.delay, "timeout": self.drain.timeout},
            "safe_methods": sorted(self.safe_methods),
            "routes": [
                {
                    "path": r.path,
                    "methods": None if r.methods is None else sorted(r.methods),
                    "operation": r.operation,
                    "key": None if r.key is None else str(r.key),
                    "tenant": None if r.tenant is None else str(r.tenant),
                    "feature": r.feature,
                    "repeat_safe": r.repeat_safe,
                    "mode": "shadow" if r.shadow else "route",
                    "shadow_sample": r.shadow_sample,
                    "signed": r.signed and sig is not None,
                }
                for r in self.routes
            ],
        }


# --- parsing ------------------------------------------------------------------------------

Label = Callable[[str], str]
"""How an error names a field: ``--key`` for an option, ``proxy.yaml: key`` for the file."""


class _Parser:
    def __init__(self, label: Label, env: Mapping[str, str]) -> None:
        self.label = label
        self.env = env

    def fail(self, path: str, problem: str) -> ValidationError:
        return ValidationError(f"{self.label(path)}: {problem}", field=path)

    def mapping(self, value: Any, path: str, allowed: frozenset[str]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping with keys {', '.join(sorted(allowed))}")
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            raise self.fail(
                path,
                f"unknown key(s) {', '.join(unknown)}; use {', '.join(sorted(allowed))}",
            )
        return value

    def url(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(path, "is required: the service's base URL, e.g. http://127.0.0.1:3000")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self.fail(path, f"{value!r} is not an http(s)://HOST[:PORT] URL")
        if parts.query or parts.fragment:
            raise self.fail(path, "a base URL takes no ?query or #fragment")
        return value.rstrip("/")

    def name(self, value: Any, path: str, what: str) -> str:
        if not is_name(value):
            raise self.fail(
                path,
                f"{value!r} is not a valid {what}: use 1-63 letters, digits, '_', '.', ':' or '-'",
            )
        return str(value)

    def key(self, value: Any, path: str) -> KeySpec:
        usage = "write json:FIELD[.FIELD…], header:NAME, query:NAME or path:INDEX"
        if not isinstance(value, str) or ":" not in value:
            raise self.fail(path, f"{value!r} is not a key; {usage}")
        source, _, name = value.partition(":")
        source = source.strip().lower()
        name = name.strip()
        if source not in KEY_SOURCES or not name:
            raise self.fail(path, f"{value!r} is not a key; {usage}")
        if source == "path":
            try:
                index = int(name)
            except ValueError:
                raise self.fail(
                    path, f"path:{name} needs a segment number (path:0 is the first)"
                ) from None
            return KeySpec("path", name, index)
        if source == "json" and any(not part for part in name.split(".")):
            raise self.fail(path, f"{value!r} has an empty field name between dots")
        if source == "header":
            name = name.lower()
        return KeySpec(source, name)  # type: ignore[arg-type]

    def seconds(self, value: Any, path: str, default: float, zero_ok: bool = False) -> float:
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise self.fail(path, f"{value!r} is not a number of seconds")
        if value < 0 or (value == 0 and not zero_ok):
            raise self.fail(path, "must be more than 0 seconds" if not zero_ok else "must be >= 0")
        return float(value)

    def count(self, value: Any, path: str, default: int) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(path, f"{value!r} is not a whole number of at least 1")
        return value

    def flag(self, value: Any, path: str) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        raise self.fail(path, f"{value!r} is not true or false")

    def methods(self, value: Any, path: str) -> frozenset[str] | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise self.fail(path, f"must be a list of methods from {', '.join(METHODS)}")
        out = set()
        for item in value:
            method = str(item).upper()
            if method not in METHODS:
                raise self.fail(path, f"{item!r} is not a method; use {', '.join(METHODS)}")
            out.add(method)
        return frozenset(out)

    def mode(self, value: Any, path: str) -> bool:
        if value is None or value == "route":
            return False
        if value == "shadow":
            return True
        raise self.fail(path, f"{value!r} is not a mode; use route or shadow")

    def sample(self, value: Any, path: str, default: float) -> float:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise self.fail(path, f"{value!r} is not a fraction from 0 to 1")
        return float(value)

    def header_name(self, value: Any, path: str, default: str) -> str:
        if value is None:
            return default
        if (
            not isinstance(value, str)
            or not value
            or any(c in value for c in ' \t:()<>@,;\\"/[]?={}')
        ):
            raise self.fail(path, f"{value!r} is not an HTTP header name")
        return value

    def signature(self, raw: Any, header: Any, secret_env: Any) -> Signature | None:
        data = dict(self.mapping(raw, "signature", SIGNATURE_KEYS))
        if header is not None:
            data["header"] = header
        if secret_env is not None:
            data["secret_env"] = secret_env
        env_name = data.get("secret_env")
        if env_name is None:
            if "header" in data and raw is not None:
                raise self.fail(
                    "signature_secret_env",
                    "is required to check signatures: the name of the environment variable "
                    "that holds the webhook secret (e.g. WEBHOOK_SECRET)",
                )
            return None
        if not isinstance(env_name, str) or not env_name:
            raise self.fail("signature_secret_env", "must name an environment variable")
        secret = self.env.get(env_name)
        if not secret:
            raise self.fail(
                "signature_secret_env",
                f"the environment variable {env_name} is not set or empty; export the "
                "webhook secret in it before starting the proxy",
            )
        algorithm = data.get("algorithm", "sha256")
        if algorithm not in ALGORITHMS:
            raise self.fail(
                "signature.algorithm", f"{algorithm!r} is not one of {', '.join(ALGORITHMS)}"
            )
        encoding = data.get("encoding", "hex")
        if encoding not in ENCODINGS:
            raise self.fail(
                "signature.encoding", f"{encoding!r} is not one of {', '.join(ENCODINGS)}"
            )
        prefix = data.get("prefix", f"{algorithm}=")
        if not isinstance(prefix, str):
            raise self.fail("signature.prefix", 'must be text ("" for none)')
        return Signature(
            header=self.header_name(
                data.get("header"), "signature_header", DEFAULT_SIGNATURE_HEADER
            ),
            secret_env=env_name,
            secret=secret.encode(),
            algorithm=algorithm,
            encoding=encoding,
            prefix=prefix,
        )

    def route(self, raw: Any, i: int, default: Route | None, top: dict[str, Any]) -> Route:
        path = f"routes[{i}]"
        data = self.mapping(raw, path, ROUTE_KEYS)
        prefix = data.get("path")
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            raise self.fail(f"{path}.path", f"{prefix!r} is not a path prefix starting with /")
        if prefix.startswith(RESERVED_PREFIX):
            raise self.fail(f"{path}.path", f"{RESERVED_PREFIX} is the proxy's own")
        key_raw = data.get("key", top.get("key"))
        if key_raw is None:
            raise self.fail(
                f"{path}.key", "is required here (or a top-level key): e.g. json:contact_id"
            )
        tenant_raw = data.get("tenant", top.get("tenant"))
        feature = data.get("feature", top.get("feature"))
        return Route(
            operation=self.name(
                data.get("operation") or _operation_of(prefix), f"{path}.operation", "operation"
            ),
            key=self.key(key_raw, f"{path}.key"),
            path=prefix,
            methods=self.methods(data.get("methods"), f"{path}.methods"),
            tenant=None if tenant_raw is None else self.key(tenant_raw, f"{path}.tenant"),
            feature=None if feature is None else self.name(feature, f"{path}.feature", "feature"),
            repeat_safe=self.flag(data.get("repeat_safe"), f"{path}.repeat_safe"),
            shadow=self.mode(data.get("mode"), f"{path}.mode")
            if "mode" in data
            else (default.shadow if default else self.mode(top.get("mode"), "mode")),
            shadow_sample=self.sample(
                data.get("shadow_sample"),
                f"{path}.shadow_sample",
                default.shadow_sample if default else 1.0,
            ),
            signed=self.flag(data.get("signature"), f"{path}.signature") is not False,
        )


def _operation_of(prefix: str) -> str:
    """A route's default operation name, from its path: ``/webhooks/ghl`` -> ``webhooks.ghl``."""
    name = re.sub(r"[^A-Za-z0-9_.:-]", "_", prefix.strip("/").replace("/", "."))[:63]
    return name or DEFAULT_OPERATION


def parse(
    data: Mapping[str, Any],
    *,
    label: Label | None = None,
    env: Mapping[str, str] | None = None,
) -> ProxyConfig:
    """A checked :class:`ProxyConfig` from a mapping (a YAML file with options laid over).

    ``signature_header`` and ``signature_secret_env`` may sit at the top, as the options
    are spelt, or inside ``signature``."""
    p = _Parser(label or (lambda f: f), os.environ if env is None else env)
    data = dict(data)
    sig_header = data.pop("signature_header", None)
    sig_env = data.pop("signature_secret_env", None)
    p.mapping(data, "config", TOP_KEYS)
    migration = p.name(data.get("migration"), "migration", "migration name")
    legacy = p.url(data.get("legacy"), "legacy")
    candidate = p.url(data.get("candidate"), "candidate")
    shadow = p.mode(data.get("mode"), "mode")
    sample = p.sample(data.get("shadow_sample"), "shadow_sample", 1.0)
    default: Route | None = None
    if data.get("key") is not None:
        tenant = data.get("tenant")
        feature = data.get("feature")
        default = Route(
            operation=p.name(data.get("operation") or DEFAULT_OPERATION, "operation", "operation"),
            key=p.key(data["key"], "key"),
            tenant=None if tenant is None else p.key(tenant, "tenant"),
            feature=None if feature is None else p.name(feature, "feature", "feature"),
            repeat_safe=p.flag(data.get("repeat_safe"), "repeat_safe"),
            shadow=shadow,
            shadow_sample=sample,
        )
    raw_routes = data.get("routes") or []
    if not isinstance(raw_routes, list):
        raise p.fail("routes", "must be a list of routes (path, methods, key, …)")
    routes = [p.route(r, i, default, data) for i, r in enumerate(raw_routes)]
    if default is not None:
        routes.append(default)
    if not routes:
        raise p.fail(
            "key",
            "is required: where the stickiness key is, e.g. json:contact_id "
            "(or give routes in --config)",
        )
    signature = p.signature(data.get("signature"), sig_header, sig_env)
    t = p.mapping(data.get("timeouts"), "timeouts", TIMEOUT_KEYS)
    lim = p.mapping(data.get("limits"), "limits", LIMIT_KEYS)
    dr = p.mapping(data.get("drain"), "drain", DRAIN_KEYS)
    safe = p.methods(data.get("safe_methods"), "safe_methods")
    return ProxyConfig(
        migration=migration,
        legacy=legacy,
        candidate=candidate,
        routes=tuple(routes),
        signature=signature,
        outcome_header=p.header_name(
            data.get("outcome_header"), "outcome_header", DEFAULT_OUTCOME_HEADER
        ),
        timeouts=Timeouts(
            connect=p.seconds(t.get("connect"), "connect_timeout", 2.0),
            candidate=p.seconds(t.get("candidate"), "candidate_timeout", 10.0),
            legacy=p.seconds(t.get("legacy"), "legacy_timeout", 30.0),
        ),
        limits=Limits(
            max_body_bytes=p.count(lim.get("max_body_bytes"), "max_body_bytes", DEFAULT_MAX_BODY),
            max_concurrency=p.count(
                lim.get("max_concurrency"), "max_concurrency", DEFAULT_MAX_CONCURRENCY
            ),
        ),
        drain=Drain(
            delay=p.seconds(dr.get("delay"), "drain_delay", 0.0, zero_ok=True),
            timeout=p.seconds(dr.get("timeout"), "drain_timeout", 30.0),
        ),
        safe_methods=frozenset(SAFE_METHODS) if safe is None else safe,
    )


def load_yaml(path: str) -> dict[str, Any]:
    """The file's top-level mapping; a file that is missing or not YAML is refused."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise ValidationError(
            f"`config`: cannot read {path} ({exc.strerror}); give a YAML file of routes",
            field="config",
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValidationError(f"`config`: {path} is not valid YAML{where}", field="config") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValidationError(
            f"`config`: {path} must hold a mapping (migration:, legacy:, …)", field="config"
        )
    return data

"""Worker settings from the environment, with a ``.env`` file read first (python-dotenv).

Variables already set in the environment win over the file, as ``load_dotenv`` does by
default, so a deployment's ``--set-env-vars`` always has the last word.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switchover.errors import ValidationError

OVERFLOW_MODES = ("refuse", "queue")


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{name}={raw!r} is not a whole number", field=name) from None
    if not low <= value <= high:
        raise ValidationError(f"{name}={value} must be from {low} to {high}", field=name)
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValidationError(f"{name}={raw!r} is not a number of seconds", field=name) from None
    if not low <= value <= high:
        raise ValidationError(f"{name}={value:g} must be from {low:g} to {high:g}", field=name)
    return value


def _heartbeat(env: Mapping[str, str]) -> float:
    """WORKER_HEARTBEAT_INTERVAL: 0 (none) or 1 to 3600 seconds."""
    value = _float(env, "WORKER_HEARTBEAT_INTERVAL", 10.0, 0.0, 3600.0)
    if 0 < value < 1:
        raise ValidationError(
            f"WORKER_HEARTBEAT_INTERVAL={value:g} must be 0 (no heartbeat) or 1 to 3600 s",
            field="WORKER_HEARTBEAT_INTERVAL",
        )
    return value


def _recording(env: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """SWITCHOVER_SIDE and SWITCHOVER_OPERATIONS: how each job is recorded."""
    from switchover.worker.recording import OPERATIONS, SIDES

    side = (env.get("SWITCHOVER_SIDE") or "candidate").strip().lower()
    if side not in SIDES:
        raise ValidationError(
            f"SWITCHOVER_SIDE={side!r} is not known: use candidate (the core worker) or "
            "legacy (a per-agent deployment recording into the same migration)",
            field="SWITCHOVER_SIDE",
        )
    raw = env.get("SWITCHOVER_OPERATIONS") or ",".join(OPERATIONS)
    operations = tuple(dict.fromkeys(o.strip() for o in raw.split(",") if o.strip()))
    unknown = [o for o in operations if o not in OPERATIONS]
    if unknown or not operations:
        raise ValidationError(
            f"SWITCHOVER_OPERATIONS={raw!r} names {', '.join(unknown) or 'nothing'}: "
            f"use some of {', '.join(OPERATIONS)}",
            field="SWITCHOVER_OPERATIONS",
        )
    return side, operations


@dataclass(frozen=True)
class WorkerSettings:
    backend_url: str = "http://127.0.0.1:8080"
    token: str | None = None
    worker_name: str = "core-voice-worker"
    max_concurrency: int = 25
    overflow: str = "refuse"
    max_queue_depth: int = 50
    queue_timeout: float = 30.0
    config_cache_ttl: float = 300.0
    config_max_staleness: float = 3600.0
    drain_timeout: float = 300.0
    heartbeat_interval: float = 10.0
    migration: str | None = None
    side: str = "candidate"
    operations: tuple[str, ...] = ("stt", "llm", "tts", "call")
    livekit_url: str | None = None
    log_level: str = "INFO"
    http_port: int = 8081
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    env_file: str | None = None

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, env_file: str | Path | None = ".env"
    ) -> WorkerSettings:
        """Settings from ``env`` (default: ``os.environ`` after loading ``env_file``)."""
        loaded: str | None = None
        if env is None:
            if env_file is not None and Path(env_file).is_file():
                from dotenv import load_dotenv

                load_dotenv(env_file, override=False)
                loaded = str(env_file)
            env = dict(os.environ)
        overflow = (env.get("WORKER_OVERFLOW") or "refuse").strip().lower()
        if overflow not in OVERFLOW_MODES:
            raise ValidationError(
                f"WORKER_OVERFLOW={overflow!r} is not known: use refuse (LiveKit sends the job "
                "to another worker) or queue (wait for a free slot)",
                field="WORKER_OVERFLOW",
            )
        backend = (env.get("BACKEND_URL") or "http://127.0.0.1:8080").strip().rstrip("/")
        if not backend.startswith(("http://", "https://")):
            raise ValidationError(
                f"BACKEND_URL={backend!r} must start with http:// or https://", field="BACKEND_URL"
            )
        side, operations = _recording(env)
        return cls(
            backend_url=backend,
            token=env.get("SWITCHOVER_TOKEN") or None,
            worker_name=(env.get("WORKER_NAME") or "core-voice-worker").strip(),
            max_concurrency=_int(env, "MAX_CONCURRENCY", 25, 1, 10_000),
            overflow=overflow,
            max_queue_depth=_int(env, "MAX_QUEUE_DEPTH", 50, 0, 100_000),
            queue_timeout=_float(env, "QUEUE_TIMEOUT", 30.0, 0.0, 3600.0),
            config_cache_ttl=_float(env, "CONFIG_CACHE_TTL", 300.0, 0.0, 86_400.0),
            config_max_staleness=_float(env, "CONFIG_MAX_STALENESS", 3600.0, 0.0, 7 * 86_400.0),
            drain_timeout=_float(env, "DRAIN_TIMEOUT", 300.0, 0.0, 86_400.0),
            heartbeat_interval=_heartbeat(env),
            migration=env.get("SWITCHOVER_MIGRATION") or None,
            side=side,
            operations=operations,
            livekit_url=env.get("LIVEKIT_URL") or None,
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
            http_port=_int(env, "PORT", 8081, 0, 65535),
            env=dict(env),
            env_file=loaded,
        )

    def report(self) -> dict[str, Any]:
        """What the start-up report shows: settings, and which secrets are SET (not them)."""
        secret = ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "SWITCHOVER_TOKEN")
        providers = sorted(k for k in self.env if k.endswith("_API_KEY") and k not in secret)
        return {
            "worker_name": self.worker_name,
            "backend_url": self.backend_url,
            "livekit_url": self.livekit_url,
            "max_concurrency": self.max_concurrency,
            "overflow": self.overflow,
            "max_queue_depth": self.max_queue_depth,
            "config_cache_ttl": self.config_cache_ttl,
            "config_max_staleness": self.config_max_staleness,
            "drain_timeout": self.drain_timeout,
            "heartbeat_interval": self.heartbeat_interval,
            "http_port": self.http_port,
            "migration": self.migration,
            "side": self.side,
            "operations": list(self.operations),
            "env_file": self.env_file,
            "secrets": {name: bool(self.env.get(name)) for name in (*secret, *providers)},
        }

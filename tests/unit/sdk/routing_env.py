"""A client over a snapshot the test can change, a manual clock and a recorder that
keeps every observation as the router gave it (first chunk included)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from switchover.core.clock import ManualClock
from switchover.core.migration import Migration
from switchover.sdk.client import Client, MigrationHandle
from switchover.sdk.recorder import MemorySink, Recorder

NAME = "voice_v2"
CTX = {"user_id": "u1", "tenant_id": "t1"}


class MutableSource:
    """A snapshot source whose migration the test replaces (then ``client.refresh()``)."""

    def __init__(self, migration: Migration) -> None:
        self.migration = migration
        self.v = 1

    def set(self, migration: Migration) -> None:
        self.migration = migration
        self.v += 1

    def version(self) -> int:
        return self.v

    def load(self) -> tuple[int, list[Migration]]:
        return self.v, [self.migration]

    def wait_for_change(self, timeout: float, stop: threading.Event) -> None:
        stop.wait(timeout)

    def close(self) -> None:
        return None


class KeepingRecorder(Recorder):
    """A real recorder that also keeps each call's arguments, ``first_chunk_ms`` too."""

    def __init__(self) -> None:
        super().__init__(MemorySink(), background=False)
        self.calls: list[dict[str, Any]] = []
        self.outcomes: list[tuple[str, str, Mapping[str, float]]] = []

    def record(  # type: ignore[override]
        self,
        migration: str,
        operation: str,
        side: str,
        latency_ms: float,
        ok: bool = True,
        error_type: str | None = None,
        fallback: bool = False,
        outcome: Mapping[str, float] | None = None,
        at: float | None = None,
        total_failure: bool = False,
        tenant: str | None = None,
        first_chunk_ms: float | None = None,
    ) -> None:
        self.calls.append(
            {
                "operation": operation,
                "side": side,
                "latency_ms": latency_ms,
                "ok": ok,
                "error_type": error_type,
                "fallback": fallback,
                "outcome": dict(outcome or {}),
                "total_failure": total_failure,
                "first_chunk_ms": first_chunk_ms,
            }
        )
        super().record(
            migration,
            operation,
            side,
            latency_ms,
            ok,
            error_type,
            fallback,
            outcome,
            at,
            total_failure,
            tenant=tenant,
        )

    def add_outcome(  # type: ignore[override]
        self,
        migration: str,
        operation: str,
        side: str,
        outcome: Mapping[str, float],
        at: Any = None,
    ) -> None:
        self.outcomes.append((operation, side, dict(outcome)))
        super().add_outcome(migration, operation, side, outcome, at)


class Env:
    def __init__(self, percentage: int = 100, enabled: bool = True) -> None:
        self.migration = Migration(
            name=NAME,
            enabled=enabled,
            percentage=percentage,
            features={"tts": True, "stt": True, "llm": True, "whatsapp": True},
        )
        self.source = MutableSource(self.migration)
        self.clock = ManualClock()
        self.recorder = KeepingRecorder()
        self.client = Client(
            self.source, background=False, recorder=self.recorder, clock=self.clock
        )
        self.m: MigrationHandle = self.client.migration(NAME)

    def change(self, **fields: Any) -> None:
        """Replace the migration in the store and reload it."""
        fields.setdefault("version", self.migration.version + 1)
        self.migration = dataclasses.replace(self.migration, **fields)
        self.source.set(self.migration)
        assert self.client.refresh()

    def calls(self, operation: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.recorder.calls if operation is None or c["operation"] == operation]

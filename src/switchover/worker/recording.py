"""Each job of a worker recorded into a migration (``SWITCHOVER_MIGRATION``).

A worker serves one side of the migration (``SWITCHOVER_SIDE``: the core worker is the
candidate; a per-agent deployment running the same code records as legacy), so the
plan's gates see both sides on real jobs. Per job:

- ``stt``, ``llm``, ``tts``: one observation per turn, from the latencies the session
  puts on each conversation item (``ChatMessage.metrics``: the user's
  ``transcription_delay``; the reply's ``llm_node_ttft`` and ``tts_node_ttfb``, the
  waits a caller hears), and a failed one per unrecoverable provider error;
- ``call``: one observation when the job ends: latency is the time the caller waited
  for the session to start (dispatch, runtime config, providers, room), ok unless the
  session closed on an error or the job failed; the session's outcome as counters:
  ``call.completed`` or ``call.failed``, ``call.turns``, ``call.duration_s`` and
  ``close.<reason>``.

``SWITCHOVER_OPERATIONS`` limits which of the four are recorded. Recording never
raises into the call: the recorder repairs or drops what is not valid.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from switchover.core.dispatch import CallRequest

log = logging.getLogger("switchover.worker")

OPERATIONS = ("stt", "llm", "tts", "call")
SIDES = ("candidate", "legacy")


def _error_type(exc: BaseException | Any) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    code = getattr(exc, "label", None)  # DispatchRefused: its reason
    if isinstance(code, str):
        return code
    return type(exc).__name__


@dataclass
class JobRecorder:
    """Opens one :class:`JobRecord` per job, on ``side`` of ``handle``'s migration."""

    handle: Any
    side: str = "candidate"
    operations: tuple[str, ...] = OPERATIONS

    def job(self, call: CallRequest, started: float | None = None) -> JobRecord:
        """The record of one job; ``started``: ``time.perf_counter()`` when it arrived."""
        return JobRecord(self, call, time.perf_counter() if started is None else started)

    def context(self, call: CallRequest) -> dict[str, Any]:
        """The call as the migration's decisions see it (stickiness ``campaign_id``)."""
        return {k: v for k, v in call.to_dict().items() if v is not None}


@dataclass
class JobRecord:
    owner: JobRecorder
    call: CallRequest
    started: float
    session_started: float | None = None
    turns: int = 0
    errors: list[str] = field(default_factory=list)
    closed: str | None = None
    ended: bool = False

    # writing --------------------------------------------------------------------------

    def _tenant(self) -> str | None:
        snapshot = self.owner.handle.snapshot
        key = snapshot.tenant_key if snapshot is not None else "tenant_id"
        value = self.owner.context(self.call).get(key)
        return None if value is None else str(value)

    def _record(
        self,
        operation: str,
        latency_ms: float,
        ok: bool = True,
        error_type: str | None = None,
        outcome: Mapping[str, float] | None = None,
        first_chunk_ms: float | None = None,
    ) -> None:
        if operation not in self.owner.operations:
            return
        h = self.owner.handle
        h._client.recorder.record(
            h.name,
            operation,
            self.owner.side,
            max(0.0, latency_ms),
            ok,
            error_type,
            False,
            outcome,
            tenant=self._tenant(),
            first_chunk_ms=first_chunk_ms,
        )

    # the session's events -------------------------------------------------------------

    def attach(self, session: Any) -> None:
        """Listen to an ``AgentSession``: its metrics, errors, turns and close."""
        session.on("error", self._on_error)
        session.on("conversation_item_added", self._on_item)
        session.on("close", self._on_close)

    def session_ready(self) -> None:
        self.session_started = time.perf_counter()

    def _on_error(self, ev: Any) -> None:
        error = ev.error
        if getattr(error, "recoverable", False):
            return  # retried by the plugin; its final failure comes as another event
        kind = getattr(error, "type", "") or ""
        operation = {"llm_error": "llm", "stt_error": "stt", "tts_error": "tts"}.get(kind)
        cause = getattr(error, "error", error)
        self.errors.append(_error_type(cause))
        if operation is not None:
            self._record(operation, 0.0, False, _error_type(cause))

    def _on_item(self, ev: Any) -> None:
        role = getattr(ev.item, "role", None)
        metrics = getattr(ev.item, "metrics", None) or {}
        if role == "user" and "transcription_delay" in metrics:
            self._record("stt", metrics["transcription_delay"] * 1000)
        if role != "assistant":
            return
        self.turns += 1
        for operation, key in (("llm", "llm_node_ttft"), ("tts", "tts_node_ttfb")):
            if key in metrics:
                ms = metrics[key] * 1000
                self._record(operation, ms, first_chunk_ms=ms)

    def _on_close(self, ev: Any) -> None:
        reason = getattr(ev.reason, "value", str(ev.reason))
        self.closed = reason
        if ev.error is not None:
            self.errors.append(_error_type(getattr(ev.error, "error", ev.error)))

    # the end of the job ---------------------------------------------------------------

    def end(self, exc: BaseException | None = None) -> None:
        """The ``call`` observation, once per job, with the session's outcome."""
        if self.ended:
            return
        self.ended = True
        now = time.perf_counter()
        failed = exc is not None or self.closed == "error"
        error_type = _error_type(exc) if exc is not None else None
        if error_type is None and failed:
            error_type = self.errors[-1] if self.errors else "session_error"
        outcome = {
            "call.failed" if failed else "call.completed": 1.0,
            "call.turns": float(self.turns),
            "call.duration_s": round(now - self.started, 3),
        }
        if self.closed:
            outcome[f"close.{self.closed}"] = 1.0
        ready = self.session_started if self.session_started is not None else now
        self._record("call", (ready - self.started) * 1000, not failed, error_type, outcome)
        log.info(
            "job recorded on %s of %s: %s, %d turn(s)%s",
            self.owner.side,
            self.owner.handle.name,
            "failed" if failed else "completed",
            self.turns,
            f" ({error_type})" if error_type else "",
        )

"""The recorder's sink into a switchover server, for processes without database access.

Each batch goes to ``POST /v1/rollups`` with its idempotency key (the recorder's
:class:`~switchover.core.rollup.Batch` key, in the ``Idempotency-Key`` header and the
body), so a retry of a batch the server did store is not counted twice. A big batch
goes in parts of at most :data:`PART_ROLLUPS` rollups, each with a key of its own
derived from the batch's.

What the server refuses for good is reported, not retried forever: a 422 naming one
rollup or sample (``rollups[3].rollup.count``) drops that one and sends the rest again
(nothing of a refused request is stored); a 400, 413 or a 422 naming no item refuses
the part. Anything else (no answer, 401/403, 409, 429, 5xx) raises
:class:`~switchover.errors.StoreError`, and the recorder tries the same batch again at
its next flush.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

import httpx

from switchover.core.rollup import Rollup, RollupKey, WriteReport, batch_key
from switchover.errors import StoreError

PART_ROLLUPS = 5_000
PART_SAMPLES = 1_000
_ITEM = re.compile(r"^(rollups|samples)\[(\d+)\]")
_REFUSED_FOR_GOOD = (400, 413, 422)


class HttpSink:
    """Posts rollups to ``POST /v1/rollups`` of a switchover server (operator token)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def write(
        self, rollups: Sequence[tuple[RollupKey, Rollup]], samples: Sequence[dict[str, Any]]
    ) -> WriteReport | None:
        key = batch_key(rollups) or uuid.uuid4().hex
        items, extra = list(rollups), list(samples)
        parts = max(-(-len(items) // PART_ROLLUPS), -(-len(extra) // PART_SAMPLES), 1)
        refused: list[tuple[RollupKey, Rollup]] = []
        refused_samples = 0
        reasons: list[str] = []
        replay = False
        for i in range(parts):
            part = _Part(
                items[i * PART_ROLLUPS : (i + 1) * PART_ROLLUPS],
                extra[i * PART_SAMPLES : (i + 1) * PART_SAMPLES],
                key if parts == 1 else f"{key}.{i}",
            )
            self._post(part)
            refused += part.refused
            refused_samples += part.refused_samples
            reasons += part.reasons
            replay = replay or part.replay
        if not (refused or refused_samples or replay):
            return None
        return WriteReport(
            refused=tuple(refused),
            refused_samples=refused_samples,
            reason="; ".join(reasons[:3]) or None,
            replay=replay,
        )

    def _post(self, part: _Part) -> None:
        """Send ``part`` until the server stores it or refuses what is left of it."""
        while part.rollups or part.samples:
            content = part.body()
            try:
                response = self.http.post(
                    "/v1/rollups",
                    content=content,
                    headers={"Content-Type": "application/json", "Idempotency-Key": part.key},
                )
            except httpx.HTTPError as exc:
                raise StoreError(
                    f"the switchover server is unreachable ({type(exc).__name__})"
                ) from exc
            if response.status_code < 300:
                part.replay = _json(response).get("replay") is True
                return
            if response.status_code not in _REFUSED_FOR_GOOD:
                raise StoreError(
                    f"the switchover server answered {response.status_code} to /v1/rollups"
                )
            error = _json(response).get("error") or {}
            if not part.drop(str(error.get("field") or ""), str(error.get("message") or "")):
                part.refuse_all(f"{response.status_code}: {error.get('message') or 'refused'}")
                return


class _Part:
    """Part of a batch on its way to the server, and what the server refused of it."""

    def __init__(
        self, rollups: list[tuple[RollupKey, Rollup]], samples: list[dict[str, Any]], key: str
    ) -> None:
        self.rollups = rollups
        self.samples = samples
        self.key = key
        self.refused: list[tuple[RollupKey, Rollup]] = []
        self.refused_samples = 0
        self.reasons: list[str] = []
        self.replay = False

    def body(self) -> bytes:
        """The request's JSON; a rollup or sample JSON cannot hold (NaN) is refused here."""
        payload = self._payload()
        try:
            return json.dumps(payload, allow_nan=False).encode()
        except (TypeError, ValueError):
            pass
        for i in reversed(range(len(payload["rollups"]))):
            if not _serialisable(payload["rollups"][i]):
                self.drop(f"rollups[{i}]", "not JSON (a number that is not finite?)")
        for i in reversed(range(len(payload["samples"]))):
            if not _serialisable(payload["samples"][i]):
                self.drop(f"samples[{i}]", "not JSON (a number that is not finite?)")
        return json.dumps(self._payload(), allow_nan=False).encode()

    def _payload(self) -> dict[str, Any]:
        return {
            "rollups": [{"key": k._asdict(), "rollup": r.to_dict()} for k, r in self.rollups],
            "samples": self.samples,
            "idempotency_key": self.key,
        }

    def drop(self, field: str, reason: str) -> bool:
        """Leave out the rollup or sample ``field`` names; False if it names none."""
        match = _ITEM.match(field)
        if match is None:
            return False
        kind, index = match.group(1), int(match.group(2))
        if kind == "rollups" and index < len(self.rollups):
            self.refused.append(self.rollups.pop(index))
        elif kind == "samples" and index < len(self.samples):
            self.samples.pop(index)
            self.refused_samples += 1
        else:
            return False
        self.reasons.append(f"{field}: {reason}"[:300])
        return True

    def refuse_all(self, reason: str) -> None:
        self.refused += self.rollups
        self.refused_samples += len(self.samples)
        self.rollups, self.samples = [], []
        self.reasons.append(reason[:300])


def _serialisable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}

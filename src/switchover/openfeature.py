"""``SwitchoverProvider(client)``: an OpenFeature provider over the client's local snapshot.

>>> from openfeature import api
>>> api.set_provider(SwitchoverProvider(switchover.connect(url)))
>>> api.get_client().get_boolean_value("voice_v2.stt", False, EvaluationContext("user-42"))

Flags answer as over OFREP (:mod:`switchover.core.flag`): ``MIGRATION`` or
``MIGRATION.FEATURE``, true for the candidate, the side as the variant (a string
evaluation answers the side itself), ``targetingKey`` as the stickiness key. Each
evaluation is a decision on the snapshot in memory: no I/O.

Events: ``PROVIDER_READY`` once a snapshot is loaded (``initialize`` waits for one),
``PROVIDER_STALE`` while the client reports its snapshot stale (the store cannot be
reached, or hangs), ``PROVIDER_READY`` again when it is fresh, and
``PROVIDER_CONFIGURATION_CHANGED`` with the flags of each migration that changed.

``track(name, context, details)`` records the outcome counter ``name`` (``details.value``,
default 1) with :meth:`~switchover.sdk.client.MigrationHandle.record_outcome` for the
side the context is on, in the migration of the ``flag`` attribute of the details (or
the provider's ``flag``), as the operation of the ``operation`` attribute (default: the
flag's feature, else ``openfeature``).

Needs the ``openfeature`` extra: ``pip install 'switchover[openfeature]'``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

try:
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.event import ProviderEventDetails
    from openfeature.exception import ErrorCode, ProviderNotReadyError
    from openfeature.flag_evaluation import FlagResolutionDetails, Reason
    from openfeature.provider import AbstractProvider, Metadata
    from openfeature.track import TrackingEventDetails
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError(
        "switchover.openfeature needs the OpenFeature SDK: pip install 'switchover[openfeature]'"
    ) from exc

from switchover.core.flag import TARGETING_KEY, evaluate, resolve_key, with_targeting_key
from switchover.sdk.client import Client

__all__ = ["SwitchoverProvider"]

log = logging.getLogger("switchover.openfeature")
DEFAULT_OPERATION = "openfeature"


def _context(ctx: EvaluationContext | None) -> Mapping[str, Any]:
    if ctx is None:
        return {}
    if ctx.targeting_key is None:
        return ctx.attributes
    return {**ctx.attributes, TARGETING_KEY: ctx.targeting_key}


class SwitchoverProvider(AbstractProvider):
    """OpenFeature flags from ``client``'s snapshot (see the module's docstring).

    ``check_interval``: seconds between looks at the snapshot's health for the
    stale/ready and changed events (default: the client's refresh interval; None
    starts no thread, and :meth:`check` is called by hand).
    """

    def __init__(
        self,
        client: Client,
        *,
        flag: str | None = None,
        check_interval: float | object | None = ...,
    ) -> None:
        super().__init__()
        self.client = client
        self.flag = flag
        self._interval = client.refresh_interval if check_interval is ... else check_interval
        self._stale = False
        self._versions: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # lifecycle ----------------------------------------------------------------------

    def get_metadata(self) -> Metadata:
        return Metadata(name="switchover")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        """Ready once a snapshot is loaded: one refresh if none is yet."""
        if not self.client.health()["loaded"]:
            self.client.refresh()
        health = self.client.health()
        if not health["loaded"]:
            raise ProviderNotReadyError(
                f"no snapshot is loaded: {health['last_error'] or 'the store is unreachable'}"
            )
        self._versions = self._migration_versions()
        self._stale = bool(health["stale"])
        if isinstance(self._interval, int | float) and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._watch, name="switchover-openfeature", daemon=True
            )
            self._thread.start()

    def shutdown(self) -> None:
        """Stops the health thread; the client stays open (it is the caller's)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _watch(self) -> None:
        assert isinstance(self._interval, int | float)
        while not self._stop.wait(self._interval):
            try:
                self.check()
            except Exception:  # never let the thread die silently
                log.exception("switchover: the OpenFeature provider's health check failed")

    def check(self) -> None:
        """Look at the snapshot once and emit what changed: stale, ready, flags changed."""
        health = self.client.health()
        stale = bool(health["stale"])
        if stale and not self._stale:
            reason = health["last_error"] or "the store has not answered in time"
            self.emit_provider_stale(ProviderEventDetails(message=f"snapshot stale: {reason}"))
        elif self._stale and not stale:
            self.emit_provider_ready(ProviderEventDetails(message="snapshot fresh again"))
        self._stale = stale
        versions = self._migration_versions()
        if versions != self._versions:
            changed = {
                n
                for n in versions.keys() | self._versions.keys()
                if versions.get(n) != self._versions.get(n)
            }
            self._versions = versions
            self.emit_provider_configuration_changed(
                ProviderEventDetails(flags_changed=self._flags(changed))
            )

    def _migration_versions(self) -> dict[str, int]:
        out = {}
        for name in self.client.health()["migrations"]:
            compiled = self.client.compiled(name)
            if compiled is not None:
                out[name] = compiled.migration.version
        return out

    def _flags(self, names: set[str]) -> list[str]:
        flags = []
        for name in sorted(names):
            flags.append(name)
            compiled = self.client.compiled(name)
            if compiled is not None:
                flags.extend(f"{name}.{f}" for f in sorted(compiled.migration.features))
        return flags

    # evaluation ---------------------------------------------------------------------

    def _resolve(self, flag_key: str, ctx: EvaluationContext | None) -> FlagResolutionDetails[Any]:
        result = evaluate(flag_key, self.client.compiled, _context(ctx))
        if not result.ok:
            return FlagResolutionDetails(
                value=None,
                error_code=ErrorCode(result.error_code),
                error_message=result.error_details,
                reason=Reason.ERROR,
                flag_metadata=result.metadata,
            )
        return FlagResolutionDetails(
            value=result.value,
            reason=result.reason,
            variant=result.variant,
            flag_metadata=result.metadata,
        )

    def _with_default(
        self, details: FlagResolutionDetails[Any], default: Any
    ) -> FlagResolutionDetails[Any]:
        if details.error_code is not None:
            details.value = default
        return details

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._with_default(self._resolve(flag_key, evaluation_context), default_value)

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        """The side, ``candidate`` or ``legacy``."""
        details = self._with_default(self._resolve(flag_key, evaluation_context), default_value)
        if details.error_code is None:
            details.value = details.variant
        return details

    def _mismatch(self, flag_key: str, default: Any, kind: str) -> FlagResolutionDetails[Any]:
        return FlagResolutionDetails(
            value=default,
            error_code=ErrorCode.TYPE_MISMATCH,
            error_message=f"{flag_key} is a boolean flag (true = candidate), not {kind}; "
            "ask for a boolean, or a string for the side",
            reason=Reason.ERROR,
        )

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return self._mismatch(flag_key, default_value, "an integer")

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._mismatch(flag_key, default_value, "a float")

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[Any] | Mapping[str, Any],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[Any] | Mapping[str, Any]]:
        return self._mismatch(flag_key, default_value, "an object")

    # tracking -----------------------------------------------------------------------

    def track(
        self,
        tracking_event_name: str,
        evaluation_context: EvaluationContext | None = None,
        tracking_event_details: TrackingEventDetails | None = None,
    ) -> None:
        """Record outcome ``tracking_event_name`` for the context's side; problems are
        logged, never raised into the caller."""
        attributes = tracking_event_details.attributes if tracking_event_details else {}
        value = tracking_event_details.value if tracking_event_details else None
        flag = attributes.get("flag", self.flag)
        try:
            if not isinstance(flag, str):
                raise ValueError(
                    "say which flag the event belongs to: SwitchoverProvider(client, "
                    "flag='MIGRATION.FEATURE') or the tracking detail attribute 'flag'"
                )
            found = resolve_key(flag, self.client.compiled)
            if found is None:
                raise ValueError(f"flag {flag!r} is not a migration in the snapshot")
            compiled, feature = found
            operation = attributes.get("operation") or feature or DEFAULT_OPERATION
            context = with_targeting_key(
                _context(evaluation_context), compiled.migration.stickiness
            )
            handle = self.client.migration(compiled.migration.name)
            side = handle.decide(feature, context).side
            handle.record_outcome(
                str(operation),
                {tracking_event_name: 1.0 if value is None else float(value)},
                side=side,
            )
        except (ValueError, TypeError) as exc:
            log.warning("switchover: track(%r) not recorded: %s", tracking_event_name, exc)

"""Calls pinned to one side: ``with m.call(call_id, ctx) as call:`` decides once per call.

A voice call runs several operations (STT, LLM, TTS) in turn; a percentage change or a
snapshot reload in the middle of it must not put its TTS on one side and its next STT
on the other. Entering the block decides once, on the snapshot of that moment; every
operation routed inside it (``call.route(...)``, or ``m.route(...)`` itself, through a
context variable) then uses that snapshot's version and that side. Only the kill switch
(the master switch or the operation's feature switched off in the *current* snapshot)
overrides the pin, at the call's next operation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

from switchover.core.decision import CompiledMigration, Decision, Side

_EMPTY: Mapping[str, Any] = {}

PINS: ContextVar[Mapping[str, Pin] | None] = ContextVar("switchover_pins", default=None)
"""The pins of the calls the current context is inside, by migration name."""


class Pin:
    """One call's decision, made once; per feature, derived from it and cached."""

    __slots__ = ("_by_feature", "call_id", "compiled", "context", "decision", "tenant")

    def __init__(
        self,
        call_id: str,
        context: Mapping[str, Any] | None,
        compiled: CompiledMigration | None,
        decision: Decision,
    ) -> None:
        self.call_id = call_id
        self.context = context or _EMPTY
        self.compiled = compiled
        self.decision = decision
        self._by_feature: dict[str | None, Decision] = {None: decision}
        tenant = None
        if compiled is not None and context:
            tenant = context.get(compiled.tenant_key)
            if tenant is not None and tenant.__class__ is not str:
                tenant = str(tenant)
        self.tenant: str | None = tenant

    def decide(self, feature: str | None, current: CompiledMigration | None) -> Decision:
        """The pinned side for ``feature``, unless the current snapshot kills it."""
        if current is not None:
            forced = current.fixed(feature)
            if forced is not None:
                return forced
        d = self._by_feature.get(feature)
        if d is None:
            d = self.decision
            if self.compiled is not None:
                off = self.compiled.fixed(feature)  # off when the call began: off for it
                if off is not None:
                    d = off
                else:
                    d = Decision(d.side, d.reason, d.migration, feature, d.version)
            self._by_feature[feature] = d
        return d


class PinnedCall:
    """What ``m.call(call_id, ctx)`` returns: a sync and an async context manager.

    Inside the block, ``call.route(op, *args, legacy=…, candidate=…)`` (and
    ``route_sync``, ``route_stream``, ``shadow``) route with the call's context, and so
    does the migration handle's own ``m.route(op, ctx, …)``: the pin is in a context
    variable, so framework plug-ins that call ``m.route`` keep the call's side too.
    """

    __slots__ = ("_handle", "_token", "pin")

    def __init__(self, handle: Any, pin: Pin) -> None:
        """``handle``: the migration handle (not imported here: it imports this)."""
        self._handle = handle
        self.pin = pin
        self._token: Token[Mapping[str, Pin] | None] | None = None

    @property
    def call_id(self) -> str:
        return self.pin.call_id

    @property
    def side(self) -> Side:
        """The side the call was pinned to when it began."""
        return self.pin.decision.side

    @property
    def version(self) -> int:
        """The migration version the call was pinned to (0: no snapshot)."""
        return self.pin.decision.version

    def decide(self, feature: str | None = None) -> Decision:
        """The decision the call's next operation on ``feature`` gets."""
        return self._handle._router.decide_pinned(self.pin, feature)

    # routing with the call's context ------------------------------------------------

    async def route(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        return await self._handle.route(operation, self.pin.context, *args, **kwargs)

    def route_sync(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        return self._handle.route_sync(operation, self.pin.context, *args, **kwargs)

    def route_stream(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        return self._handle.route_stream(operation, self.pin.context, *args, **kwargs)

    def route_stream_sync(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        return self._handle.route_stream_sync(operation, self.pin.context, *args, **kwargs)

    async def shadow(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        return await self._handle.shadow(operation, self.pin.context, *args, **kwargs)

    # context managers -----------------------------------------------------------------

    def __enter__(self) -> PinnedCall:
        current = PINS.get()
        pins = dict(current) if current else {}
        pins[self._handle.name] = self.pin
        self._token = PINS.set(pins)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            PINS.reset(self._token)
            self._token = None

    async def __aenter__(self) -> PinnedCall:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def current_pin(name: str, _get: Callable[[], Mapping[str, Pin] | None] = PINS.get) -> Pin | None:
    pins = _get()
    return None if pins is None else pins.get(name)

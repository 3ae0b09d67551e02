"""What the client and the router share, so that neither imports the other.

The router needs three things from the client that owns it: the compiled migration
of the current snapshot, the decision to give when that migration is absent, and the
recorder. :class:`SnapshotView` names them; ``Client`` provides them. The ``routed``
decorator calls a migration handle through :class:`RoutedHandle`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from switchover.core.decision import CompiledMigration, Decision
from switchover.sdk.recorder import Recorder

Outcome = Mapping[str, float] | Callable[[Any], Mapping[str, float] | None] | None
"""Outcome counters for a call: a mapping, or a function of the call's result."""

ErrorHook = Callable[[str, BaseException], None]
"""Hears about a user callable that failed (``"compare"``, ``"outcome"``) and why."""


class SnapshotView(Protocol):
    """What a router reads from its client on every call."""

    @property
    def recorder(self) -> Recorder: ...

    def compiled(self, name: str) -> CompiledMigration | None:
        """Migration ``name`` as compiled from the current snapshot, or None."""
        ...

    def missing(self, name: str, feature: str | None) -> Decision:
        """The (legacy) decision for a migration that is not in the snapshot."""
        ...


class RoutedHandle(Protocol):
    """What the ``routed`` decorator calls: a migration handle's two route forms."""

    async def route(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        *args: Any,
        legacy: Callable[..., Any],
        candidate: Callable[..., Any],
        **kwargs: Any,
    ) -> Any: ...

    def route_sync(
        self,
        operation: str,
        context: Mapping[str, Any] | None,
        *args: Any,
        legacy: Callable[..., Any],
        candidate: Callable[..., Any],
        **kwargs: Any,
    ) -> Any: ...

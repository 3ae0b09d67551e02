"""What a client talks to: a :class:`Backend` (store, server, or memory).

``backend_for(url)`` picks the implementation a URL names and imports only it:
SQLAlchemy for a database URL, httpx for a server URL, nothing for memory.
"""

from __future__ import annotations

from switchover.core.clock import Clock
from switchover.sdk.backends.base import Backend, SnapshotSource, SourceBackend, as_backend
from switchover.sdk.backends.memory import MemoryBackend

__all__ = [
    "Backend",
    "MemoryBackend",
    "SnapshotSource",
    "SourceBackend",
    "as_backend",
    "backend_for",
]

HTTP_SCHEMES = ("http://", "https://")


def backend_for(
    url: str,
    token: str | None = None,
    *,
    retention_days: float | None = None,
    clock: Clock | None = None,
) -> Backend:
    """A server backend for an ``http(s)://`` URL, else a store backend.

    A database URL other than ``sqlite://`` or ``postgresql://`` is refused by the store
    with a ValidationError that names the two. ``retention_days`` and ``clock`` apply to
    the store (how long rollups are kept; the time rollups are pruned by).
    """
    if url.startswith(HTTP_SCHEMES):
        from switchover.sdk.backends.http import HttpBackend

        return HttpBackend(url, token)
    from switchover.sdk.backends.store import StoreBackend

    if retention_days is None:
        return StoreBackend(url, clock=clock)
    return StoreBackend(url, retention_days=retention_days, clock=clock)

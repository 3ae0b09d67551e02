"""The in-app client: a local snapshot, refreshed in the background, decides each call."""

from switchover.sdk.backends import Backend, MemoryBackend, backend_for
from switchover.sdk.client import Client, MigrationHandle, connect

__all__ = ["Backend", "Client", "MemoryBackend", "MigrationHandle", "backend_for", "connect"]

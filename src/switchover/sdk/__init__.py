"""The in-app client: a local snapshot, refreshed in the background, decides each call."""

from switchover.sdk.client import Client, MigrationHandle, connect

__all__ = ["Client", "MigrationHandle", "connect"]

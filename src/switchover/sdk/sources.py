"""Where a client's snapshot comes from: the store itself, or a switchover server.

The sources now live beside their backends (``sdk/backends``); this module keeps their
old import path. Importing it imports both SQLAlchemy and httpx: code that wants one
imports ``switchover.sdk.backends.store`` or ``switchover.sdk.backends.http``.
"""

from __future__ import annotations

from switchover.sdk.backends import HTTP_SCHEMES
from switchover.sdk.backends.base import SnapshotSource
from switchover.sdk.backends.http import HttpSource
from switchover.sdk.backends.store import StoreSource

__all__ = ["HttpSource", "SnapshotSource", "StoreSource", "source_for"]


def source_for(url: str, token: str | None = None) -> SnapshotSource:
    if url.startswith(HTTP_SCHEMES):
        return HttpSource(url, token)
    return StoreSource(url)

"""Settings from the environment, with the CLI's options laid on top."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass

from switchover.store.engine import DEFAULT_URL


def default_actor() -> str:
    """Who a CLI change is attributed to when --by is not given."""
    explicit = os.environ.get("SWITCHOVER_ACTOR")
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_URL
    host: str = "127.0.0.1"
    port: int = 8080
    refresh_interval: float = 1.0
    data_url: str | None = None
    """The agent-data database of ``switchover data``, when it is not the store."""

    @property
    def agent_data_url(self) -> str:
        return self.data_url or self.database_url

    @classmethod
    def from_env(cls, database_url: str | None = None) -> Settings:
        return cls(
            database_url=database_url or os.environ.get("SWITCHOVER_DATABASE_URL") or DEFAULT_URL,
            host=os.environ.get("SWITCHOVER_HOST", "127.0.0.1"),
            port=int(os.environ.get("SWITCHOVER_PORT", "8080")),
            refresh_interval=float(os.environ.get("SWITCHOVER_REFRESH_INTERVAL", "1.0")),
            data_url=os.environ.get("SWITCHOVER_DATA_URL") or None,
        )

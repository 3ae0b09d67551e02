"""One place that builds the store, the services and the clock, for every entry point."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from switchover.access import TokenService
from switchover.agents.service import AgentService
from switchover.control.plans import PlanService
from switchover.core.clock import Clock, SystemClock
from switchover.data.source import Source
from switchover.metrics.service import MetricsService
from switchover.rollout.service import RolloutService
from switchover.settings import Settings
from switchover.store.engine import create_store_engine
from switchover.store.repository import Store

if TYPE_CHECKING:
    from switchover.control.controller import Controller
    from switchover.control.notify import Notifier


@dataclass
class App:
    settings: Settings
    clock: Clock
    store: Store
    rollout: RolloutService
    tokens: TokenService
    metrics: MetricsService
    plans: PlanService
    agents: AgentService

    @functools.cached_property
    def data_source(self) -> Source:
        """The agent-data database the HTTP API and the dashboard read runs and backups from."""
        return Source(self.settings.agent_data_url)

    @functools.cached_property
    def notifier(self) -> Notifier:
        """The one webhook sender of this process (a background thread, built on first use)."""
        from switchover.control.notify import Notifier

        return Notifier()

    def controller(self) -> Controller:
        """The rollout controller over this app's store, clock and notifier."""
        from switchover.control.controller import Controller

        return Controller(self.store, self.clock, notifier=self.notifier)

    def close(self) -> None:
        if "notifier" in self.__dict__:
            self.notifier.flush(5.0)
            self.notifier.close()
        if "data_source" in self.__dict__:
            self.data_source.dispose()
        self.store.dispose()


def bootstrap(
    settings: Settings | None = None,
    *,
    migrate: bool = False,
    clock: Clock | None = None,
) -> App:
    """Wire the application. ``migrate`` applies pending schema migrations first."""
    settings = settings or Settings.from_env()
    clock = clock or SystemClock()
    store = Store(create_store_engine(settings.database_url))
    if migrate:
        from switchover.store.schema import upgrade  # Alembic: only when asked

        upgrade(store.engine)
    return App(
        settings=settings,
        clock=clock,
        store=store,
        rollout=RolloutService(store, clock),
        tokens=TokenService(store, clock),
        metrics=MetricsService(store, clock),
        plans=PlanService(store, clock),
        agents=AgentService(store, clock),
    )

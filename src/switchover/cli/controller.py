"""CLI: ``switchover controller run``, the loop that judges plans and acts."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated, Any

import typer

from switchover.cli import render
from switchover.cli.common import Json, app_of, esc, handled
from switchover.errors import ValidationError

controller_app = typer.Typer(help="The controller loop that judges and acts.", no_args_is_help=True)


@controller_app.command("run")
@handled
def controller_run(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="One pass (if leader), print what it did, exit.")
    ] = False,
    poll: Annotated[
        float, typer.Option("--poll", help="Seconds between passes (each plan keeps its interval).")
    ] = 1.0,
    as_json: Json = False,
) -> None:
    """Run the controller; with several replicas only the leader acts (a lock in the store)."""
    from switchover.control.controller import LOCK_NAME

    if poll <= 0:
        raise ValidationError("--poll must be more than 0", field="poll")
    a = app_of(ctx, migrate=True)
    controller = a.controller()
    if once:
        lock = a.store.lock(LOCK_NAME, controller.holder, clock=a.clock)
        lock.require("the controller")
        try:
            outcomes = controller.tick()
        finally:
            lock.release()
        data = [
            {"migration": o.migration, "verdict_id": o.verdict_id, **o.verdict.to_dict()}
            for o in outcomes
        ]
        if as_json:
            render.emit_json(data)
        elif not data:
            render.console.print("nothing due: no active plan has an interval to judge")
        for o in outcomes if not as_json else ():
            render.console.print(
                esc(
                    f"{o.migration}: {o.verdict.action.value} ({o.verdict.severity}): "
                    f"{o.verdict.summary()}"
                )
            )
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def report(o: Any) -> None:
        if o.verdict.action.value != "continue":
            render.console.print(
                esc(
                    f"{o.migration}: {o.verdict.action.value} ({o.verdict.severity}): "
                    f"{o.verdict.summary()}"
                )
            )

    controller.on_outcome = report
    render.console.print(f"controller {esc(controller.holder)} running (Ctrl-C to stop)")
    try:
        controller.run(stop, poll=poll)
    except KeyboardInterrupt:
        stop.set()

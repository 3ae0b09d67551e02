"""``switchover``: manage migrations, rollouts, tenants and tokens; serve the API.

The root app, and the one place where every command group and top-level verb joins it.
Each group lives in its own module (``cli/migrations.py``, ``cli/plans.py``, …) that
imports only ``cli/common.py`` and ``cli/render*.py``; none imports this module, so there
is no import cycle. The store, the services and their libraries (SQLAlchemy, Alembic,
SciPy, FastAPI, …) are imported inside the commands that use them, so ``--help`` stays
fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from switchover.cli import (
    agents,
    controller,
    data,
    features,
    migrations,
    plans,
    proxy,
    report,
    rollout,
    serve,
    status,
    tenants,
    tokens,
    worker,
)
from switchover.cli.common import CliState, load_env_file

app = typer.Typer(
    name="switchover",
    help="Move AI voice and chat agents from a legacy implementation to a new one, "
    "with zero downtime: sticky per-call decisions, live rollout changes, audit log.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Store URL: sqlite:///FILE or postgresql+psycopg://USER@HOST/DB. "
            "Default: $SWITCHOVER_DATABASE_URL, else sqlite:///./switchover.db.",
            show_default=False,
        ),
    ] = None,
) -> None:
    load_env_file()
    state = CliState(db)
    ctx.obj = state
    ctx.call_on_close(state.close)  # the store's connections go when the command ends


# top-level verbs, in the order --help lists them
app.command()(serve.init)
app.command()(rollout.kill)
app.command()(rollout.resume)
app.command()(status.status)
app.command()(status.audit)
app.command()(status.decide)
app.command()(status.metrics)
app.command()(report.report)
app.command()(serve.serve)
for _verb, _doc in plans.VERBS.items():
    app.command(_verb, help=_doc)(plans.plan_verb(_verb, _doc))
app.command()(plans.rollback)
app.command("loadtest")(worker.loadtest)
app.command()(proxy.proxy)

# command groups
app.add_typer(migrations.migration_app, name="migration")
app.add_typer(rollout.rollout_app, name="rollout")
app.add_typer(features.feature_app, name="feature")
app.add_typer(tenants.tenant_app, name="tenant")
app.add_typer(tokens.token_app, name="token")
app.add_typer(data.data_app, name="data")
app.add_typer(plans.plan_app, name="plan")
app.add_typer(controller.controller_app, name="controller")
app.add_typer(agents.agents_app, name="agents")
app.add_typer(worker.worker_app, name="worker")


def main() -> None:
    app()


if __name__ == "__main__":
    main()

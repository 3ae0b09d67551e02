"""What every command module shares: the per-invocation state, the error wrapper, the
common option types and the consoles. Imports no other CLI module and nothing heavy:
``switchover --help`` loads this, so the store, the services and their libraries are
imported inside the commands that use them.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from switchover.errors import SwitchoverError, ValidationError

if TYPE_CHECKING:
    from switchover.bootstrap import App
    from switchover.commands import Command, Outcome
    from switchover.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

# emoji=False: ":name:" in data (times, Redis patterns) prints as written, never as an emoji
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)


def esc(value: object) -> str:
    """``value`` as text Rich prints literally (``[...]`` in data is not markup); None
    is an empty cell, as Rich shows it."""
    return "" if value is None else escape(str(value))


class CliState:
    """One invocation's state, kept in the root Typer context (``ctx.obj``): the store URL
    given with ``--db`` and, built on first use, the wired application."""

    def __init__(self, db: str | None = None) -> None:
        self.db = db
        self._app: App | None = None

    def settings(self) -> Settings:
        from switchover.settings import Settings

        return Settings.from_env(self.db)

    def app(self, *, migrate: bool = False) -> App:
        """The application (store and services), bootstrapped once per invocation;
        ``migrate`` applies pending schema migrations when it is first built."""
        if self._app is None:
            from switchover.bootstrap import bootstrap

            self._app = bootstrap(self.settings(), migrate=migrate)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            app, self._app = self._app, None
            app.close()


ENV_FILE = ".env"


def load_env_file(path: str = ENV_FILE) -> bool:
    """Read ``./.env`` into the environment (variables already set win), so the server
    and the CLI run from one directory share ``SWITCHOVER_SECRET_KEY`` and the rest."""
    import os

    if not os.path.isfile(path):
        return False
    from dotenv import load_dotenv

    return load_dotenv(path, override=False)


def state_of(ctx: typer.Context) -> CliState:
    """The invocation's state; created on the root context when no callback made it."""
    found = ctx.find_object(CliState)
    if found is None:
        root = ctx.find_root()
        found = root.obj = CliState()
        root.call_on_close(found.close)
    return found


def app_of(ctx: typer.Context, *, migrate: bool = False) -> App:
    return state_of(ctx).app(migrate=migrate)


Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
By = Annotated[
    str | None,
    typer.Option(
        "--by",
        help="Who makes the change (audit log). Default: $SWITCHOVER_ACTOR or your user name.",
        show_default=False,
    ),
]
Reason = Annotated[str, typer.Option("--reason", help="Why (audit log).")]
ExpectVersion = Annotated[
    int | None,
    typer.Option(
        "--expect-version",
        help="Refuse the change unless the migration is still at this version "
        "(optimistic concurrency for scripts).",
    ),
]
Name = Annotated[str, typer.Argument(help="The migration's name, e.g. voice_v2.")]


def who(by: str | None) -> str:
    """The audit actor: ``--by``, else $SWITCHOVER_ACTOR, else the user name."""
    if by is not None:
        return by
    from switchover.settings import default_actor

    return default_actor()


_WORDS = {"expected_version": "--expect-version", "name": "NAME"}
"""Fields whose command-line spelling is not ``--`` plus the field in kebab case."""


def cli_word(field: str) -> str:
    """How the command line names a field an error refers to: ``target_percentage`` is
    ``--target-percentage``."""
    return _WORDS.get(field) or "--" + field.replace("_", "-")


def handled(fn: F) -> F:
    """Turn switchover errors into a message on stderr (fields worded as the options
    that set them) and the error's exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SwitchoverError as exc:
            field = f" ({esc(exc.field)})" if exc.field else ""
            message = esc(exc.worded(cli_word))
            err_console.print(f"[red]error{field}:[/red] {message}", highlight=False)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def confirm(question: str, yes: bool, flag: str = "--yes") -> None:
    """Ask on the terminal unless ``yes``; off a terminal, refuse and name ``flag``."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise ValidationError(
            f"{question} Add {flag} to confirm when not at a terminal.", field="yes"
        )
    if not typer.confirm(question, default=False, err=True):
        err_console.print("cancelled: nothing was changed")
        raise typer.Exit(1)


def run_command(
    ctx: typer.Context,
    command: Command,
    *,
    migrate: bool = False,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> Outcome:
    """Hand ``command`` to the one handler the API and the dashboard use too."""
    from switchover.commands import handle

    return handle(app_of(ctx, migrate=migrate), command, progress=progress)

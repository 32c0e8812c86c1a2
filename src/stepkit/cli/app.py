"""The root Typer app, its global options, and the one place errors become messages.

Each command group lives in its own module and is mounted here. A :class:`StepkitError`
becomes one line on stderr and exit code 1 (2 for usage errors); ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
import typer.main

from stepkit.errors import StepkitError
from stepkit.version import __version__

#: Each command of the root, and the module and attribute it lives in: a Typer app (a
#: group of commands) or a function (one command), loaded when the command is looked up.
COMMANDS: dict[str, tuple[str, str]] = {
    "registry": ("stepkit.cli.registry", "app"),
    "catalog": ("stepkit.cli.catalog", "app"),
    "test": ("stepkit.cli.testing", "app"),
    "plan": ("stepkit.cli.run", "plan"),
    "run": ("stepkit.cli.run", "run"),
    "runs": ("stepkit.cli.runs", "app"),
    "artifacts": ("stepkit.cli.artifacts", "app"),
    "env": ("stepkit.cli.env", "app"),
    "doctor": ("stepkit.cli.doctor", "doctor"),
}


class Commands(typer.core.TyperGroup):
    """The root's commands, each built when click looks it up (Click's "lazily loading
    subcommands" pattern: click still parses everything).

    A start-up shortcut: building every group's commands with their parameters, and
    importing every command module, cost each command ~60 ms of its start (``python -X
    importtime``, cProfile of ``stepkit artifacts add``) — most of a short command's time.
    ``stepkit --help`` and the CLI reference still see every command.
    """

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._built: dict[str, Any] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        if cmd_name not in self._built:
            module, attribute = COMMANDS[cmd_name]
            target = getattr(importlib.import_module(module), attribute)
            # mounted on an app of its own as it would be on the root, so it is built
            # with the root's settings
            holder = typer.Typer(add_completion=False, rich_markup_mode=None)
            if isinstance(target, typer.Typer):
                holder.add_typer(target, name=cmd_name)
                built = typer.main.get_command(holder)
                self._built[cmd_name] = built.get_command(ctx, cmd_name)  # type: ignore[attr-defined]
            else:  # one command: an app holding only it is that command
                holder.command(cmd_name)(target)
                self._built[cmd_name] = typer.main.get_command(holder)
        return self._built[cmd_name]


app = typer.Typer(
    name="stepkit",
    cls=Commands,
    help="Find, test, run and cache the steps of data and ML pipelines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@dataclass(slots=True)
class Globals:
    """What the root options set, handed to every command through ``ctx.obj``."""

    project: Path | None = None
    debug: bool = False


def _version(value: bool) -> None:
    if value:
        typer.echo(f"stepkit {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    project: Annotated[
        Path | None,
        typer.Option(
            "--project",
            "-p",
            help="The project: a stepkit.toml or its folder (default: STEPKIT_PROJECT, "
            "else the nearest stepkit.toml above the current folder).",
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks instead of one-line errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Find, test, run and cache the steps of data and ML pipelines."""
    ctx.obj = Globals(project=project, debug=debug)
    import logging

    from stepkit.observability import configure_logging_when_used

    # People read the CLI's tables and summaries; structured events are for --debug (and
    # for programs, which configure logging themselves). Set up when first used: most
    # commands log nothing, and importing structlog would cost them a tenth of their time.
    configure_logging_when_used(json=True, level=logging.DEBUG if debug else logging.ERROR)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning library errors into one-line messages.

    Click handles usage errors itself (exit 2); a :class:`StepkitError` prints as
    ``error: …`` and exits 1; anything unexpected also prints one line unless ``--debug``.
    """
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app(args=args, prog_name="stepkit")
    except StepkitError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    except Exception as exc:  # the CLI edge: no traceback for users unless --debug
        if debug:
            raise
        typer.echo(f"error: {_unexpected(exc)} (run with --debug for the traceback)", err=True)
        raise SystemExit(1) from None


def _unexpected(exc: Exception) -> str:
    """What to say of an exception no library layer turned into a :class:`StepkitError`."""
    import sqlite3  # imported here: only an error pays for it

    if isinstance(exc, sqlite3.Error):
        # every store maps its own SQLite errors, naming its file; one that slipped through
        # cannot say which file it was, but doctor can find a damaged one
        return (
            f"a stepkit store (SQLite) failed: {exc}; `stepkit doctor` checks every store "
            "and names a damaged one"
        )
    return f"unexpected {type(exc).__name__}: {exc}"

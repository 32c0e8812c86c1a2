"""The root Typer app, its global options, and the one place errors become messages.

Each command group lives in its own module and is mounted here. A :class:`StepkitError`
becomes one line on stderr and exit code 1 (2 for usage errors); ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import copy
import importlib
import sys
from abc import ABCMeta, abstractmethod
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


class _Lazy(typer.core.TyperGroup, metaclass=ABCMeta):
    """A group whose commands are built when click looks them up (Click's "lazily loading
    subcommands" pattern: click still parses everything).

    A start-up shortcut: building a command (its parameters from the function's signature
    and type hints) costs about a millisecond, importing a command module several; building
    every command of every group, and importing every module, cost each command ~60 ms of
    its start (``python -X importtime``, cProfile of ``stepkit artifacts add``) — most of a
    short command's time. ``stepkit --help`` and the CLI reference still see every command.
    """

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._built: dict[str, Any] = {}

    @abstractmethod
    def _build(self, ctx: Any, cmd_name: str) -> Any:
        """The click command ``cmd_name`` names, or None (each kind of group says how)."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self._built:
            built = self._build(ctx, cmd_name)
            if built is None:
                return None
            self._built[cmd_name] = built
        return self._built[cmd_name]

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        # Typer's "did you mean" picks from the commands already built: for a name that is
        # none of them (an error about to be said), build them all so it can.
        if args and self.get_command(ctx, args[0]) is None:
            for name in self.list_commands(ctx):
                self.commands.setdefault(name, self.get_command(ctx, name))
        return super().resolve_command(ctx, args)


class Commands(_Lazy):
    """The root's commands: each module imported, and its group or command built, when
    click looks the command up."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def _build(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name]
        target = getattr(importlib.import_module(module), attribute)
        if not isinstance(target, typer.Typer):  # one command: an app holding only it is it
            holder = _holder()
            holder.command(cmd_name)(target)
            return typer.main.get_command(holder)
        # The group itself (its help, options, callback) as Typer builds it, with no
        # commands yet: each is built from ``target`` when looked up (:class:`Group`).
        shell = copy.copy(target)
        shell.registered_commands = []
        holder = _holder()
        holder.add_typer(shell, name=cmd_name, cls=Group)
        group = typer.main.get_command(holder).get_command(ctx, cmd_name)  # type: ignore[attr-defined]
        group.source = target
        return group


class Group(_Lazy):
    """A command group (``stepkit artifacts``) whose commands are built from its Typer app
    (``source``) one at a time, when looked up."""

    source: typer.Typer

    def _infos(self) -> dict[str, Any]:
        infos = self.source.registered_commands
        return {info.name or typer.main.get_command_name(info.callback.__name__): info
                for info in infos if info.callback is not None}  # fmt: skip

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self._infos())

    def _build(self, ctx: Any, cmd_name: str) -> Any:
        info = self._infos().get(cmd_name)
        if info is None:
            return None
        holder = _holder()  # an app holding only this command is that command
        holder.registered_commands.append(info)
        return typer.main.get_command(holder)


def _holder() -> typer.Typer:
    """An app to build one command or group on, with the root's settings."""
    return typer.Typer(add_completion=False, rich_markup_mode=None)


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

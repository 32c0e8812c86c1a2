"""The root Typer app, its global options, and the one place errors become messages.

Each command group lives in its own module and is mounted here. A :class:`StepkitError`
becomes one line on stderr and exit code 1 (2 for usage errors); ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from stepkit.errors import StepkitError
from stepkit.version import __version__

app = typer.Typer(
    name="stepkit",
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


def _mount() -> None:
    from stepkit.cli import artifacts, catalog, doctor, env, registry, runs, testing
    from stepkit.cli import run as run_commands

    app.add_typer(registry.app, name="registry")
    app.add_typer(catalog.app, name="catalog")
    app.add_typer(testing.app, name="test")
    app.command("plan")(run_commands.plan)
    app.command("run")(run_commands.run)
    app.add_typer(runs.app, name="runs")
    app.add_typer(artifacts.app, name="artifacts")
    app.add_typer(env.app, name="env")
    app.command("doctor")(doctor.doctor)


_mount()


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
        typer.echo(
            f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            err=True,
        )
        raise SystemExit(1) from None

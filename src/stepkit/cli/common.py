"""What every command group shares: the project from the root options, output helpers.

Output reads the same in a terminal and in a CI log: a message is never broken inside a
value (the terminal folds a long line, no newline is written into it), a table never cuts
an id, a path or a digest (on a narrow terminal a cell folds onto a further line; in a pipe
nothing limits the width, so each row stays one line), and every duration is written by
:func:`format_duration`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from stepkit.pipeline.report.units import format_duration

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from stepkit.errors import UnknownStepError
    from stepkit.project import Project

__all__ = [
    "PIPE_WIDTH",
    "choose",
    "console",
    "format_duration",
    "load_project",
    "positive_seconds",
    "print_json",
    "progress_bar",
    "table",
    "unknown_step",
    "wider_matches",
]

#: The width a console takes when its stream is not a terminal: wider than any row, so a
#: table is laid out at its natural width and a message at its own length.
PIPE_WIDTH = 100_000


def load_project(ctx: typer.Context) -> Project:
    """The project named by ``--project`` (or found from the current folder)."""
    from stepkit.project import Project

    root = ctx.find_root()
    project_path = getattr(root.obj, "project", None)
    return Project.load(project_path)


def console(*, stderr: bool = False) -> Console:
    """A Rich console on stdout (or stderr): soft-wrapped, and unbounded in a pipe."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(
        stderr=stderr,
        width=None if stream.isatty() else PIPE_WIDTH,
        soft_wrap=True,
        highlight=False,
    )


def progress_bar(*columns: Any, disable: bool = False) -> Progress:
    """A transient Rich progress display on stderr, shown only on a terminal: in a pipe or a
    log it would print nothing useful, and rich ends it with a blank line."""
    from rich.progress import Progress

    return Progress(
        *columns,
        console=console(stderr=True),
        transient=True,
        disable=disable or not sys.stderr.isatty(),
    )


def table(*columns: str, title: str | None = None, plain: bool = False) -> Table:
    """A Rich table whose cells are never cut: a cell too wide for the terminal folds onto
    another line (words first); ``plain`` for a borderless table that starts at column 0."""
    from rich import box
    from rich.table import Table

    shown = Table(
        title=title,
        box=None if plain else box.HEAVY_HEAD,
        pad_edge=not plain,
        title_justify="left" if plain else "center",
    )
    for column in columns:
        shown.add_column(column, overflow="fold")
    return shown


def choose(
    value: str, known: Iterable[str], *, what: str, option: str, forms: Iterable[str] = ()
) -> str:
    """``value`` when it is one of ``known``; else a usage error (exit 2) with the closest
    names — the one "did you mean" of every option whose value comes from a set. ``forms``
    are listed with the choices when nothing is close (``dask://HOST:PORT``)."""
    from stepkit.names import close_matches

    choices: Collection[str] = known if isinstance(known, Collection) else list(known)
    if value in choices:
        return value
    near = close_matches(value, choices)
    ordered = [*sorted(choices), *forms]
    if near:
        hint = f"did you mean {' or '.join(repr(n) for n in near)}?"
    elif ordered:
        hint = f"one of {', '.join(ordered)}."
    else:
        hint = "there are none."
    raise typer.BadParameter(f"no {what} {value!r}; {hint}", param_hint=option)


def positive_seconds(value: float | None, *, option: str) -> float | None:
    """A ``--timeout``-like option: None, or a number of seconds above zero (exit 2 else)."""
    if value is not None and not value > 0:
        raise typer.BadParameter(
            f"{value:g} is not a number of seconds above zero", param_hint=option
        )
    return value


def wider_matches(name: str, known: Iterable[str], *, limit: int = 3) -> list[str]:
    """Names a failed lookup may have meant when none is spelled close to it: those that
    begin with it (``Tabular`` → ``TabularPreprocessing``), else those holding its words."""
    from stepkit.catalog.search import words

    folded = name.casefold()
    names = sorted(set(known), key=lambda k: (len(k), k))
    found = [k for k in names if k.casefold().startswith(folded)]
    if not found:
        wanted = words(name)
        found = [k for k in names if wanted and all(w in words(k) for w in wanted)]
    return found[:limit]


def unknown_step(exc: UnknownStepError, known: Iterable[str]) -> NoReturn:
    """Re-raise a failed step lookup; when it suggests nothing, say what it may have meant
    from :func:`wider_matches` (the same one line and exit status as any library error)."""
    near = [] if exc.suggestions else wider_matches(exc.name, known)
    if not near:
        raise exc
    typer.echo(f"error: {exc} Did you mean {', '.join(repr(n) for n in near)}?", err=True)
    raise typer.Exit(1)


def print_json(data: Any) -> None:
    """Stable, machine-readable output: sorted keys, two-space indent, UTF-8."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str))
    sys.stdout.write("\n")


def parse_pairs(pairs: list[str] | None, option: str) -> dict[str, str]:
    """``KEY=VALUE`` options (``--env``, ``--arg``, ``--input``) as a dict; the last wins."""
    found = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=option)
        found[key] = value
    return found

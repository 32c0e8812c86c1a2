"""What every command group shares: the project from the root options, output helpers."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from stepkit.project import Project


def load_project(ctx: typer.Context) -> Project:
    """The project named by ``--project`` (or found from the current folder)."""
    from stepkit.project import Project

    root = ctx.find_root()
    project_path = getattr(root.obj, "project", None)
    return Project.load(project_path)


def console(*, stderr: bool = False) -> Console:
    """A Rich console; wide enough for tables when output is not a terminal."""
    from rich.console import Console

    return Console(stderr=stderr, width=None if sys.stdout.isatty() else 160, highlight=False)


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

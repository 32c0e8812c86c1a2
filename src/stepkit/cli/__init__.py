"""The ``stepkit`` command: a thin layer over the library (see :mod:`stepkit.cli.app`)."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Console entry point: every command goes through the one Typer app."""
    # imported here, not at the top: ``import stepkit.cli`` (for ``main``) stays light
    from stepkit.cli.app import main as app_main

    app_main(sys.argv[1:] if argv is None else argv)

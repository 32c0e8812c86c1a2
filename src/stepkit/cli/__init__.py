"""The ``stepkit`` command: a thin layer over the library (see :mod:`stepkit.cli.app`)."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Console entry point. ``catalog list --json`` is answered without loading the CLI
    framework when the index allows it (:mod:`stepkit.cli.fast`); all else goes to the app."""
    args = sys.argv[1:] if argv is None else argv
    from stepkit.cli.fast import run_fast

    code = run_fast(args)
    if code is not None:
        if code:
            raise SystemExit(code)
        return
    from stepkit.cli.app import main as app_main

    app_main(args)

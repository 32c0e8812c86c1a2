"""The ``stepkit`` command: a thin layer over the library (see :mod:`stepkit.cli.app`)."""

from __future__ import annotations

from stepkit.cli.app import main

__all__ = ["main"]

"""Stage functions the Dask workers import (they must live in an importable module)."""

from __future__ import annotations

import os
import signal
from typing import Any


def where_am_i(context: Any) -> dict[str, Any]:
    return {"pid": os.getpid(), "value": 21}


def double(context: Any) -> dict[str, Any]:
    return {"pid": os.getpid(), "value": context["value"] * 2}


def dies_once(context: Any) -> dict[str, Any]:
    """The first attempt kills the worker process running it (as an OOM kill would)."""
    if context.attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return {"pid": os.getpid(), "attempt": context.attempt}


def noop(context: Any) -> None:
    return None

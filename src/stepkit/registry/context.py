"""Which workspace's view of the registry is active.

An explicit ``workspace_id=`` argument wins; else the context variable set by
:func:`workspace_context` (isolated between threads and asyncio tasks); else the
``STEPKIT_WORKSPACE`` environment variable; else none, meaning the core registry only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Final

ENV_VAR: Final = "STEPKIT_WORKSPACE"
_ACTIVE: ContextVar[str | None] = ContextVar("stepkit_workspace", default=None)


def set_workspace_context(workspace_id: str) -> None:
    """Make ``workspace_id`` active in the current thread or task until cleared."""
    _ACTIVE.set(workspace_id)


def get_workspace_context() -> str | None:
    """The workspace set by context in this thread or task (not the environment)."""
    return _ACTIVE.get()


def clear_workspace_context() -> None:
    """Forget the workspace set by context; the environment variable applies again."""
    _ACTIVE.set(None)


@contextmanager
def workspace_context(workspace_id: str) -> Iterator[str]:
    """Activate ``workspace_id`` inside the block; the previous value (or none) comes back after."""
    token = _ACTIVE.set(workspace_id)
    try:
        yield workspace_id
    finally:
        _ACTIVE.reset(token)


def active_workspace(workspace_id: str | None = None) -> str | None:
    """The workspace in force: argument, else context, else ``STEPKIT_WORKSPACE``, else None."""
    if workspace_id is not None:
        return workspace_id
    return _ACTIVE.get() or os.environ.get(ENV_VAR) or None

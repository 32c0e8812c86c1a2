"""Which state store a URL names: one factory, so no caller hard-wires a backend.

* nothing (the default): SQLite, ``<state_dir>/state.db``
* ``sqlite:///PATH``: SQLite at PATH (relative to the project root)
* ``postgresql://USER@HOST:PORT/DB`` (or ``postgres://``): PostgreSQL, for a team
* ``memory://``: in memory, gone when the process ends (tests, throw-away runs)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from stepkit.errors import UnknownStoreUrlError

if TYPE_CHECKING:
    from stepkit.project import Project
    from stepkit.state.base import StateRepository

SCHEMES = ("sqlite:///", "postgresql://", "postgres://", "memory://")


def open_state(project: Project, *, read_only: bool = False) -> StateRepository:
    """The project's state store: ``[state] url`` (or ``STEPKIT_STATE_URL``), else SQLite.

    ``read_only``: for the commands that only read (``runs list``): a SQLite file is opened
    read-only, so a read-only state folder serves them."""
    if project.state.url:
        return open_state_url(project.state.url, root=project.root, read_only=read_only)
    from stepkit.state.sqlite import SQLiteStateRepository

    return SQLiteStateRepository.for_project(project, read_only=read_only)


def open_state_url(
    url: str, *, root: Path | None = None, key: str = "state.url", read_only: bool = False
) -> StateRepository:
    """The store ``url`` names; a relative ``sqlite:///`` path is taken from ``root``."""
    if url.startswith(("postgresql://", "postgres://")):
        from stepkit.state.postgres import PostgresStateRepository

        return PostgresStateRepository(url, key=key)
    if url.startswith("sqlite:///"):
        from stepkit.state.sqlite import SQLiteStateRepository

        path = Path(url.removeprefix("sqlite:///")).expanduser()
        return SQLiteStateRepository(
            path if path.is_absolute() else (root or Path()) / path, read_only=read_only
        )
    if url == "memory://":
        from stepkit.state.memory import MemoryStateRepository

        return MemoryStateRepository()
    raise UnknownStoreUrlError(url, key, SCHEMES)

"""Which artifact catalog a location names: one factory, beside the state store's
(``stepkit.state.backends``), so no caller hard-wires a backend.

* nothing (the default): SQLite, ``<state_dir>/artifacts.sqlite``
* ``sqlite:///PATH``: SQLite at PATH (relative to the project root)
* ``postgresql://USER@HOST:PORT/DB`` (or ``postgres://``): PostgreSQL, for a team
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from stepkit.artifacts.catalog import CATALOG_FILE, ArtifactCatalog, SQLiteCatalog
from stepkit.errors import UnknownStoreUrlError
from stepkit.postgres import is_postgres_url

if TYPE_CHECKING:
    from stepkit.project import Project


def catalog_location(project: Project) -> str:
    """Where the project's catalog is, as one string a worker process can be handed: a
    ``postgresql://`` URL, or the SQLite file's absolute path (the default:
    ``<state_dir>/artifacts.sqlite``; ``sqlite:///PATH`` is relative to the project root)."""
    url = project.artifacts.catalog_url
    if not url:
        return str(project.state_dir / CATALOG_FILE)
    if url.startswith("sqlite:///"):
        return str(project.root / url.removeprefix("sqlite:///"))
    if is_postgres_url(url):
        return url
    raise UnknownStoreUrlError(url, "artifacts.catalog_url", ("sqlite:///", "postgresql://"))


def open_catalog(location: str | Path, *, read_only: bool = False) -> ArtifactCatalog:
    """The catalog at ``location`` (see :func:`catalog_location`): PostgreSQL for a URL,
    else SQLite at that path (``read_only``: for the commands that only read)."""
    if isinstance(location, str) and is_postgres_url(location):
        from stepkit.artifacts.pg_catalog import PostgresCatalog

        return PostgresCatalog(location)
    return SQLiteCatalog(Path(location).expanduser().resolve(), read_only=read_only)

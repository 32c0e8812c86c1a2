"""Which step cache a location names: one factory, beside the state store's
(``stepkit.state.backends``) and the artifact catalog's (``stepkit.artifacts.backends``).

The location travels to worker processes as one string: a ``postgresql://`` URL (the
state database, shared by a team) or the SQLite file ``<state_dir>/cache.sqlite``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from stepkit.plan.cache import CACHE_FILE, CacheStore, StepCache
from stepkit.postgres import is_postgres_url

if TYPE_CHECKING:
    from stepkit.project import Project


def cache_location(project: Project) -> str:
    """The project's cache as one string: the state URL when it is PostgreSQL, else the
    SQLite file ``<state_dir>/cache.sqlite``."""
    if project.state.url and is_postgres_url(project.state.url):
        return project.state.url
    return str(project.state_dir / CACHE_FILE)


def open_cache(location: str | Path) -> CacheStore:
    """The cache at ``location`` (see :func:`cache_location`)."""
    if isinstance(location, str) and is_postgres_url(location):
        from stepkit.plan.pg_cache import PostgresStepCache

        return PostgresStepCache(location)
    return StepCache(Path(location))

"""The step cache: a node's cache key → the artifacts a run made for it.

A hit is only trusted when every artifact it names is still in the store: a store whose
objects were garbage-collected or lost makes a miss, never a broken run.

The cache lives next to the run state: an SQLite file in the state folder by default, the
state database when ``[state] url`` is PostgreSQL (so every runner of a team shares hits).
Its location travels to worker processes as one string, a path or a URL
(:func:`cache_location`), and :func:`open_cache` opens either.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from stepkit.sqlite import connect, transaction

if TYPE_CHECKING:
    from stepkit.project import Project

#: The default cache file, in the project's state folder.
CACHE_FILE = "cache.sqlite"

MIGRATIONS = (
    """
    CREATE TABLE cache_entries (
        cache_key  TEXT PRIMARY KEY,
        node       TEXT NOT NULL,
        run_id     TEXT NOT NULL,
        outputs    TEXT NOT NULL,   -- JSON: output name -> artifact reference
        parts      TEXT NOT NULL,   -- JSON: what went into the key (to explain misses)
        created_at TEXT NOT NULL
    );
    CREATE INDEX cache_entries_node ON cache_entries (node, created_at);
    """,
)


@dataclass(frozen=True, slots=True)
class CacheEntry:
    cache_key: str
    node: str
    run_id: str
    outputs: Mapping[str, Any]
    parts: Mapping[str, Any]
    created_at: str


class CacheStore(Protocol):
    """What a run needs from a step cache backend (SQLite, PostgreSQL)."""

    def get(self, cache_key: str) -> CacheEntry | None: ...
    def latest_for(self, node: str) -> CacheEntry | None: ...
    def put(
        self,
        cache_key: str,
        *,
        node: str,
        run_id: str,
        outputs: Mapping[str, Any],
        parts: Mapping[str, Any],
    ) -> None: ...
    def forget(self, cache_key: str) -> None: ...
    def close(self) -> None: ...


def cache_location(project: Project) -> str:
    """The project's cache as one string: the state URL when it is PostgreSQL, else the
    SQLite file ``<state_dir>/cache.sqlite``."""
    from stepkit.postgres import is_postgres_url

    if project.state.url and is_postgres_url(project.state.url):
        return project.state.url
    return str(project.state_dir / CACHE_FILE)


def open_cache(location: str | Path) -> CacheStore:
    """The cache at ``location`` (see :func:`cache_location`)."""
    if isinstance(location, str) and location.startswith(("postgresql://", "postgres://")):
        from stepkit.plan.pg_cache import PostgresStepCache

        return PostgresStepCache(location)
    return StepCache(Path(location))


class StepCache:
    """Cache entries in one SQLite file (``<state_dir>/cache.sqlite``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection = connect(
            path, migrations=MIGRATIONS, check_same_thread=False
        )

    def close(self) -> None:
        self._conn.close()

    def get(self, cache_key: str) -> CacheEntry | None:
        row = self._conn.execute(
            "SELECT cache_key, node, run_id, outputs, parts, created_at FROM cache_entries"
            " WHERE cache_key = ?",
            (cache_key,),
        ).fetchone()
        return entry_from_row(row) if row else None

    def latest_for(self, node: str) -> CacheEntry | None:
        """The newest entry of a node (to say what changed when its key misses)."""
        row = self._conn.execute(
            "SELECT cache_key, node, run_id, outputs, parts, created_at FROM cache_entries"
            " WHERE node = ? ORDER BY created_at DESC LIMIT 1",
            (node,),
        ).fetchone()
        return entry_from_row(row) if row else None

    def put(
        self,
        cache_key: str,
        *,
        node: str,
        run_id: str,
        outputs: Mapping[str, Any],
        parts: Mapping[str, Any],
    ) -> None:
        now = datetime.now(UTC).isoformat(timespec="microseconds")
        with transaction(self._conn):
            self._conn.execute(
                "INSERT INTO cache_entries (cache_key, node, run_id, outputs, parts, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (cache_key) DO UPDATE SET run_id = excluded.run_id,"
                " outputs = excluded.outputs, created_at = excluded.created_at",
                (
                    cache_key,
                    node,
                    run_id,
                    json.dumps(outputs, sort_keys=True),
                    json.dumps(parts, sort_keys=True, default=str),
                    now,
                ),
            )

    def forget(self, cache_key: str) -> None:
        with transaction(self._conn):
            self._conn.execute("DELETE FROM cache_entries WHERE cache_key = ?", (cache_key,))


def entry_from_row(row: Sequence[Any]) -> CacheEntry:
    return CacheEntry(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]), row[5])

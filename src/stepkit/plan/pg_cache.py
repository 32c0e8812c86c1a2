"""The step cache in PostgreSQL: the state database's ``cache_entries`` table, shared by
every runner of a team (a step one person ran is a hit for the next)."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stepkit import postgres
from stepkit.plan.cache import CacheEntry, entry_from_row

if TYPE_CHECKING:
    import psycopg

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "cache-0001-entries",
        """
        CREATE TABLE cache_entries (
            cache_key  TEXT PRIMARY KEY,
            node       TEXT NOT NULL,
            run_id     TEXT NOT NULL,
            outputs    TEXT NOT NULL,
            parts      TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX cache_entries_node ON cache_entries (node, created_at);
        """,
    ),
)

_SELECT = "SELECT cache_key, node, run_id, outputs, parts, created_at FROM cache_entries"


class PostgresStepCache:
    """Cache entries in one PostgreSQL schema (the URL's search_path)."""

    def __init__(self, url: str, *, key: str = "state.url") -> None:
        self.url = url
        self._conn: psycopg.Connection[tuple[Any, ...]] = postgres.connect(
            url, key=key, migrations=MIGRATIONS
        )
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def get(self, cache_key: str) -> CacheEntry | None:
        with self._lock:
            row = self._conn.execute(_SELECT + " WHERE cache_key = %s", (cache_key,)).fetchone()
        return entry_from_row(row) if row else None

    def latest_for(self, node: str) -> CacheEntry | None:
        """The newest entry of a node (to say what changed when its key misses)."""
        with self._lock:
            row = self._conn.execute(
                _SELECT + " WHERE node = %s ORDER BY created_at DESC LIMIT 1", (node,)
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
        row = (
            cache_key,
            node,
            run_id,
            json.dumps(outputs, sort_keys=True),
            json.dumps(parts, sort_keys=True, default=str),
            now,
        )
        with self._lock, self._conn.transaction():
            self._conn.execute(
                "INSERT INTO cache_entries (cache_key, node, run_id, outputs, parts, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (cache_key) DO UPDATE SET run_id = excluded.run_id,"
                " outputs = excluded.outputs, created_at = excluded.created_at",
                row,
            )

    def forget(self, cache_key: str) -> None:
        with self._lock, self._conn.transaction():
            self._conn.execute("DELETE FROM cache_entries WHERE cache_key = %s", (cache_key,))

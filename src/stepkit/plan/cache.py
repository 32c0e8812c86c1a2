"""The step cache: a node's cache key → the artifacts a run made for it.

A hit is only trusted when every artifact it names is still in the store: a store whose
objects were garbage-collected or lost makes a miss, never a broken run.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stepkit.sqlite import connect, transaction

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


class StepCache:
    """Cache entries in one SQLite file (``<state_dir>/cache.db``)."""

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
        return _entry(row) if row else None

    def latest_for(self, node: str) -> CacheEntry | None:
        """The newest entry of a node (to say what changed when its key misses)."""
        row = self._conn.execute(
            "SELECT cache_key, node, run_id, outputs, parts, created_at FROM cache_entries"
            " WHERE node = ? ORDER BY created_at DESC LIMIT 1",
            (node,),
        ).fetchone()
        return _entry(row) if row else None

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


def _entry(row: tuple[Any, ...]) -> CacheEntry:
    return CacheEntry(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]), row[5])

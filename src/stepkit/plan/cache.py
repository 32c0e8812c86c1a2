"""The step cache: a node's cache key → the artifacts a run made for it.

A hit is only trusted when every artifact it names is still in the store: a store whose
objects were garbage-collected or lost makes a miss, never a broken run.

The cache lives next to the run state: an SQLite file in the state folder by default, the
state database when ``[state] url`` is PostgreSQL (so every runner of a team shares hits);
``plan.cache_backends`` opens either from one string a worker can be handed. The SQL is
written once here (:class:`SQLCache`, over a :class:`CacheDialect`); the backends say only
how a statement runs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from stepkit.sqlite import StoreKind, connect, store_error, transaction

#: The default cache file, in the project's state folder.
CACHE_FILE = "cache.sqlite"

#: The cache file, as messages and ``stepkit doctor`` name it.
KIND = StoreKind("step cache", "cache", "cache_entries")

SCHEMA = """
CREATE TABLE cache_entries (
    cache_key  TEXT PRIMARY KEY,
    node       TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    outputs    TEXT NOT NULL,   -- JSON: output name -> artifact reference
    parts      TEXT NOT NULL,   -- JSON: what went into the key (to explain misses)
    created_at TEXT NOT NULL
);
CREATE INDEX cache_entries_node ON cache_entries (node, created_at);
"""

MIGRATIONS = (SCHEMA,)

_COLUMNS = "cache_key, node, run_id, outputs, parts, created_at"


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


@dataclass(frozen=True, slots=True)
class CacheDialect:
    placeholder: str  # "?" or "%s"

    def marks(self, count: int) -> str:
        return ", ".join(self.placeholder for _ in range(count))


SQLITE = CacheDialect(placeholder="?")
POSTGRES = CacheDialect(placeholder="%s")


def entry_from_row(row: Sequence[Any]) -> CacheEntry:
    cache_key, node, run_id, outputs, parts, created_at = row
    return CacheEntry(cache_key, node, run_id, json.loads(outputs), json.loads(parts), created_at)


class SQLCache(ABC):
    """The cache's statements, once; a backend runs them (its lock, its errors)."""

    dialect: CacheDialect

    @abstractmethod
    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Every row of a read query."""

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any]) -> None:
        """One write in its own transaction."""

    def _entry(self, rows: list[tuple[Any, ...]]) -> CacheEntry | None:
        if not rows:
            return None
        try:
            return entry_from_row(rows[0])
        except (ValueError, TypeError):  # a garbled row is a miss: the step runs again
            return None

    def get(self, cache_key: str) -> CacheEntry | None:
        p = self.dialect.placeholder
        return self._entry(
            self._query(f"SELECT {_COLUMNS} FROM cache_entries WHERE cache_key = {p}", (cache_key,))
        )

    def latest_for(self, node: str) -> CacheEntry | None:
        """The newest entry of a node (to say what changed when its key misses)."""
        p = self.dialect.placeholder
        return self._entry(
            self._query(
                f"SELECT {_COLUMNS} FROM cache_entries WHERE node = {p} "
                "ORDER BY created_at DESC LIMIT 1",
                (node,),
            )
        )

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
        self._execute(
            f"INSERT INTO cache_entries ({_COLUMNS}) VALUES ({self.dialect.marks(6)})"
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
        p = self.dialect.placeholder
        self._execute(f"DELETE FROM cache_entries WHERE cache_key = {p}", (cache_key,))


class StepCache(SQLCache):
    """Cache entries in one SQLite file (``<state_dir>/cache.sqlite``)."""

    dialect = SQLITE

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self._conn: sqlite3.Connection = connect(
            path, kind=KIND, migrations=MIGRATIONS, read_only=read_only, check_same_thread=False
        )
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            with self._lock:
                return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise store_error(exc, path=self.path, kind=KIND, doing="read") from exc

    def _execute(self, sql: str, params: Sequence[Any]) -> None:
        try:
            with self._lock, transaction(self._conn):
                self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise store_error(exc, path=self.path, kind=KIND, doing="write") from exc

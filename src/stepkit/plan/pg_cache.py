"""The step cache in PostgreSQL: the state database's ``cache_entries`` table, shared by
every runner of a team (a step one person ran is a hit for the next). The statements are
:class:`~stepkit.plan.cache.SQLCache`'s; only running them is written here."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stepkit import postgres
from stepkit.errors import StateStoreError
from stepkit.plan.cache import POSTGRES, SCHEMA, SQLCache

if TYPE_CHECKING:
    import psycopg

MIGRATIONS: tuple[tuple[str, str], ...] = (("cache-0001-entries", SCHEMA),)


class PostgresStepCache(SQLCache):
    """Cache entries in one PostgreSQL schema (the URL's search_path)."""

    dialect = POSTGRES

    def __init__(self, url: str, *, key: str = "state.url") -> None:
        self.url = url
        self._key = key
        self._conn: psycopg.Connection[tuple[Any, ...]] = postgres.connect(
            url, key=key, migrations=MIGRATIONS
        )
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            with self._lock:
                return self._conn.execute(sql.encode(), params).fetchall()
        except psycopg.Error as exc:
            raise self._error("read", exc) from exc

    def _execute(self, sql: str, params: Sequence[Any]) -> None:
        import psycopg

        try:
            with self._lock, self._conn.transaction():
                self._conn.execute(sql.encode(), params)
        except psycopg.Error as exc:
            raise self._error("write", exc) from exc

    def _error(self, what: str, exc: Exception) -> StateStoreError:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return StateStoreError(
            f"Step cache {self._key} {postgres.redact(self.url)}: {what} failed: {first}"
        )

"""The artifact catalog: which artifact versions exist and which object holds each.

:class:`ArtifactCatalog` is the protocol the store talks to; :class:`SQLiteCatalog` is the
default, one SQLite file opened through ``stepkit.sqlite``; ``pg_catalog.PostgresCatalog``
serves a team; ``artifacts.backends.open_catalog`` picks one from a URL or path. Their SQL
is written once, in :mod:`stepkit.artifacts.catalog_sql`.

Registration is idempotent on (artifact_id, source, producer): the same key with the same
content is "present" (nothing written); with different content it becomes a new version and
the old one is kept. Rows are inserted with plain ``INSERT`` — a constraint error is raised,
never ignored.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from stepkit.artifacts import catalog_sql
from stepkit.artifacts.catalog_sql import COLUMNS, CatalogSQL, Key, check_registrations
from stepkit.artifacts.records import ArtifactRecord, Registered, Registration, utc_now
from stepkit.errors import StateStoreError
from stepkit.sqlite import StoreKind, connect, integrity_check, store_error, transaction

#: The default catalog file, in the project's state folder.
CATALOG_FILE = "artifacts.sqlite"

#: The catalog file, as messages and ``stepkit doctor`` name it.
KIND = StoreKind("artifact catalog", "artifacts", "artifacts")

MIGRATIONS: tuple[str, ...] = (catalog_sql.SQLITE.schema(),)


class ArtifactCatalog(Protocol):
    """What the store needs from a catalog backend (SQLite, PostgreSQL)."""

    def register_many(self, registrations: Sequence[Registration]) -> list[Registered]: ...
    def register_bulk(self, registrations: Sequence[Registration]) -> dict[str, int]: ...
    def latest(self, keys: Iterable[Key]) -> dict[Key, ArtifactRecord]: ...
    def known_digests(self, keys: Iterable[Key]) -> set[tuple[str, str, str, str]]: ...
    def by_artifact_id(self, artifact_id: str) -> list[ArtifactRecord]: ...
    def by_sha256(self, sha256: str) -> list[ArtifactRecord]: ...
    def by_id(self, record_id: int) -> ArtifactRecord | None: ...
    def records(self, *, since: str | None = None) -> Iterator[ArtifactRecord]: ...
    def layout_owner(self, layout_path: str) -> str | None: ...
    def layout_owners(self, layout_paths: Iterable[str]) -> dict[str, str]: ...
    def delete_records(self, record_ids: Sequence[int]) -> list[ArtifactRecord]: ...
    def mark_verified(self, sha256s: Iterable[str], *, at: str) -> None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def get_meta(self, key: str) -> str | None: ...
    def artifact_ids(self) -> list[str]: ...
    def stats(self) -> dict[str, Any]: ...
    def dedup_by_producer(self) -> list[dict[str, Any]]: ...
    def integrity_problems(self) -> list[str]: ...
    def close(self) -> None: ...


#: The old name, kept for callers that import it.
check_digests = check_registrations

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _locked(
    method: Callable[Concatenate[SQLiteCatalog, _P], _R],
) -> Callable[Concatenate[SQLiteCatalog, _P], _R]:
    """One connection, shared by threads (a pipeline finalizes from several): serialize, and
    say which file an SQLite error came from."""

    def wrapper(self: SQLiteCatalog, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            with self._lock:
                return method(self, *args, **kwargs)
        except sqlite3.IntegrityError as exc:  # only registration writes under constraints
            raise StateStoreError(
                f"The {KIND.name} {self.path}: registration failed: {exc}"
            ) from exc
        except sqlite3.Error as exc:
            raise store_error(exc, path=self.path, kind=KIND) from exc

    functools.update_wrapper(wrapper, method)
    return wrapper


class SQLiteCatalog(CatalogSQL):
    """The catalog in one SQLite file (WAL, busy timeout, migrations by ``user_version``)."""

    dialect = catalog_sql.SQLITE

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self._conn = connect(
            path, kind=KIND, migrations=MIGRATIONS, read_only=read_only, check_same_thread=False
        )
        # Bulk registration inserts into three indexes at random keys: a bigger page cache
        # (64 MiB) keeps them in memory; the lookup table of a batch never needs the disk.
        self._conn.execute("PRAGMA cache_size = -65536")
        self._conn.execute("PRAGMA temp_store = MEMORY")
        # A committed record must survive a power cut like the object it names: the WAL is
        # fsynced at every commit (one fsync per batch), not only at checkpoints.
        self._conn.execute("PRAGMA synchronous = FULL")
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"SQLiteCatalog({str(self.path)!r})"

    @property
    def where(self) -> str:
        return f"the {KIND.name} {self.path}"

    @_locked
    def close(self) -> None:
        self._conn.close()

    @_locked
    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    @_locked
    def _execute(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with transaction(self._conn):
            return self._conn.execute(sql, params).fetchall()

    @_locked
    def integrity_problems(self) -> list[str]:
        """What SQLite's ``quick_check`` finds wrong in the file (none: ``[]``); ``stepkit
        doctor`` runs the full ``integrity_check``."""
        return integrity_check(self._conn, quick=True)

    # -- registration: a temp table of the batch's keys, ids from max(id) under the lock ----

    @_locked
    def register_many(self, registrations: Sequence[Registration]) -> list[Registered]:
        """Register a batch in one transaction; returns one outcome per registration."""
        if not registrations:
            return []
        check_registrations(registrations)
        with transaction(self._conn):
            newest = self._latest_locked(r.key for r in registrations)
            current = {k: (r.version, r.sha256) for k, r in newest.items()}
            rows, statuses = catalog_sql.plan_versions(
                registrations, current, ids=self._ids(), now=utc_now()
            )
            self._conn.executemany(self.dialect.insert(), rows)
        return catalog_sql.outcomes(registrations, statuses, rows, newest)

    @_locked
    def register_bulk(self, registrations: Sequence[Registration]) -> dict[str, int]:
        """:meth:`register_many` for imports: one transaction, counts only (``new``,
        ``present``, ``new_version``), no record objects built; content the key ever had
        is present (a manifest read twice adds nothing, even with two versions of a key)."""
        counts = {"new": 0, "present": 0, "new_version": 0}
        if not registrations:
            return counts
        check_registrations(registrations)
        conn = self._conn
        with transaction(conn):
            self._fill_wanted(r.key for r in registrations)
            current: dict[Key, tuple[int, str]] = {}
            known: set[tuple[str, str, str, str]] = set()
            for aid, source, producer, version, sha256 in conn.execute(
                "SELECT a.artifact_id, a.source, a.producer, a.version, a.sha256 "
                "FROM temp.wanted w JOIN artifacts a USING (artifact_id, source, producer) "
                "ORDER BY a.version"
            ):
                current[(aid, source, producer)] = (version, sha256)
                known.add((aid, source, producer, sha256))
            rows, statuses = catalog_sql.plan_versions(
                registrations, current, ids=self._ids(), now=utc_now(), known=known
            )
            conn.executemany(self.dialect.insert(), rows)
            conn.execute("DELETE FROM temp.wanted")
        for status in statuses:
            counts[status] += 1
        return counts

    def _ids(self) -> Iterator[int]:
        """Record ids after the largest one (inside the write transaction: no one else's)."""
        top = int(self._conn.execute("SELECT coalesce(max(id), 0) FROM artifacts").fetchone()[0])
        return itertools.count(top + 1)

    @_locked
    def latest(self, keys: Iterable[Key]) -> dict[Key, ArtifactRecord]:
        """The newest version of each key that exists."""
        return self._latest_locked(keys)

    def _latest_locked(self, keys: Iterable[Key]) -> dict[Key, ArtifactRecord]:
        if not self._fill_wanted(keys):
            return {}
        found: dict[Key, ArtifactRecord] = {}
        query = (
            f"SELECT {', '.join('a.' + c.strip() for c in COLUMNS.split(','))} "
            "FROM temp.wanted w JOIN artifacts a USING (artifact_id, source, producer) "
            "ORDER BY a.version"
        )
        for row in self._conn.execute(query):
            record = ArtifactRecord(*row)
            found[record.key] = record  # ascending versions: the last one wins
        self._conn.execute("DELETE FROM temp.wanted")
        return found

    def _fill_wanted(self, keys: Iterable[Key]) -> int:
        """Load ``keys`` into the temp table a batch joins against; how many there are."""
        conn = self._conn
        unique = list(dict.fromkeys(keys))
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS wanted (artifact_id TEXT, source TEXT, producer TEXT)"
        )
        conn.execute("DELETE FROM temp.wanted")
        conn.executemany("INSERT INTO temp.wanted VALUES (?,?,?)", unique)
        return len(unique)

"""The artifact catalog: which artifact versions exist and which object holds each.

:class:`ArtifactCatalog` is the protocol the store talks to; :class:`SQLiteCatalog` is the
default, opened through ``stepkit.sqlite``, and ``pg_catalog.PostgresCatalog`` serves a team
(:func:`open_catalog` picks one from a URL or path).

Registration is idempotent on (artifact_id, source, producer): the same key with the same
content is "present" (nothing written); with different content it becomes a new version and
the old one is kept. Rows are inserted with plain ``INSERT`` — a constraint error is raised,
never ignored.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

from stepkit.artifacts.digest import is_digest, validate_digest
from stepkit.artifacts.records import ArtifactRecord, Registered, Registration, utc_now
from stepkit.errors import StateStoreError
from stepkit.sqlite import connect, transaction

if TYPE_CHECKING:
    from stepkit.project import Project

#: The default catalog file, in the project's state folder.
CATALOG_FILE = "artifacts.sqlite"

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE artifacts (
        id           INTEGER PRIMARY KEY,
        artifact_id  TEXT NOT NULL,
        source       TEXT NOT NULL,
        producer     TEXT NOT NULL,
        version      INTEGER NOT NULL CHECK (version >= 1),
        sha256       TEXT NOT NULL CHECK (length(sha256) = 64),  -- hex: checked in Python
        bytes        INTEGER NOT NULL CHECK (bytes >= 0),
        storage_uri  TEXT NOT NULL,
        content_type TEXT,
        layout_path  TEXT,
        run_id       TEXT,
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL,
        verified_at  TEXT,
        UNIQUE (artifact_id, source, producer, version)
    );
    CREATE INDEX artifacts_sha256 ON artifacts (sha256);
    CREATE INDEX artifacts_layout ON artifacts (layout_path) WHERE layout_path IS NOT NULL;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
)

_COLUMNS = (
    "id, artifact_id, source, producer, version, sha256, bytes, storage_uri, content_type, "
    "layout_path, run_id, created_at, updated_at, verified_at"
)


_INSERT = (
    "INSERT INTO artifacts (id, artifact_id, source, producer, version, sha256, bytes, "
    "storage_uri, content_type, layout_path, run_id, created_at, updated_at) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


class ArtifactCatalog(Protocol):
    """What the store needs from a catalog backend (SQLite, PostgreSQL)."""

    def register_many(self, registrations: Sequence[Registration]) -> list[Registered]: ...
    def register_bulk(self, registrations: Sequence[Registration]) -> dict[str, int]: ...
    def latest(
        self, keys: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], ArtifactRecord]: ...
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
    def close(self) -> None: ...


def check_digests(registrations: Sequence[Registration]) -> None:
    """Refuse the batch if any digest is not 64 lowercase hex (a CHECK with GLOB in the
    schema would cost more than the rest of a bulk insert)."""
    for registration in registrations:
        if not is_digest(registration.sha256):
            validate_digest(registration.sha256)  # raises, naming the value


def _record(row: Sequence[Any]) -> ArtifactRecord:
    return ArtifactRecord(*row)


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _locked(
    method: Callable[Concatenate[SQLiteCatalog, _P], _R],
) -> Callable[Concatenate[SQLiteCatalog, _P], _R]:
    """One connection, shared by threads (a pipeline finalizes from several): serialize."""

    def wrapper(self: SQLiteCatalog, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._lock:
            return method(self, *args, **kwargs)

    functools.update_wrapper(wrapper, method)
    return wrapper


class SQLiteCatalog:
    """The catalog in one SQLite file (WAL, busy timeout, migrations by ``user_version``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path, migrations=MIGRATIONS, check_same_thread=False)
        # Bulk registration inserts into three indexes at random keys: a bigger page cache
        # (64 MiB) keeps them in memory; the lookup table of a batch never needs the disk.
        self._conn.execute("PRAGMA cache_size = -65536")
        self._conn.execute("PRAGMA temp_store = MEMORY")
        # A committed record must survive a power cut like the object it names: the WAL is
        # fsynced at every commit (one fsync per batch), not only at checkpoints.
        self._conn.execute("PRAGMA synchronous = FULL")
        self._lock = threading.RLock()

    @_locked
    def close(self) -> None:
        self._conn.close()

    # -- registration ------------------------------------------------------------------------

    @_locked
    def register_many(self, registrations: Sequence[Registration]) -> list[Registered]:
        """Register a batch in one transaction; returns one outcome per registration."""
        if not registrations:
            return []
        check_digests(registrations)
        now = utc_now()
        conn = self._conn
        try:
            with transaction(conn):
                latest = self._latest_locked(
                    (r.artifact_id, r.source, r.producer) for r in registrations
                )
                next_id = int(
                    conn.execute("SELECT coalesce(max(id), 0) FROM artifacts").fetchone()[0]
                )
                rows: list[tuple[Any, ...]] = []
                out: list[Registered] = []
                for reg in registrations:
                    key = (reg.artifact_id, reg.source, reg.producer)
                    current = latest.get(key)
                    if current is not None and current.sha256 == reg.sha256:
                        out.append(Registered("present", current))
                        continue
                    next_id += 1
                    row = (
                        next_id,
                        reg.artifact_id,
                        reg.source,
                        reg.producer,
                        1 if current is None else current.version + 1,
                        reg.sha256,
                        reg.bytes,
                        reg.storage_uri,
                        reg.content_type,
                        reg.layout_path,
                        reg.run_id,
                        now,
                        now,
                    )
                    rows.append(row)
                    record = ArtifactRecord(*row)
                    latest[key] = record
                    out.append(Registered("new" if current is None else "new_version", record))
                conn.executemany(_INSERT, rows)
        except sqlite3.Error as exc:
            raise StateStoreError(f"Catalog {self.path}: registration failed: {exc}") from exc
        return out

    @_locked
    def register_bulk(self, registrations: Sequence[Registration]) -> dict[str, int]:
        """:meth:`register_many` for imports: same rules, one transaction, counts only
        (``new``, ``present``, ``new_version``) — no record objects built."""
        counts = {"new": 0, "present": 0, "new_version": 0}
        if not registrations:
            return counts
        check_digests(registrations)
        now = utc_now()
        conn = self._conn
        try:
            with transaction(conn):
                self._fill_wanted((r.artifact_id, r.source, r.producer) for r in registrations)
                latest: dict[tuple[str, str, str], tuple[int, str]] = {}
                for aid, source, producer, version, sha256 in conn.execute(
                    "SELECT a.artifact_id, a.source, a.producer, a.version, a.sha256 "
                    "FROM temp.wanted w JOIN artifacts a USING (artifact_id, source, producer) "
                    "ORDER BY a.version"
                ):
                    latest[(aid, source, producer)] = (version, sha256)
                next_id = int(
                    conn.execute("SELECT coalesce(max(id), 0) FROM artifacts").fetchone()[0]
                )
                rows: list[tuple[Any, ...]] = []
                for reg in registrations:
                    key = (reg.artifact_id, reg.source, reg.producer)
                    current = latest.get(key)
                    if current is not None and current[1] == reg.sha256:
                        counts["present"] += 1
                        continue
                    next_id += 1
                    version = 1 if current is None else current[0] + 1
                    counts["new" if current is None else "new_version"] += 1
                    rows.append(
                        (next_id, reg.artifact_id, reg.source, reg.producer, version, reg.sha256,
                         reg.bytes, reg.storage_uri, reg.content_type, reg.layout_path,
                         reg.run_id, now, now)
                    )  # fmt: skip
                    latest[key] = (version, reg.sha256)
                conn.executemany(_INSERT, rows)
                conn.execute("DELETE FROM temp.wanted")
        except sqlite3.Error as exc:
            raise StateStoreError(f"Catalog {self.path}: registration failed: {exc}") from exc
        return counts

    @_locked
    def latest(
        self, keys: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], ArtifactRecord]:
        """The newest version of each key that exists."""
        return self._latest_locked(keys)

    def _latest_locked(
        self, keys: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], ArtifactRecord]:
        conn = self._conn
        if not self._fill_wanted(keys):
            return {}
        found: dict[tuple[str, str, str], ArtifactRecord] = {}
        query = (
            f"SELECT {', '.join('a.' + c.strip() for c in _COLUMNS.split(','))} "
            "FROM temp.wanted w JOIN artifacts a USING (artifact_id, source, producer) "
            "ORDER BY a.version"
        )
        for row in conn.execute(query):
            record = _record(row)
            found[record.key] = record  # ascending versions: the last one wins
        conn.execute("DELETE FROM temp.wanted")
        return found

    def _fill_wanted(self, keys: Iterable[tuple[str, str, str]]) -> int:
        """Load ``keys`` into the temp table a batch joins against; how many there are."""
        conn = self._conn
        unique = list(dict.fromkeys(keys))
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS wanted (artifact_id TEXT, source TEXT, producer TEXT)"
        )
        conn.execute("DELETE FROM temp.wanted")
        conn.executemany("INSERT INTO temp.wanted VALUES (?,?,?)", unique)
        return len(unique)

    # -- lookups -----------------------------------------------------------------------------

    @_locked
    def by_artifact_id(self, artifact_id: str) -> list[ArtifactRecord]:
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM artifacts WHERE artifact_id = ? ORDER BY id", (artifact_id,)
        )
        return [_record(row) for row in rows]

    @_locked
    def by_sha256(self, sha256: str) -> list[ArtifactRecord]:
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM artifacts WHERE sha256 = ? ORDER BY id", (sha256,)
        )
        return [_record(row) for row in rows]

    @_locked
    def by_id(self, record_id: int) -> ArtifactRecord | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM artifacts WHERE id = ?", (record_id,)
        ).fetchone()
        return _record(row) if row else None

    @_locked
    def records(self, *, since: str | None = None) -> Iterator[ArtifactRecord]:
        """Every record (registered or updated at/after ``since`` if given), oldest first."""
        if since is None:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM artifacts ORDER BY id").fetchall()
        else:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM artifacts WHERE updated_at >= ? ORDER BY id", (since,)
            ).fetchall()
        return (_record(row) for row in rows)

    @_locked
    def layout_owner(self, layout_path: str) -> str | None:
        """The digest whose bytes the readable path ``layout_path`` holds, if recorded."""
        row = self._conn.execute(
            "SELECT sha256 FROM artifacts WHERE layout_path = ? LIMIT 1", (layout_path,)
        ).fetchone()
        return str(row[0]) if row else None

    @_locked
    def layout_owners(self, layout_paths: Iterable[str]) -> dict[str, str]:
        """:meth:`layout_owner` for a batch, in one query: path -> digest, recorded ones only."""
        rows = self._conn.execute(
            "SELECT layout_path, sha256 FROM artifacts "
            "WHERE layout_path IN (SELECT value FROM json_each(?))",
            (json.dumps(list(dict.fromkeys(layout_paths))),),
        )
        return {str(path): str(sha256) for path, sha256 in rows}

    @_locked
    def artifact_ids(self) -> list[str]:
        return [row[0] for row in self._conn.execute("SELECT DISTINCT artifact_id FROM artifacts")]

    # -- changes -----------------------------------------------------------------------------

    @_locked
    def delete_records(self, record_ids: Sequence[int]) -> list[ArtifactRecord]:
        """Delete these rows in one transaction; returns what was deleted."""
        conn = self._conn
        deleted: list[ArtifactRecord] = []
        with transaction(conn):
            for record_id in record_ids:
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM artifacts WHERE id = ?", (record_id,)
                ).fetchone()
                if row is None:
                    continue
                conn.execute("DELETE FROM artifacts WHERE id = ?", (record_id,))
                deleted.append(_record(row))
        return deleted

    @_locked
    def mark_verified(self, sha256s: Iterable[str], *, at: str) -> None:
        with transaction(self._conn):
            self._conn.executemany(
                "UPDATE artifacts SET verified_at = ? WHERE sha256 = ?",
                ((at, sha) for sha in sha256s),
            )

    @_locked
    def set_meta(self, key: str, value: str) -> None:
        with transaction(self._conn):
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @_locked
    def get_meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    # -- reports -----------------------------------------------------------------------------

    @_locked
    def stats(self) -> dict[str, Any]:
        records, logical, artifacts, producers = self._conn.execute(
            "SELECT count(*), coalesce(sum(bytes), 0), count(DISTINCT artifact_id), "
            "count(DISTINCT producer) FROM artifacts"
        ).fetchone()
        objects, stored = self._conn.execute(
            "SELECT count(*), coalesce(sum(bytes), 0) FROM "
            "(SELECT sha256, max(bytes) AS bytes FROM artifacts GROUP BY sha256)"
        ).fetchone()
        return {
            "records": int(records),
            "artifacts": int(artifacts),
            "producers": int(producers),
            "objects": int(objects),
            "logical_bytes": int(logical),
            "stored_bytes": int(stored),
            "saved_bytes": int(logical) - int(stored),
        }

    @_locked
    def dedup_by_producer(self) -> list[dict[str, Any]]:
        """Per producer: records, logical bytes, and bytes saved because the object was
        already stored by an earlier record (the first record of a digest pays for it)."""
        rows = self._conn.execute(
            """
            SELECT a.producer, count(*), sum(a.bytes),
                   sum(CASE WHEN a.id = f.first_id THEN 0 ELSE a.bytes END),
                   sum(CASE WHEN a.id = f.first_id THEN 0 ELSE 1 END)
            FROM artifacts a
            JOIN (SELECT sha256, min(id) AS first_id FROM artifacts GROUP BY sha256) f
              USING (sha256)
            GROUP BY a.producer ORDER BY 4 DESC, a.producer
            """
        )
        return [
            {
                "producer": producer,
                "records": int(count),
                "logical_bytes": int(logical),
                "saved_bytes": int(saved),
                "dedup_records": int(dups),
            }
            for producer, count, logical, saved, dups in rows
        ]


def catalog_location(project: Project) -> str:
    """Where the project's catalog is, as one string a worker process can be handed: a
    ``postgresql://`` URL, or the SQLite file's absolute path (the default:
    ``<state_dir>/artifacts.sqlite``; ``sqlite:///PATH`` is relative to the project root)."""
    url = project.artifacts.catalog_url
    if not url:
        return str(project.state_dir / CATALOG_FILE)
    if url.startswith("sqlite:///"):
        return str(project.root / url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        return url
    from stepkit.errors import UnknownStoreUrlError

    raise UnknownStoreUrlError(url, "artifacts.catalog_url", ("sqlite:///", "postgresql://"))


def open_catalog(location: str | Path) -> ArtifactCatalog:
    """The catalog at ``location`` (see :func:`catalog_location`): PostgreSQL for a URL,
    else SQLite at that path."""
    if isinstance(location, str) and location.startswith(("postgresql://", "postgres://")):
        from stepkit.artifacts.pg_catalog import PostgresCatalog

        return PostgresCatalog(location)
    return SQLiteCatalog(Path(location).expanduser().resolve())

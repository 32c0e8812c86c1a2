"""The artifact catalog in PostgreSQL: the :class:`ArtifactCatalog` protocol for a team.

Same SQL as :class:`~stepkit.artifacts.catalog.SQLiteCatalog`
(:mod:`stepkit.artifacts.catalog_sql`), with several writers on several machines: a
registration batch holds a transaction-level advisory lock on the catalog, so two batches
never compute the same next version, and record ids come from the table's identity
sequence. Those two, and the ``unnest`` that finds a batch's keys in one round trip, are
all that is written here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from stepkit import postgres
from stepkit.artifacts import catalog_sql
from stepkit.artifacts.catalog_sql import COLUMNS, CatalogSQL, Key, check_registrations
from stepkit.artifacts.records import ArtifactRecord, Registered, Registration, utc_now
from stepkit.errors import StateStoreError

if TYPE_CHECKING:
    import psycopg

MIGRATIONS: tuple[tuple[str, str], ...] = (
    ("artifacts-0001-catalog", catalog_sql.POSTGRES.schema()),
)

_A_COLUMNS = ", ".join("a." + c.strip() for c in COLUMNS.split(","))
#: The newest version of each wanted key: keys travel as three arrays, one round trip.
_LATEST = (
    f"SELECT {_A_COLUMNS} "
    "FROM artifacts a JOIN unnest(%s::text[], %s::text[], %s::text[]) "
    "AS w(artifact_id, source, producer) USING (artifact_id, source, producer) "
    "ORDER BY a.artifact_id, a.source, a.producer, a.version"
)
_REGISTER_LOCK = "SELECT pg_advisory_xact_lock(hashtext('stepkit-artifacts' || current_schema()))"


class PostgresCatalog(CatalogSQL):
    """The catalog in one PostgreSQL schema (the URL's search_path)."""

    dialect = catalog_sql.POSTGRES

    def __init__(self, url: str, *, key: str = "artifacts.catalog_url") -> None:
        self.url = url
        self._key = key
        self._conn: psycopg.Connection[tuple[Any, ...]] = postgres.connect(
            url, key=key, migrations=MIGRATIONS
        )
        self._lock = threading.RLock()  # one connection, shared by the finalizing threads

    def __repr__(self) -> str:
        return f"PostgresCatalog({postgres.redact(self.url)!r})"

    @property
    def where(self) -> str:
        return f"the artifact catalog {postgres.redact(self.url)}"

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def integrity_problems(self) -> list[str]:
        """The server keeps its own pages whole; what can be wrong here is rows (none)."""
        self._query("SELECT count(*) FROM artifacts", ())
        return []

    # -- registration: an advisory lock, ids from the identity sequence ---------------------

    def register_many(self, registrations: Sequence[Registration]) -> list[Registered]:
        """Register a batch in one transaction; returns one outcome per registration."""
        check_registrations(registrations)
        return self._register(registrations, bulk=False)[0]

    def register_bulk(self, registrations: Sequence[Registration]) -> dict[str, int]:
        """:meth:`register_many` for imports: counts only, and content the key ever had
        is present (a manifest read twice adds nothing)."""
        check_registrations(registrations)
        counts = {"new": 0, "present": 0, "new_version": 0}
        for status in self._register(registrations, bulk=True)[1]:
            counts[status] += 1
        return counts

    def _register(
        self, registrations: Sequence[Registration], *, bulk: bool
    ) -> tuple[list[Registered], list[str]]:
        if not registrations:
            return [], []
        import psycopg

        try:
            with self._lock, self._conn.transaction():
                cur = self._conn.cursor()
                cur.execute(_REGISTER_LOCK)  # held to commit: versions never collide
                newest: dict[Key, ArtifactRecord] = {}
                known: set[tuple[str, str, str, str]] = set()
                for record in self._versions(cur, (g.key for g in registrations)):
                    newest[record.key] = record  # ascending versions: the last one wins
                    known.add((*record.key, record.sha256))
                current = {k: (r.version, r.sha256) for k, r in newest.items()}
                rows, statuses = catalog_sql.plan_versions(
                    registrations,
                    current,
                    ids=iter(self._next_ids(cur, len(registrations))),
                    now=utc_now(),
                    known=known if bulk else None,
                )
                if rows:
                    cur.executemany(self.dialect.insert(), rows)
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StateStoreError(
                f"Catalog {postgres.redact(self.url)}: registration failed: {first}"
            ) from exc
        if bulk:
            return [], list(statuses)
        return catalog_sql.outcomes(registrations, statuses, rows, newest), list(statuses)

    @staticmethod
    def _next_ids(cur: psycopg.Cursor[tuple[Any, ...]], count: int) -> list[int]:
        cur.execute(
            "SELECT nextval(pg_get_serial_sequence('artifacts', 'id')) FROM generate_series(1, %s)",
            (count,),
        )
        return [int(row[0]) for row in cur.fetchall()]

    @staticmethod
    def _versions(
        cur: psycopg.Cursor[tuple[Any, ...]], keys: Iterable[Key]
    ) -> list[ArtifactRecord]:
        """Every version of the wanted keys, oldest first per key."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return []
        columns = ([k[0] for k in unique], [k[1] for k in unique], [k[2] for k in unique])
        cur.execute(_LATEST.encode(), columns)
        return [ArtifactRecord(*row) for row in cur.fetchall()]

    def latest(self, keys: Iterable[Key]) -> dict[Key, ArtifactRecord]:
        """The newest version of each key that exists."""
        with self._lock:
            return {r.key: r for r in self._versions(self._conn.cursor(), keys)}

    # -- plumbing ----------------------------------------------------------------------------

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            with self._lock:
                return self._conn.execute(sql.encode(), params).fetchall()
        except psycopg.Error as exc:
            raise self._error("read", exc) from exc

    def _execute(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            with self._lock, self._conn.transaction():
                cursor = self._conn.execute(sql.encode(), params)
                return cursor.fetchall() if cursor.description else []
        except psycopg.Error as exc:
            raise self._error("write", exc) from exc

    def _error(self, what: str, exc: Exception) -> StateStoreError:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return StateStoreError(f"Catalog {postgres.redact(self.url)}: {what} failed: {first}")

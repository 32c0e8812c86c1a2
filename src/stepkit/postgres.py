"""THE ONE door to PostgreSQL: URL checks, connections, named migrations under a lock.

The twin of :mod:`stepkit.sqlite` for a team's shared server. ``psycopg`` is imported only
here and only when a ``postgresql://`` URL is used, so ``import stepkit`` stays light and a
project without the ``postgres`` extra never needs it.

Credentials never live in ``stepkit.toml``: a URL with a password is refused, and libpq
finds the password itself (``PGPASSWORD``, ``~/.pgpass``, a service file). The schema is
the connection's ``search_path`` (``?options=-csearch_path%3Dteam``), so several stores, or
several tests, can share one database without seeing each other's rows.

Migrations are append-only ``(name, sql)`` pairs recorded in ``stepkit_migrations`` of the
schema; each process applies the missing ones inside one transaction holding an advisory
lock on the schema, so several runners starting at once migrate it exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stepkit.errors import PostgresUrlError, StateStoreError

if TYPE_CHECKING:
    import psycopg

SCHEMES = ("postgresql://", "postgres://")

#: Any number: the advisory lock key is this plus the schema's name, hashed by the server.
_LOCK_NAMESPACE = "stepkit-migrations"


def is_postgres_url(location: str | None) -> bool:
    return bool(location) and str(location).startswith(SCHEMES)


def check_url(url: str, *, key: str) -> str:
    """``url`` if it is a PostgreSQL URL without a password, else a one-line error naming
    the setting ``key`` (e.g. ``state.url``)."""
    if not is_postgres_url(url):
        raise PostgresUrlError(url, key, "is not a postgresql:// URL")
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except Exception as exc:  # psycopg.ProgrammingError: libpq could not parse the URL
        raise PostgresUrlError(url, key, f"cannot be parsed ({exc})") from exc
    if params.get("password"):
        raise PostgresUrlError(
            url,
            key,
            "has a password in it; keep credentials out of stepkit.toml "
            "(use PGPASSWORD or ~/.pgpass)",
        )
    return url


def redact(url: str) -> str:
    """The URL as it may appear in a message (it never carries a password; see
    :func:`check_url`), without its query string."""
    return url.split("?", 1)[0]


def connect(
    url: str, *, key: str, migrations: Sequence[tuple[str, str]] = ()
) -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit connection (writes use ``conn.transaction()``) with ``migrations``
    applied; :class:`StateStoreError` in one line when the server cannot be reached."""
    import psycopg

    check_url(url, key=key)
    try:
        conn = psycopg.connect(url, autocommit=True, application_name="stepkit")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StateStoreError(f"{key} {redact(url)}: cannot connect: {first}") from exc
    try:
        if migrations:
            migrate(conn, migrations, key=key, url=url)
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(
    conn: psycopg.Connection[tuple[Any, ...]],
    migrations: Sequence[tuple[str, str]],
    *,
    key: str,
    url: str,
) -> list[str]:
    """Apply the migrations this schema has not recorded yet; returns their names."""
    import psycopg

    try:
        with conn.transaction():
            schema = conn.execute("SELECT current_schema()").fetchone()
            if schema is None or schema[0] is None:
                raise StateStoreError(
                    f"{key} {redact(url)}: the search_path names no existing schema; "
                    "create it first (CREATE SCHEMA …)."
                )
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s || current_schema()))",
                (_LOCK_NAMESPACE,),
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS stepkit_migrations ("
                " name TEXT PRIMARY KEY,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT name FROM stepkit_migrations")}
            applied = []
            for name, sql in migrations:
                if name in done:
                    continue
                conn.execute(sql.encode())  # bytes: several statements, no parameters
                conn.execute("INSERT INTO stepkit_migrations (name) VALUES (%s)", (name,))
                applied.append(name)
            return applied
    except psycopg.Error as exc:
        raise StateStoreError(f"{key} {redact(url)}: migration failed: {exc}") from exc

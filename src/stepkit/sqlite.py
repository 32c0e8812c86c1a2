"""The one door to SQLite: :func:`connect` sets the pragmas and applies migrations,
:func:`transaction` wraps every write.

Migrations are an append-only list of SQL scripts per database; ``PRAGMA user_version``
records how many have run, so opening an old file brings it up to date in one transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from stepkit.errors import StateStoreError

#: How long a writer waits for another one before giving up ("database is locked").
BUSY_TIMEOUT_MS = 60_000


def connect(
    path: Path | str,
    *,
    migrations: Sequence[str] = (),
    read_only: bool = False,
    check_same_thread: bool = True,
) -> sqlite3.Connection:
    """Open ``path`` in WAL mode with foreign keys on and a generous busy timeout.

    ``migrations`` are applied in order from the file's ``user_version``; a file newer
    than this stepkit (more migrations than it knows) is refused rather than misread.
    """
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    target = f"file:{path}?mode=ro" if read_only else str(path)
    try:
        conn = sqlite3.connect(
            target,
            uri=read_only,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,  # autocommit: transactions are explicit, see transaction()
            check_same_thread=check_same_thread,
        )
    except sqlite3.Error as exc:
        raise StateStoreError(f"Cannot open database {path}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not read_only:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        if migrations and not read_only:
            migrate(conn, migrations, name=str(path))
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection, migrations: Sequence[str], *, name: str) -> int:
    """Apply the migrations this file has not seen yet; returns the new ``user_version``."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(migrations):
        raise StateStoreError(
            f"Database {name} is at schema version {version}, newer than this stepkit "
            f"knows ({len(migrations)}); upgrade stepkit."
        )
    if version == len(migrations):
        return version
    with transaction(conn):
        # Re-read inside the write lock: another process may have migrated meanwhile.
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        for index in range(version, len(migrations)):
            for statement in _statements(migrations[index]):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {len(migrations)}")
    return len(migrations)


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into statements (executescript would COMMIT on its own)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception (then re-raised)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")

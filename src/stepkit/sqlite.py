"""The one door to SQLite: :func:`connect` opens a store file, :func:`transaction` wraps every
write, :func:`store_error` says what went wrong in the user's terms.

Migrations are an append-only list of SQL scripts per database; ``PRAGMA user_version``
records how many have run, so opening an old file brings it up to date in one transaction.

A schema is created only in a file stepkit has just created: a new store is built whole in
a temp file beside its place (schema, WAL mode, stepkit's ``application_id``) and linked
into place, so several processes creating one store at once all open a complete file, and
no one ever switches a shared file to WAL. An existing file that is empty, foreign or
without its schema is a :class:`StoreDamagedError`, never a new store: SQLite would take
an emptied file for a fresh database and the records in it would be silently forgotten.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from stepkit.errors import (
    StateStoreError,
    StoreDamagedError,
    StoreFullError,
    StorePermissionError,
    StoreTooNewError,
)

#: How long a writer waits for another one before giving up ("database is locked").
BUSY_TIMEOUT_MS = 60_000

#: ``PRAGMA application_id`` of every store stepkit creates ("STPK"): tells its files apart
#: from other SQLite databases.
APPLICATION_ID = 0x5354504B


@dataclass(frozen=True, slots=True)
class StoreKind:
    """Which store a file holds, in the words messages use."""

    name: str  # "state store", "artifact catalog", "step cache"
    key: str  # what ``stepkit doctor --reinit`` calls it: "state", "artifacts", "cache"
    table: str  # a table its schema always has


#: Files opened without saying which store they hold (tests, one-off tools).
DATABASE = StoreKind("database", "PATH", "")


def connect(
    path: Path | str,
    *,
    kind: StoreKind = DATABASE,
    migrations: Sequence[str] = (),
    read_only: bool = False,
    check_same_thread: bool = True,
) -> sqlite3.Connection:
    """Open the store at ``path`` in WAL mode with foreign keys on and a generous busy
    timeout, creating it (whole) when there is no file yet.

    ``migrations`` are applied in order from the file's ``user_version``; a file newer than
    this stepkit is refused rather than misread. ``read_only`` (or a file this user may not
    write) opens it read-only: reads work, a write is a :class:`StorePermissionError`.
    """
    if str(path) == ":memory:":
        conn = _open(":memory:", kind=kind, read_only=False, check_same_thread=check_same_thread)
        return _prepared(conn, path, kind=kind, migrations=migrations, read_only=False)
    path = Path(path)
    if not read_only and not path.exists():
        _create(path, kind=kind, migrations=migrations)
    if not read_only and not _writable(path):
        read_only = True  # a read-only state folder still serves the read-only commands
    conn = _open(path, kind=kind, read_only=read_only, check_same_thread=check_same_thread)
    return _prepared(conn, path, kind=kind, migrations=migrations, read_only=read_only)


def _open(
    path: Path | str, *, kind: StoreKind, read_only: bool, check_same_thread: bool
) -> sqlite3.Connection:
    if read_only:
        if not Path(path).exists():
            raise StoreDamagedError(path, kind.name, "does not exist", reinit=kind.key)
        # immutable when the folder cannot be written: no -shm can be made there, and no
        # one can be changing the file through it either
        flag = "mode=ro" if os.access(Path(path).parent, os.W_OK) else "immutable=1"
        target, uri = f"{Path(path).resolve().as_uri()}?{flag}", True
    else:
        target, uri = str(path), False
    try:
        return sqlite3.connect(
            target,
            uri=uri,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,  # autocommit: transactions are explicit, see transaction()
            check_same_thread=check_same_thread,
        )
    except sqlite3.Error as exc:
        raise store_error(exc, path=path, kind=kind, doing="open") from exc


def _prepared(
    conn: sqlite3.Connection,
    path: Path | str,
    *,
    kind: StoreKind,
    migrations: Sequence[str],
    read_only: bool,
) -> sqlite3.Connection:
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if str(path) != ":memory:":
            check_schema(conn, path, kind=kind, expected=bool(migrations))
        if not read_only:
            # Files stepkit creates are WAL from birth; only an older file is switched here.
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        if migrations:
            if read_only:
                _check_version(conn, migrations, path=path, kind=kind, read_only=True)
            else:
                migrate(conn, migrations, name=str(path), kind=kind)
    except sqlite3.Error as exc:
        conn.close()
        raise store_error(exc, path=path, kind=kind, doing="open") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _writable(path: Path) -> bool:
    """Whether this user may write the file and its folder (the WAL files live there)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _create(path: Path, *, kind: StoreKind, migrations: Sequence[str]) -> None:
    """Build the store whole in a temp file beside ``path`` and link it into place; when
    another process got there first, its file stands and ours is dropped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise os_error(exc, path=path, kind=kind) from exc
    temp = Path(name)
    try:
        conn = sqlite3.connect(temp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")  # kept in the file's header
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            if migrations:
                migrate(conn, migrations, name=str(path), kind=kind)
        finally:
            conn.close()  # the last connection: checkpoints and removes the WAL files
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs
            os.link(temp, path)  # atomic, and never replaces a file another process made
    except sqlite3.Error as exc:
        raise store_error(exc, path=path, kind=kind, doing="create") from exc
    except OSError as exc:
        raise os_error(exc, path=path, kind=kind) from exc
    finally:
        for leftover in (temp, Path(f"{temp}-wal"), Path(f"{temp}-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def check_schema(
    conn: sqlite3.Connection, path: Path | str, *, kind: StoreKind, expected: bool = True
) -> None:
    """Refuse a file that is not this store: empty, another program's database, or a
    stepkit file without this store's schema."""
    if Path(path).stat().st_size == 0:
        raise StoreDamagedError(path, kind.name, "is empty (0 bytes)", reinit=kind.key)
    app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
    if app_id not in (0, APPLICATION_ID):
        raise StoreDamagedError(
            path, kind.name, f"is not a stepkit file (application_id {app_id})", reinit=kind.key
        )
    if not expected:
        return
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if version == 0:
        problem = "holds tables of another program" if tables else "has no stepkit schema"
        raise StoreDamagedError(path, kind.name, problem, reinit=kind.key)
    if kind.table and kind.table not in tables:
        raise StoreDamagedError(
            path,
            kind.name,
            f"has no {kind.table!r} table: it is not a {kind.name}",
            reinit=kind.key,
        )


def _check_version(
    conn: sqlite3.Connection,
    migrations: Sequence[str],
    *,
    path: Path | str,
    kind: StoreKind,
    read_only: bool,
) -> int:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(migrations):
        raise StoreTooNewError(path, kind.name, version=version, known=len(migrations))
    if read_only and version < len(migrations):
        raise StorePermissionError(path, kind.name, action="upgrade (it is read-only)")
    return version


def migrate(
    conn: sqlite3.Connection, migrations: Sequence[str], *, name: str, kind: StoreKind = DATABASE
) -> int:
    """Apply the migrations this file has not seen yet; returns the new ``user_version``."""
    version = _check_version(conn, migrations, path=name, kind=kind, read_only=False)
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
        if conn.in_transaction:  # SQLite rolls back by itself after a full disk, say
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


#: SQLite's primary result codes that mean the file itself is not what it must be.
_DAMAGED = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}
_DENIED = {"SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH"}
#: How SQLite says a query named a table or column the file does not have (SQLITE_ERROR).
_SCHEMA_MISMATCH = ("no such table", "no such column", "cannot join using column")


def store_error(
    exc: sqlite3.Error, *, path: Path | str, kind: StoreKind, doing: str = "use"
) -> StateStoreError:
    """The :class:`StateStoreError` a user should see for ``exc`` raised on this store: it
    names the file, the store and what to do."""
    name = (getattr(exc, "sqlite_errorname", "") or "").split("_")
    code = "_".join(name[:2])  # SQLITE_READONLY_DBMOVED -> SQLITE_READONLY
    message = str(exc)
    if code in _DAMAGED or "malformed" in message or "not a database" in message:
        return StoreDamagedError(path, kind.name, f"is damaged ({message})", reinit=kind.key)
    if (
        code == "SQLITE_FULL"
        or "disk is full" in message
        or (code == "SQLITE_IOERR" and _disk_full(path))
    ):
        return StoreFullError(path, kind.name)
    if code in _DENIED or "readonly database" in message:
        return StorePermissionError(path, kind.name)
    if message.startswith(_SCHEMA_MISMATCH) or " has no column named " in message:
        return StoreDamagedError(
            path,
            kind.name,
            f"lacks part of the schema stepkit made it with ({message}): another program "
            "changed it, or it is not a stepkit file",
            reinit=kind.key,
        )
    if code == "SQLITE_CANTOPEN":
        if not os.access(Path(path).parent, os.W_OK | os.X_OK) or (
            Path(path).exists() and not os.access(path, os.R_OK)
        ):
            return StorePermissionError(path, kind.name, action=doing)
        return StateStoreError(f"Cannot {doing} the {kind.name} {path}: {message}.")
    if code in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        return StateStoreError(
            f"The {kind.name} {path}: {message} (another process kept it busy for over "
            f"{BUSY_TIMEOUT_MS // 1000} s); nothing of this write was kept."
        )
    if code == "SQLITE_IOERR":
        return StateStoreError(
            f"The {kind.name} {path}: the disk failed a read or write ({message}); check the "
            "disk, then run `stepkit doctor`."
        )
    return StateStoreError(f"The {kind.name} {path}: {message}.")


def _disk_full(path: Path | str) -> bool:
    """Whether the file system of ``path`` has (next to) no space left: SQLite reports some
    writes that failed with ENOSPC (the WAL index, say) as a plain I/O error."""
    try:
        info = os.statvfs(Path(path).parent)
    except OSError:
        return False
    return info.f_bavail * info.f_frsize < 64 * 1024


def os_error(exc: OSError, *, path: Path | str, kind: StoreKind) -> StateStoreError:
    """:func:`store_error` for an :class:`OSError` met on the way (creating the file, say)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFullError(path, kind.name)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StorePermissionError(path, kind.name, action="create")
    return StateStoreError(f"Cannot create the {kind.name} {path}: {exc.strerror or exc}.")


def missing_schema(conn: sqlite3.Connection, migrations: Sequence[str]) -> list[str]:
    """The tables and columns ``migrations`` make that the database of ``conn`` lacks."""
    expected = sqlite3.connect(":memory:", isolation_level=None)
    try:
        for script in migrations:
            for statement in _statements(script):
                expected.execute(statement)
        wanted = _columns(expected)
    finally:
        expected.close()
    found = _columns(conn)
    missing = []
    for table, columns in wanted.items():
        if table not in found:
            missing.append(f"no table {table!r}")
        elif lacking := [c for c in columns if c not in found[table]]:
            missing.append(f"table {table!r} has no column {', '.join(lacking)}")
    return missing


def _columns(conn: sqlite3.Connection) -> dict[str, list[str]]:
    tables = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return {
        table: [row[0] for row in conn.execute("SELECT name FROM pragma_table_info(?)", (table,))]
        for (table,) in tables
    }


def integrity_check(conn: sqlite3.Connection, *, quick: bool = False) -> list[str]:
    """SQLite's own check of every page and index: the problems it found (none: ``[]``)."""
    pragma = "quick_check" if quick else "integrity_check"
    rows = [str(row[0]) for row in conn.execute(f"PRAGMA {pragma}")]
    return [] if rows == ["ok"] else rows


def diagnose(
    path: Path, *, kind: StoreKind, migrations: Sequence[str] = (), quick: bool = False
) -> list[str]:
    """What is wrong with the store file at ``path`` (nothing: ``[]``), found without
    changing it: opened read-only, its schema checked (against what ``migrations`` make, when
    given), then SQLite's integrity check.

    Raises:
        StoreTooNewError: a newer stepkit made the file (not damage: nothing to repair).
    """
    try:
        conn = _open(path, kind=kind, read_only=True, check_same_thread=True)
    except StateStoreError as exc:
        return [str(exc)]
    try:
        check_schema(conn, path, kind=kind)
        if migrations:
            version = _check_version(conn, migrations, path=path, kind=kind, read_only=False)
            missing = missing_schema(conn, migrations[:version])
            if missing:
                problem = f"lacks part of the schema stepkit made it with ({'; '.join(missing)})"
                raise StoreDamagedError(path, kind.name, problem, reinit=kind.key)
        return integrity_check(conn, quick=quick)
    except StoreTooNewError:
        raise
    except StateStoreError as exc:
        return [str(exc)]
    except sqlite3.Error as exc:
        return [str(store_error(exc, path=path, kind=kind, doing="check"))]
    finally:
        conn.close()


def reinitialise(path: Path, *, kind: StoreKind, migrations: Sequence[str]) -> Path:
    """Set a damaged store file aside (``<name>.damaged-<UTC time>``, with its WAL files)
    and create an empty store in its place; returns where the old file went. Nothing is
    deleted: the old file can still be restored or salvaged."""
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    try:
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{path}{suffix}")
            if source.exists():
                os.replace(source, f"{aside}{suffix}")
    except OSError as exc:
        raise os_error(exc, path=path, kind=kind) from exc
    _create(path, kind=kind, migrations=migrations)
    return aside

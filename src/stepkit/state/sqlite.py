"""The default :class:`StateRepository`: one SQLite file (WAL) in the project's state folder.

One writer per file: only the runner process opens it for writing; stages in worker
processes report back to the runner. Several runners on one file queue on SQLite's busy
timeout (``BEGIN IMMEDIATE``), so "database is locked" never reaches a user.

Log lines arrive in batches and go in with ``executemany`` inside the runner's
transactions, one row per line; the line's run, stage, attempt and stream are stored once
per stream (``log_streams``, with the count of lines it holds) so a row is just (seq, stream,
time, text).
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from stepkit.sqlite import StoreKind, connect, store_error, transaction
from stepkit.state import codec, queries
from stepkit.state.records import (
    LogBatch,
    RunRecord,
    RunStatus,
    StageRecord,
    StageStatus,
)

if TYPE_CHECKING:
    from stepkit.project import Project

#: Append-only: never edit a migration that shipped, add one.
MIGRATIONS = [
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        pipeline TEXT NOT NULL,
        status TEXT NOT NULL,
        inputs TEXT NOT NULL,
        outputs TEXT NOT NULL,
        graph TEXT NOT NULL,
        source TEXT,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        error TEXT,
        retries INTEGER NOT NULL DEFAULT 0,
        host TEXT,
        pid INTEGER,
        lease_expires_at REAL
    );
    CREATE INDEX runs_created ON runs (created_at);
    CREATE INDEX runs_status ON runs (status);
    CREATE TABLE stage_attempts (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        stage TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        status TEXT NOT NULL,
        mode TEXT NOT NULL,
        started_at REAL,
        finished_at REAL,
        duration REAL,
        inputs TEXT NOT NULL,
        outputs TEXT NOT NULL,
        error_type TEXT,
        error_message TEXT,
        traceback TEXT,
        reason TEXT,
        cpu_time REAL,
        peak_rss INTEGER,
        PRIMARY KEY (run_id, stage, attempt)
    );
    CREATE TABLE log_streams (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        stage TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        stream TEXT NOT NULL,
        UNIQUE (run_id, stage, attempt, stream)
    );
    CREATE TABLE log_events (
        seq INTEGER PRIMARY KEY,
        stream_id INTEGER NOT NULL,
        ts REAL NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX log_events_stream ON log_events (stream_id);
    """,
    # a run's last heartbeat, kept when its lease is cleared, and copied to the attempts a
    # reap finds interrupted: where a report ends their bars
    """
    ALTER TABLE runs ADD COLUMN last_heartbeat REAL;
    ALTER TABLE stage_attempts ADD COLUMN last_heartbeat REAL;
    """,
    # each stream's line count, kept as lines are written: a report and count_logs read it
    # instead of counting a million index entries
    """
    ALTER TABLE log_streams ADD COLUMN lines INTEGER NOT NULL DEFAULT 0;
    UPDATE log_streams
    SET lines = (SELECT count(*) FROM log_events WHERE stream_id = log_streams.id);
    """,
]

_RUN_COLUMNS = queries.RUN_COLUMNS

#: The state file, as messages and ``stepkit doctor`` name it.
KIND = StoreKind("state store", "state", "runs")


def _upsert(table: str, columns: str, key: tuple[str, ...]) -> str:
    """INSERT … ON CONFLICT DO UPDATE: unlike REPLACE, never deletes the row (which would
    cascade to a run's attempts) and keeps its rowid. ``last_heartbeat`` only moves
    forward: a runner writing its run record never undoes a later heartbeat."""
    names = [c.strip() for c in columns.split(",")]
    updates = ", ".join(
        f"{c} = COALESCE(max(excluded.{c}, {table}.{c}), excluded.{c}, {table}.{c})"
        if c == "last_heartbeat"
        else f"{c} = excluded.{c}"
        for c in names
        if c not in key
    )
    marks = ", ".join("?" for _ in names)
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


_STAGE_COLUMNS = queries.STAGE_COLUMNS


_UPSERT_RUN = _upsert("runs", _RUN_COLUMNS, ("run_id",))
_UPSERT_STAGE = _upsert("stage_attempts", _STAGE_COLUMNS, ("run_id", "stage", "attempt"))


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _translated(
    method: Callable[Concatenate[SQLiteStateRepository, _P], _R],
) -> Callable[Concatenate[SQLiteStateRepository, _P], _R]:
    """A write whose SQLite error reaches the caller as a store error naming the file."""

    def wrapper(self: SQLiteStateRepository, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise store_error(exc, path=self.path, kind=KIND, doing="write") from exc

    functools.update_wrapper(wrapper, method)
    return wrapper


class SQLiteStateRepository(queries.SQLReads):
    """Runs, attempts and log events in one SQLite file."""

    dialect = queries.SQLITE

    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self._conn = connect(
            self.path,
            kind=KIND,
            migrations=MIGRATIONS,
            read_only=read_only,
            check_same_thread=False,
        )
        self._lock = threading.Lock()
        self._stream_ids: dict[tuple[str, str, int, str], int] = {}

    @classmethod
    def for_project(cls, project: Project, *, read_only: bool = False) -> SQLiteStateRepository:
        """The project's state file: ``<state_dir>/state.db``."""
        return cls(project.state_dir / "state.db", read_only=read_only)

    def commit(
        self,
        *,
        runs: Sequence[RunRecord] = (),
        stages: Sequence[StageRecord] = (),
        logs: Sequence[LogBatch] = (),
    ) -> None:
        run_rows = [codec.run_row(run) for run in runs]
        stage_rows = [codec.stage_row(stage) for stage in stages]
        try:
            self._write(run_rows, stage_rows, logs)
        except sqlite3.Error as exc:  # busy past the timeout, a full disk, a damaged file
            raise store_error(exc, path=self.path, kind=KIND, doing="write") from exc

    def _write(
        self,
        run_rows: list[tuple[Any, ...]],
        stage_rows: list[tuple[Any, ...]],
        logs: Sequence[LogBatch],
    ) -> None:
        with self._lock, transaction(self._conn) as conn:
            if run_rows:
                conn.executemany(_UPSERT_RUN, run_rows)
            if stage_rows:
                conn.executemany(_UPSERT_STAGE, stage_rows)
            new_streams: dict[tuple[str, str, int, str], int] = {}
            counts: list[tuple[int, int]] = []
            for batch in logs:
                key = (batch.run_id, batch.stage, batch.attempt, batch.stream)
                stream_id = self._stream_ids.get(key) or new_streams.get(key)
                if stream_id is None:
                    stream_id = new_streams[key] = _stream_id(conn, key)
                # Stream and time are the batch's: bound once in the SQL (an int and a float
                # repr, both exact), so the per-line work is one C-level bind of the text.
                conn.executemany(
                    "INSERT INTO log_events (stream_id, ts, message) "
                    f"VALUES ({int(stream_id)}, {float(batch.ts)!r}, ?)",
                    zip(batch.lines),
                )
                counts.append((len(batch.lines), stream_id))
            conn.executemany("UPDATE log_streams SET lines = lines + ? WHERE id = ?", counts)
        # Only now, the transaction committed: a rolled-back stream row must not be cached.
        if logs:
            self._stream_ids.update(new_streams)

    @_translated
    def claim_run(self, run: RunRecord) -> bool:
        row = codec.run_row(run)
        # BEGIN IMMEDIATE holds the write lock from the read to the write: check-then-set
        # is atomic across processes.
        with self._lock, transaction(self._conn) as conn:
            current = conn.execute(
                "SELECT status FROM runs WHERE run_id = ?", (run.run_id,)
            ).fetchone()
            if current is not None and current[0] == str(RunStatus.RUNNING):
                return False
            conn.execute(_UPSERT_RUN, row)
            return True

    @_translated
    def interrupt_run(self, seen: RunRecord, *, now: float, reason: str) -> bool:
        running = str(RunStatus.RUNNING)
        with self._lock, transaction(self._conn) as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = ?, finished_at = ?, error = ?, lease_expires_at = NULL"
                " WHERE run_id = ? AND status = ? AND lease_expires_at IS ? AND pid IS ?"
                " AND host IS ?",
                (
                    str(RunStatus.INTERRUPTED),
                    now,
                    reason,
                    seen.run_id,
                    running,
                    seen.lease_expires_at,
                    seen.pid,
                    seen.host,
                ),
            )
            if cursor.rowcount != 1:
                return False
            conn.execute(
                "UPDATE stage_attempts SET status = ?, finished_at = ?, reason = ?,"
                " last_heartbeat = (SELECT last_heartbeat FROM runs WHERE run_id = ?)"
                " WHERE run_id = ? AND status = ?",
                (str(StageStatus.INTERRUPTED), now, reason, seen.run_id, seen.run_id, running),
            )
            return True

    @_translated
    def renew_lease(self, run_id: str, *, expires_at: float, now: float) -> bool:
        with self._lock, transaction(self._conn) as conn:
            cursor = conn.execute(
                "UPDATE runs SET lease_expires_at = ?, last_heartbeat = ?"
                " WHERE run_id = ? AND status = ?",
                (expires_at, now, run_id, str(RunStatus.RUNNING)),
            )
            return cursor.rowcount == 1

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @property
    def where(self) -> str:
        return f"the {KIND.name} {self.path}"

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            with self._lock:
                return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise store_error(exc, path=self.path, kind=KIND, doing="read") from exc


def _stream_id(conn: sqlite3.Connection, key: tuple[str, str, int, str]) -> int:
    conn.execute(
        "INSERT OR IGNORE INTO log_streams (run_id, stage, attempt, stream) VALUES (?, ?, ?, ?)",
        key,
    )
    row = conn.execute(
        "SELECT id FROM log_streams WHERE run_id = ? AND stage = ? AND attempt = ? AND stream = ?",
        key,
    ).fetchone()
    return int(row[0])

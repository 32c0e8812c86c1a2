"""The team :class:`StateRepository`: runs, attempts and logs in a PostgreSQL database.

Same representation and semantics as the SQLite store (the same contract suite runs
against both): JSON values as text, a stage counts as done only once its attempt is
committed, and one :meth:`commit` is one transaction. Several runners (on several machines)
share one database:

* ``claim_run`` is a single conditional upsert, ``… ON CONFLICT DO UPDATE … WHERE status
  <> 'running'``: the server takes the run's row lock, so of two runners resuming one run
  exactly one gets it; the other sees ``False`` and stops.
* ``renew_lease`` updates only a run that is still running, under the same row lock.
* Log lines go in with ``COPY`` (one round trip per commit, however many lines).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stepkit import postgres
from stepkit.errors import StateStoreError
from stepkit.state import codec, queries
from stepkit.state.records import (
    LogBatch,
    RunRecord,
    RunStatus,
    StageRecord,
    StageStatus,
)

if TYPE_CHECKING:
    import psycopg

#: Append-only: never edit a migration that shipped, add one.
MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "state-0001-runs-attempts-logs",
        """
        CREATE TABLE runs (
            id BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
            run_id TEXT PRIMARY KEY,
            pipeline TEXT NOT NULL,
            status TEXT NOT NULL,
            inputs TEXT NOT NULL,
            outputs TEXT NOT NULL,
            graph TEXT NOT NULL,
            source TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            started_at DOUBLE PRECISION,
            finished_at DOUBLE PRECISION,
            error TEXT,
            retries INTEGER NOT NULL DEFAULT 0,
            host TEXT,
            pid INTEGER,
            lease_expires_at DOUBLE PRECISION
        );
        CREATE INDEX runs_created ON runs (created_at);
        CREATE INDEX runs_status ON runs (status);
        CREATE TABLE stage_attempts (
            id BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
            run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
            stage TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            status TEXT NOT NULL,
            mode TEXT NOT NULL,
            started_at DOUBLE PRECISION,
            finished_at DOUBLE PRECISION,
            duration DOUBLE PRECISION,
            inputs TEXT NOT NULL,
            outputs TEXT NOT NULL,
            error_type TEXT,
            error_message TEXT,
            traceback TEXT,
            reason TEXT,
            cpu_time DOUBLE PRECISION,
            peak_rss BIGINT,
            PRIMARY KEY (run_id, stage, attempt)
        );
        CREATE TABLE log_streams (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            run_id TEXT NOT NULL,
            stage TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            stream TEXT NOT NULL,
            UNIQUE (run_id, stage, attempt, stream)
        );
        CREATE TABLE log_events (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            stream_id BIGINT NOT NULL REFERENCES log_streams (id) ON DELETE CASCADE,
            ts DOUBLE PRECISION NOT NULL,
            message TEXT NOT NULL
        );
        CREATE INDEX log_events_stream ON log_events (stream_id, seq);
        """,
    ),
    (
        # a run's last heartbeat, kept when its lease is cleared, and copied to the attempts
        # a reap finds interrupted: where a report ends their bars
        "state-0002-last-heartbeat",
        """
        ALTER TABLE runs ADD COLUMN last_heartbeat DOUBLE PRECISION;
        ALTER TABLE stage_attempts ADD COLUMN last_heartbeat DOUBLE PRECISION;
        """,
    ),
    (
        # each stream's line count, kept as lines are written: a report and count_logs read
        # it instead of counting a million index entries
        "state-0003-log-line-counts",
        """
        ALTER TABLE log_streams ADD COLUMN lines BIGINT NOT NULL DEFAULT 0;
        UPDATE log_streams
        SET lines = (SELECT count(*) FROM log_events WHERE stream_id = log_streams.id);
        """,
    ),
)

_RUN_COLUMNS = queries.RUN_COLUMNS
_STAGE_COLUMNS = queries.STAGE_COLUMNS


def _upsert(table: str, columns: str, key: tuple[str, ...]) -> str:
    """INSERT … ON CONFLICT DO UPDATE; ``last_heartbeat`` only moves forward (GREATEST
    ignores NULL), as in the SQLite store."""
    names = [c.strip() for c in columns.split(",")]
    updates = ", ".join(
        f"{c} = GREATEST(excluded.{c}, {table}.{c})"
        if c == "last_heartbeat"
        else f"{c} = excluded.{c}"
        for c in names
        if c not in key
    )
    marks = ", ".join("%s" for _ in names)
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


_UPSERT_RUN = _upsert("runs", _RUN_COLUMNS, ("run_id",))
_UPSERT_STAGE = _upsert("stage_attempts", _STAGE_COLUMNS, ("run_id", "stage", "attempt"))
# The claim: insert, or take over a run only if it is not running (atomic under the row lock).
_CLAIM_RUN = _UPSERT_RUN + " WHERE runs.status <> %s"


class PostgresStateRepository(queries.SQLReads):
    """Runs, attempts and log events in one PostgreSQL schema (the URL's search_path)."""

    dialect = queries.POSTGRES

    def __init__(self, url: str, *, key: str = "state.url") -> None:
        self.url = url
        self._key = key
        self._conn: psycopg.Connection[tuple[Any, ...]] = postgres.connect(
            url, key=key, migrations=MIGRATIONS
        )
        # One connection, shared with the heartbeat thread: one statement sequence at a time.
        self._lock = threading.Lock()
        self._stream_ids: dict[tuple[str, str, int, str], int] = {}

    def __repr__(self) -> str:
        return f"PostgresStateRepository({postgres.redact(self.url)!r})"

    def commit(
        self,
        *,
        runs: Sequence[RunRecord] = (),
        stages: Sequence[StageRecord] = (),
        logs: Sequence[LogBatch] = (),
    ) -> None:
        # Encode first: a value that cannot be stored raises before anything is sent.
        run_rows = [codec.run_row(run) for run in runs]
        stage_rows = [codec.stage_row(stage) for stage in stages]
        import psycopg

        new_streams: dict[tuple[str, str, int, str], int] = {}
        try:
            with self._lock, self._conn.transaction():
                cur = self._conn.cursor()
                if run_rows:
                    cur.executemany(_UPSERT_RUN.encode(), run_rows)
                if stage_rows:
                    cur.executemany(_UPSERT_STAGE.encode(), stage_rows)
                if logs:
                    for batch in logs:
                        key = (batch.run_id, batch.stage, batch.attempt, batch.stream)
                        if key not in self._stream_ids and key not in new_streams:
                            new_streams[key] = self._stream_id(cur, key)
                    counts: list[tuple[int, int]] = []
                    with cur.copy("COPY log_events (stream_id, ts, message) FROM STDIN") as copy:
                        for batch in logs:
                            key = (batch.run_id, batch.stage, batch.attempt, batch.stream)
                            stream_id = self._stream_ids.get(key) or new_streams[key]
                            for line in batch.lines:
                                copy.write_row((stream_id, batch.ts, line))
                            counts.append((len(batch.lines), stream_id))
                    cur.executemany(
                        b"UPDATE log_streams SET lines = lines + %s WHERE id = %s", counts
                    )
        except psycopg.Error as exc:
            raise self._error("commit", exc) from exc
        # Only now, the transaction committed: a rolled-back stream row must not be cached.
        self._stream_ids.update(new_streams)

    @staticmethod
    def _stream_id(cur: psycopg.Cursor[tuple[Any, ...]], key: tuple[str, str, int, str]) -> int:
        cur.execute(
            "INSERT INTO log_streams (run_id, stage, attempt, stream) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (run_id, stage, attempt, stream) DO NOTHING",
            key,
        )
        row = cur.execute(
            "SELECT id FROM log_streams "
            "WHERE run_id = %s AND stage = %s AND attempt = %s AND stream = %s",
            key,
        ).fetchone()
        assert row is not None  # inserted or already there, in this transaction
        return int(row[0])

    def claim_run(self, run: RunRecord) -> bool:
        row = (*codec.run_row(run), str(RunStatus.RUNNING))
        import psycopg

        try:
            with self._lock, self._conn.transaction():
                cursor = self._conn.execute(_CLAIM_RUN.encode(), row)
                return cursor.rowcount == 1
        except psycopg.Error as exc:
            raise self._error("claim_run", exc) from exc

    def interrupt_run(self, seen: RunRecord, *, now: float, reason: str) -> bool:
        import psycopg

        running = str(RunStatus.RUNNING)
        try:
            with self._lock, self._conn.transaction():
                cursor = self._conn.execute(
                    b"UPDATE runs SET status = %s, finished_at = %s, error = %s,"
                    b" lease_expires_at = NULL WHERE run_id = %s AND status = %s"
                    b" AND lease_expires_at IS NOT DISTINCT FROM %s"
                    b" AND pid IS NOT DISTINCT FROM %s AND host IS NOT DISTINCT FROM %s",
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
                self._conn.execute(
                    b"UPDATE stage_attempts SET status = %s, finished_at = %s, reason = %s,"
                    b" last_heartbeat = (SELECT last_heartbeat FROM runs WHERE run_id = %s)"
                    b" WHERE run_id = %s AND status = %s",
                    (
                        str(StageStatus.INTERRUPTED),
                        now,
                        reason,
                        seen.run_id,
                        seen.run_id,
                        running,
                    ),
                )
                return True
        except psycopg.Error as exc:
            raise self._error("interrupt_run", exc) from exc

    def renew_lease(self, run_id: str, *, expires_at: float, now: float) -> bool:
        cursor = self._run(
            "UPDATE runs SET lease_expires_at = %s, last_heartbeat = %s"
            " WHERE run_id = %s AND status = %s",
            (expires_at, now, run_id, str(RunStatus.RUNNING)),
        )
        return cursor.rowcount == 1

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @property
    def where(self) -> str:
        return f"{self._key} {postgres.redact(self.url)}"

    def _query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            with self._lock:
                return self._conn.execute(sql.encode(), params).fetchall()
        except psycopg.Error as exc:
            raise self._error("read", exc) from exc

    def _run(self, sql: str, params: Sequence[Any]) -> psycopg.Cursor[tuple[Any, ...]]:
        import psycopg

        try:
            with self._lock, self._conn.transaction():
                return self._conn.execute(sql.encode(), params)
        except psycopg.Error as exc:
            raise self._error("write", exc) from exc

    def _error(self, what: str, exc: Exception) -> StateStoreError:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return StateStoreError(
            f"{self._key} {postgres.redact(self.url)}: {what} failed: {first}; "
            "nothing from this batch was written."
            if what in ("commit", "claim_run", "write")
            else f"{self._key} {postgres.redact(self.url)}: {what} failed: {first}"
        )

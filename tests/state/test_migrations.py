"""A state store written by an older stepkit is brought up to date in place, every record
kept: a SQLite file of ``user_version`` 1, a PostgreSQL schema of the first named migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from stepkit import postgres
from stepkit.errors import StorePermissionError
from stepkit.sqlite import APPLICATION_ID
from stepkit.state import LogBatch, SQLiteStateRepository, StageStatus
from stepkit.state.postgres import MIGRATIONS as PG_MIGRATIONS
from stepkit.state.postgres import PostgresStateRepository
from stepkit.state.sqlite import MIGRATIONS


def _version_1_file(path: Path) -> None:
    """A state file as the first schema left it: one interrupted run, its attempt."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.executescript(MIGRATIONS[0])
    conn.execute(
        "INSERT INTO runs (run_id, pipeline, status, inputs, outputs, graph, created_at, "
        "finished_at) VALUES ('r1', 'p', 'interrupted', '{}', '{}', '{\"a\":[]}', 1.0, 9.0)"
    )
    conn.execute(
        "INSERT INTO stage_attempts (run_id, stage, attempt, status, mode, started_at, "
        "finished_at, inputs, outputs) VALUES ('r1', 'a', 1, 'interrupted', 'direct', 2.0, "
        "9.0, '{}', '{}')"
    )
    conn.execute(
        "INSERT INTO log_streams (id, run_id, stage, attempt, stream) VALUES (1, 'r1', 'a', 1, 'stdout')"
    )
    conn.executemany(
        "INSERT INTO log_events (stream_id, ts, message) VALUES (1, 3.0, ?)",
        [(f"line {i}",) for i in range(25)],
    )
    conn.execute("PRAGMA user_version = 1")
    conn.close()


def test_a_version_1_state_file_is_brought_up_to_date_keeping_its_records(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.db"
    _version_1_file(path)
    repo = SQLiteStateRepository(path)
    try:
        run = repo.get_run("r1")
        (attempt,) = repo.stage_records("r1")
        counted = repo.count_logs("r1"), repo.count_logs("r1", stage="a")
        tail = repo.log_tails("r1", size=3)[("a", 1)]
        repo.commit(logs=[LogBatch("r1", "a", 1, "stdout", 4.0, ["one more"])])
        after = repo.count_logs("r1")
    finally:
        repo.close()
    assert counted == (25, 25) and after == 26  # the migration counted the lines already there
    assert tail.lines == 25 and [e.message for e in tail.events] == [
        "line 22",
        "line 23",
        "line 24",
    ]
    assert (run.finished_at, run.last_heartbeat) == (9.0, None)  # not recorded back then
    assert (attempt.status, attempt.finished_at, attempt.last_heartbeat) == (
        StageStatus.INTERRUPTED,
        9.0,
        None,
    )
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    conn.close()


def test_a_version_1_file_on_a_read_only_open_is_said_to_need_an_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _version_1_file(path)
    with pytest.raises(StorePermissionError, match="upgrade"):
        SQLiteStateRepository(path, read_only=True)


def test_a_postgres_schema_of_the_first_migration_is_brought_up_to_date(
    postgres_url: str,
) -> None:
    old = postgres.connect(postgres_url, key="state.url", migrations=PG_MIGRATIONS[:1])
    with old:
        old.execute(
            "INSERT INTO runs (run_id, pipeline, status, inputs, outputs, graph, created_at) "
            "VALUES ('r1', 'p', 'interrupted', '{}', '{}', '{}', 1.0)"
        )
        stream = old.execute(
            "INSERT INTO log_streams (run_id, stage, attempt, stream) "
            "VALUES ('r1', 'a', 1, 'stdout') RETURNING id"
        ).fetchone()
        assert stream is not None
        for i in range(7):
            old.execute(
                "INSERT INTO log_events (stream_id, ts, message) VALUES (%s, 1.0, %s)",
                (stream[0], f"line {i}"),
            )
    repo = PostgresStateRepository(postgres_url)
    try:
        assert repo.get_run("r1").last_heartbeat is None
        assert repo.count_logs("r1") == 7  # counted by the migration
        repo.commit(logs=[LogBatch("r1", "a", 1, "stdout", 2.0, ["one more"])])
        assert repo.count_logs("r1", stage="a") == 8
        assert repo.log_tails("r1", size=2)[("a", 1)].lines == 8
    finally:
        repo.close()

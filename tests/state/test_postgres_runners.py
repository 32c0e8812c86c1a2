"""Several runner processes against one PostgreSQL database: one resume wins, no stage is
lost or run twice, and the schema is migrated once however many start together."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from stepkit.errors import PostgresUrlError, UnknownStoreUrlError
from stepkit.state import RunRecord, RunStatus, StageRecord, StageStatus, open_state_url
from stepkit.state.postgres import MIGRATIONS, PostgresStateRepository
from stepkit.state.records import latest_attempts

TESTS = Path(__file__).resolve().parents[1]
RUNNERS = 4


def _spawn(url: str, marker: Path, run_id: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "state.pg_runners", url, str(marker), run_id],
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _interrupted_shared_run(url: str, marker: Path) -> None:
    """The shared run as a dead runner left it: ``a`` done, ``b`` interrupted."""
    state = PostgresStateRepository(url)
    try:
        state.commit(
            runs=[
                RunRecord(
                    run_id="shared-1",
                    pipeline="shared",
                    status=RunStatus.INTERRUPTED,
                    inputs={"marker": str(marker)},
                    created_at=time.time(),
                )
            ],
            stages=[
                StageRecord("shared-1", "a", 1, StageStatus.COMPLETED, outputs={"by": "a"}),
                StageRecord("shared-1", "b", 1, StageStatus.INTERRUPTED, reason="runner died"),
            ],
        )
    finally:
        state.close()


def test_several_runners_on_one_database_never_lose_or_double_run_a_stage(
    postgres_url: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    marker.mkdir()
    (marker / "hold").touch()  # the winner's stage b waits until every loser has left
    _interrupted_shared_run(postgres_url, marker)
    runners = [_spawn(postgres_url, marker, "shared-1") for _ in range(RUNNERS)]
    deadline = time.monotonic() + 90
    while sum(r.poll() is not None for r in runners) < RUNNERS - 1:
        assert time.monotonic() < deadline, "the losing runners did not finish"
        time.sleep(0.05)
    (marker / "hold").unlink()
    outputs = [runner.communicate(timeout=90) for runner in runners]
    for runner, (_out, err) in zip(runners, outputs, strict=True):
        assert runner.returncode == 0, err
    firsts = [out.splitlines()[0] for out, _ in outputs]
    assert sorted(firsts) == ["lost"] * (RUNNERS - 1) + ["resumed completed"]

    ran = Counter(tuple(line.split()) for line in (marker / "ran.txt").read_text().splitlines())
    shared = {stage: n for (run, stage), n in ran.items() if run == "shared-1"}
    assert shared == {"b": 1, "c": 1, "d": 1, "e": 1}  # a was done: kept, not run again
    state = PostgresStateRepository(postgres_url)
    try:
        runs = state.list_runs()
        assert len(runs) == RUNNERS + 1
        assert {r.status for r in runs} == {RunStatus.COMPLETED}
        for run in runs:
            latest = latest_attempts(state.stage_records(run.run_id))
            assert {r.status for r in latest.values()} <= {StageStatus.COMPLETED}
            if run.pipeline == "own":
                assert len(latest) == 21
                mine = {stage: n for (rid, stage), n in ran.items() if rid == run.run_id}
                assert set(mine.values()) == {1} and len(mine) == 21
        migrations = state._conn.execute("SELECT count(*) FROM stepkit_migrations").fetchone()
        assert migrations == (len(MIGRATIONS),)  # each applied once, however many runners
    finally:
        state.close()


def test_a_url_with_a_password_is_refused_in_one_line() -> None:
    with pytest.raises(PostgresUrlError) as caught:
        open_state_url("postgresql://alice:s3cret@db.example:5432/stepkit")
    message = str(caught.value)
    assert message == (
        "state.url postgresql://…@db.example:5432/stepkit has a password in it; keep "
        "credentials out of stepkit.toml (use PGPASSWORD or ~/.pgpass)."
    )
    assert "s3cret" not in message and isinstance(caught.value, ValueError)


def test_a_password_in_the_query_string_is_refused_too() -> None:
    with pytest.raises(PostgresUrlError, match="has a password in it"):
        open_state_url("postgresql://db.example/stepkit?password=s3cret")


def test_an_unknown_scheme_names_the_ones_that_work() -> None:
    with pytest.raises(UnknownStoreUrlError) as caught:
        open_state_url("mysql://db/stepkit")
    assert str(caught.value) == (
        "state.url 'mysql://db/stepkit': unknown scheme; use one of sqlite:///, "
        "postgresql://, postgres://, memory://."
    )


def test_an_unreachable_server_is_one_line_naming_the_setting() -> None:
    from stepkit.errors import StateStoreError

    with pytest.raises(StateStoreError, match=r"^state.url postgresql://nobody@127.0.0.1:1/x: "):
        open_state_url("postgresql://nobody@127.0.0.1:1/x?connect_timeout=2")

"""A subprocess stage whose runner was killed is killed before its stage runs again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from stepkit import Pipeline
from stepkit.state import RunStatus, SQLiteStateRepository, StageStatus
from stepkit.state.records import latest_attempts

from . import runner_scripts

TESTS = Path(__file__).resolve().parents[1]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_gone(pid: int, *, within: float = 30.0) -> bool:
    """Whether ``pid`` is gone within ``within`` seconds (a bound, not a measured time)."""
    deadline = time.monotonic() + within
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def orphan(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A run whose runner was SIGKILLed while its subprocess stage ran: (run id, the pid of
    a process the stage started). The stage itself dies with its runner; what it started
    stays in its process group."""
    marker = tmp_path / "marker"
    marker.mkdir()
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(TESTS), "TMPDIR": str(temp)}
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.runner_scripts",
            "orphaning",
            str(tmp_path / "s.db"),
            str(marker),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pid_file = marker / "orphan.pid"
    deadline = time.monotonic() + 60
    while not pid_file.exists():
        assert time.monotonic() < deadline and runner.poll() is None
        time.sleep(0.02)
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait(timeout=30)
    assert _wait_gone(int((marker / "stage.pid").read_text())), "the stage outlived its runner"
    stage_pid = int(pid_file.read_text())
    state = SQLiteStateRepository(tmp_path / "s.db")
    try:
        (run,) = state.list_runs()
    finally:
        state.close()
    yield run.run_id, stage_pid
    if _alive(stage_pid):  # the test failed: leave nothing running
        os.kill(stage_pid, signal.SIGKILL)


def test_resume_kills_the_orphan_before_the_stage_runs_again(
    tmp_path: Path, orphan: tuple[str, int]
) -> None:
    run_id, stage_pid = orphan
    assert _alive(stage_pid)  # what the stage started outlived its runner
    state = SQLiteStateRepository(tmp_path / "s.db")
    try:
        result = runner_scripts.orphaning().resume(run_id, state=state, temp_root=tmp_path / "tmp")
        attempts = [(r.attempt, r.status) for r in state.stage_records(run_id)]
    finally:
        state.close()
    assert result.ok, result.error
    assert result.outputs == {"sleeper": {"attempt": 2, "first_alive": False}}
    assert not _alive(stage_pid)
    assert attempts == [(1, StageStatus.INTERRUPTED), (2, StageStatus.COMPLETED)]
    assert list((tmp_path / "tmp").iterdir()) == []  # the dead runner's folder too


def test_the_next_runner_that_reaps_the_run_kills_its_orphan(
    tmp_path: Path, orphan: tuple[str, int]
) -> None:
    run_id, stage_pid = orphan
    other = Pipeline("other")
    other.add("noop", lambda context: None)
    state = SQLiteStateRepository(tmp_path / "s.db")
    try:
        assert other.run(state=state, temp_root=tmp_path / "tmp").ok
        run = state.get_run(run_id)
        latest = latest_attempts(state.stage_records(run_id))
    finally:
        state.close()
    assert run.status == RunStatus.INTERRUPTED
    assert latest["sleeper"].status == StageStatus.INTERRUPTED
    assert not _alive(stage_pid)

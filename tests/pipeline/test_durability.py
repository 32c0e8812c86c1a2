"""The runner as a real process: killed mid-run then resumed; eight at once on one file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stepkit.errors import RunLeaseError
from stepkit.state import RunStatus, SQLiteStateRepository, StageStatus
from stepkit.state.records import latest_attempts

from . import runner_scripts

TESTS = Path(__file__).resolve().parents[1]


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.runner_scripts", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def test_a_runner_killed_mid_run_is_resumed_without_rerunning_completed_stages(
    tmp_path: Path,
) -> None:
    db = tmp_path / "state.db"
    marker = tmp_path / "marker"
    marker.mkdir()
    (marker / "hold").write_text("")
    ran = marker / "ran.txt"

    runner = _spawn("killable", str(db), str(marker))
    try:
        _wait_for(lambda: ran.exists() and {"c", "x"} <= set(ran.read_text().split()))
        # x's record must be committed too before we pull the plug.
        probe = SQLiteStateRepository(db)
        try:

            def x_committed() -> bool:
                runs = probe.list_runs()
                if not runs:
                    return False
                latest = latest_attempts(probe.stage_records(runs[0].run_id))
                return "x" in latest and latest["x"].status == StageStatus.COMPLETED

            _wait_for(x_committed)
        finally:
            probe.close()
        os.kill(runner.pid, signal.SIGKILL)
    finally:
        runner.communicate(timeout=30)
    assert runner.returncode == -signal.SIGKILL
    before_kill = ran.read_text().split()
    assert sorted(before_kill) == ["a", "b", "c", "x"]

    state = SQLiteStateRepository(db)
    try:
        (run,) = state.list_runs()
        assert run.status == RunStatus.RUNNING  # what the dead runner left behind
        (marker / "hold").unlink()
        result = runner_scripts.killable().resume(run.run_id, state=state)
        assert result.ok, result.error
        resumed = ran.read_text().split()[len(before_kill) :]
        assert sorted(resumed) == ["c", "d", "e"]  # each exactly once, a/b/x not again
        attempts = [(r.stage, r.attempt, str(r.status)) for r in state.stage_records(run.run_id)]
        assert ("c", 1, "interrupted") in attempts
        assert ("c", 2, "completed") in attempts
        assert [a for a in attempts if a[0] in {"a", "b", "x"}] == [
            ("a", 1, "completed"),
            ("b", 1, "completed"),
            ("x", 1, "completed"),
        ]
        assert state.get_run(run.run_id).status == RunStatus.COMPLETED
        assert result.outputs == {"d": {"by": "d"}, "e": {"by": "e"}}
    finally:
        state.close()


def test_resume_refuses_a_run_whose_runner_is_alive(tmp_path: Path) -> None:
    import socket

    from stepkit.state import RunRecord

    state = SQLiteStateRepository(tmp_path / "state.db")
    try:
        state.commit(
            runs=[
                RunRecord(
                    run_id="live",
                    pipeline="resumable",
                    status=RunStatus.RUNNING,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    lease_expires_at=time.time() + 60,
                )
            ]
        )
        with pytest.raises(RunLeaseError, match=r"Run 'live' is held by a live runner \(pid"):
            runner_scripts.killable().resume("live", state=state)
    finally:
        state.close()


def test_eight_runners_share_one_state_file_without_lock_errors(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    SQLiteStateRepository(db).close()  # migrate once, as any first runner would
    runners = [_spawn("many", str(db), str(i)) for i in range(8)]
    outputs = [runner.communicate(timeout=120) for runner in runners]
    for runner, (out, err) in zip(runners, outputs, strict=True):
        assert runner.returncode == 0, err
        assert "locked" not in err and "busy" not in err
        assert out.split()[1] == "completed"
    state = SQLiteStateRepository(db)
    try:
        runs = state.list_runs()
        assert len(runs) == 8 and {r.status for r in runs} == {RunStatus.COMPLETED}
        for run in runs:
            records = latest_attempts(state.stage_records(run.run_id))
            assert len(records) == 63
            assert {r.status for r in records.values()} == {StageStatus.COMPLETED}
            assert state.count_logs(run.run_id, stage="talk") == 2000
    finally:
        state.close()

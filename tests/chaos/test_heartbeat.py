"""A runner killed with SIGKILL in the middle of a stage that writes nothing: its last
heartbeat is kept through the reap, ``runs show`` says how long ago it was, and the report
ends the interrupted attempt's bar there, not at the resume that reaped it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaos.beating import LEASE_SECONDS, pipeline
from stepkit.cli.app import main
from stepkit.pipeline.report import gather_report
from stepkit.state import RunRecord, RunStatus, SQLiteStateRepository, StageRecord, StageStatus

TESTS = Path(__file__).resolve().parents[1]


def _read(db: Path) -> tuple[RunRecord | None, float | None]:
    """The run, and when its slow stage started (None until both are recorded)."""
    if not db.exists():
        return None, None
    state = SQLiteStateRepository(db, read_only=True)
    try:
        runs = state.list_runs()
        if not runs:
            return None, None
        slow = [r for r in state.stage_records(runs[0].run_id) if r.stage == "slow"]
        return runs[0], slow[0].started_at if slow else None
    finally:
        state.close()


def bare_project(tmp_path: Path) -> Path:
    """A project of one empty workspace: what the runners here record into."""
    project = tmp_path / "project"
    (project / "steps").mkdir(parents=True)
    (project / "stepkit.toml").write_text(
        '[project]\nname = "p"\n[[workspaces]]\nid = "core"\npath = "steps"\n'
    )
    return project


def test_a_killed_runners_last_heartbeat_ends_its_interrupted_attempt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = bare_project(tmp_path)
    db, hold = project / ".stepkit" / "state.db", tmp_path / "hold"
    hold.touch()
    runner = subprocess.Popen(
        [sys.executable, "-m", "chaos.beating", str(db), str(hold)],
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while True:  # until a heartbeat has come after the slow stage started
        run, started = _read(db)
        beat = run.last_heartbeat if run else None
        if started is not None and beat is not None and beat > started:
            break
        assert time.monotonic() < deadline, "no heartbeat during the slow stage"
        assert runner.poll() is None, runner.communicate()[1]
        time.sleep(0.02)
    runner.kill()  # SIGKILL: no finally, no last commit
    runner.communicate(timeout=60)
    killed_at = time.time()
    run, started = _read(db)
    assert run is not None and started is not None and run.last_heartbeat is not None
    last_beat = run.last_heartbeat
    assert started < last_beat < killed_at

    try:
        main(["--project", str(project), "runs", "show", run.run_id])
    except SystemExit as exit_:
        assert not exit_.code
    shown = capsys.readouterr().out
    assert f"its runner (pid {runner.pid} on " in shown
    assert " s ago); resume it with: stepkit runs resume " in shown
    assert "stopped without finishing (last heartbeat " in shown

    hold.unlink()
    state = SQLiteStateRepository(db)
    try:
        result = pipeline().resume(run.run_id, state=state, lease_seconds=LEASE_SECONDS)
        assert result.ok
        interrupted, again = (r for r in state.stage_records(run.run_id) if r.stage == "slow")
        assert interrupted.status == StageStatus.INTERRUPTED
        assert interrupted.last_heartbeat == last_beat  # kept through the reap
        assert interrupted.finished_at is not None and interrupted.finished_at > killed_at
        assert again.status == StageStatus.COMPLETED

        report = gather_report(state, run.run_id)
        first = report.stages["slow"].attempts[0]
        assert first.alive_until == last_beat  # the heartbeat, not the reap
        assert first.drawn_until == last_beat
        resumed = state.get_run(run.run_id)
        assert resumed.status == RunStatus.COMPLETED
        assert resumed.last_heartbeat is not None and resumed.last_heartbeat > killed_at
    finally:
        state.close()


def test_runs_show_ends_an_interrupted_attempt_at_its_last_heartbeat_and_dots_to_the_reap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = bare_project(tmp_path)
    t0 = 1_800_000_000.0
    state = SQLiteStateRepository(project / ".stepkit" / "state.db")
    run = RunRecord(
        run_id="r1",
        pipeline="p",
        status=RunStatus.COMPLETED,
        graph={"train": ()},
        created_at=t0,
        started_at=t0,
        finished_at=t0 + 40,
        last_heartbeat=t0 + 39,
    )
    first = StageRecord(
        "r1",
        "train",
        1,
        StageStatus.INTERRUPTED,
        started_at=t0,
        finished_at=t0 + 30,  # reaped by the resume
        last_heartbeat=t0 + 10,  # its runner's last heartbeat
        reason="runner pid 1 on host stopped without finishing (lease lost)",
    )
    second = StageRecord(
        "r1", "train", 2, StageStatus.COMPLETED, started_at=t0 + 30, finished_at=t0 + 40
    )
    state.commit(runs=[run], stages=[first, second])
    state.close()
    try:
        main(["--project", str(project), "runs", "show", "r1"])
    except SystemExit as exit_:
        assert not exit_.code
    (row,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("train")]
    bar = row[row.index("█") : row.rindex("█") + 1]
    # 40 cells over 40 s: the first attempt's bar to +10 s, dots to the reap at +30 s, then
    # the second attempt
    assert bar == "█" * 10 + "·" * 19 + "█" * 11

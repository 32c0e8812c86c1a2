"""Runners killed with SIGKILL at random points and resumed until their run completes, and
eight runners creating one state file at once: zero lost or duplicated stage records, no
committed stage run again, no two attempts of one stage at once, no process left behind."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from chaos.runners import STAGES
from stepkit.cli.app import main
from stepkit.state import RunStatus, SQLiteStateRepository, StageStatus
from stepkit.state.records import StageRecord

TESTS = Path(__file__).resolve().parents[1]
#: Kills per trial before the run is let finish.
KILLS = 3


def _spawn(*args: str, temp: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(TESTS), "TMPDIR": str(temp)}
    return subprocess.Popen(
        [sys.executable, "-m", "chaos.runners", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _ledger(path: Path) -> list[tuple[str, str, int, int]]:
    """(what, stage, attempt, pid) per line, in the order written."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        what, stage, attempt, pid = line.split()
        rows.append((what, stage, int(attempt), int(pid)))
    return rows


def _check_ledger(ledger: list[tuple[str, str, int, int]], completed: dict[str, int]) -> None:
    starts = Counter((stage, attempt) for what, stage, attempt, _ in ledger if what == "start")
    assert [key for key, n in starts.items() if n > 1] == []  # one attempt ran once
    for stage, attempt in starts:
        # a stage whose completion was recorded never ran again
        assert attempt <= completed[stage], f"{stage} ran attempt {attempt} after completing"
    latest: dict[str, int] = {}
    for _what, stage, attempt, _ in ledger:
        # once attempt k started, an earlier attempt of the stage never wrote again: the
        # orphan of a killed runner never ran beside its stage's next attempt
        assert attempt >= latest.get(stage, 0), f"{stage} attempt {attempt} ran beside a later"
        latest[stage] = max(latest.get(stage, 0), attempt)


def _check_records(records: list[StageRecord]) -> dict[str, int]:
    """Each stage recorded once per attempt and completed exactly once, its outputs made
    from the recorded outputs of its upstream stages; returns each stage's completed
    attempt."""
    keys = Counter((r.stage, r.attempt) for r in records)
    assert [key for key, n in keys.items() if n > 1] == []
    done = [r for r in records if r.status == StageStatus.COMPLETED]
    assert sorted(r.stage for r in done) == sorted(STAGES)
    tokens = {r.stage: r.outputs["token"] for r in done}
    for r in done:
        upstream = STAGES[r.stage][0]
        assert r.outputs["seen"] == {name: tokens[name] for name in upstream}, r.stage
    for r in records:  # every attempt before the completed one ended, recorded as such
        assert r.status in (StageStatus.COMPLETED, StageStatus.INTERRUPTED), r
    return {r.stage: r.attempt for r in done}


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(2))
def test_a_runner_killed_at_random_points_resumes_to_a_whole_run(
    tmp_path: Path, trial: int
) -> None:
    chance = random.Random(1600 + trial)  # the same kill points every time this trial runs
    db, ledger, temp = tmp_path / "state.db", tmp_path / "ledger", tmp_path / "tmp"
    temp.mkdir()
    killed = 0
    for _ in range(KILLS):
        # killed after a random number of ledger lines (stages starting, ending, starting
        # helpers), then a random few milliseconds more: anywhere in the run
        target = len(_ledger(ledger)) + chance.randint(0, 8)
        jitter = chance.uniform(0, 0.05)
        runner = _spawn("drive", str(db), str(ledger), temp=temp)
        deadline = time.monotonic() + 60
        while len(_ledger(ledger)) < target and runner.poll() is None:
            assert time.monotonic() < deadline, "the runner made no progress"
            time.sleep(0.005)
        time.sleep(jitter)
        if runner.poll() is None:
            runner.kill()
            killed += 1
        runner.communicate(timeout=60)
    last = _spawn("drive", str(db), str(ledger), temp=temp)
    _, err = last.communicate(timeout=120)
    assert last.returncode == 0, err

    state = SQLiteStateRepository(db, read_only=True)
    try:
        (run,) = state.list_runs()
        records = state.stage_records(run.run_id)
    finally:
        state.close()
    assert run.status == RunStatus.COMPLETED
    completed = _check_records(records)
    rows = _ledger(ledger)
    _check_ledger(rows, completed)
    assert killed > 0
    helpers = [int(what.split("-")[1]) for what, *_ in rows if what.startswith("helper-")]
    assert [pid for pid in helpers if not _gone(pid)] == []  # no stage's orphan left
    assert list(temp.iterdir()) == []  # every run folder removed, the dead runners' too


@pytest.mark.slow
def test_eight_runners_creating_one_state_file_at_once_all_complete(tmp_path: Path) -> None:
    db, temp = tmp_path / "state.db", tmp_path / "tmp"
    temp.mkdir()
    gate = tmp_path / "gate"
    gate.mkdir()
    runners = [_spawn("crowd", str(db), str(i), str(gate), temp=temp) for i in range(8)]
    deadline = time.monotonic() + 120
    while len(list(gate.iterdir())) < 8:  # every runner has imported stepkit: let them go
        assert time.monotonic() < deadline and all(r.poll() is None for r in runners)
        time.sleep(0.01)
    (gate / "go").touch()
    outputs = [runner.communicate(timeout=120) for runner in runners]
    for runner, (out, err) in zip(runners, outputs, strict=True):
        assert runner.returncode == 0, err
        assert "locked" not in err and "busy" not in err
        assert out.split()[1] == "completed"
    state = SQLiteStateRepository(db, read_only=True)
    try:
        runs = state.list_runs()
        assert len(runs) == 8 and {r.status for r in runs} == {RunStatus.COMPLETED}
        for run in runs:
            records = state.stage_records(run.run_id)
            assert len(records) == 22 and {r.status for r in records} == {StageStatus.COMPLETED}
    finally:
        state.close()
    assert [p.name for p in tmp_path.iterdir() if ".new" in p.name] == []


def test_a_run_whose_runner_was_killed_is_shown_as_such_until_resumed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project, temp = tmp_path / "project", tmp_path / "tmp"
    (project / "steps").mkdir(parents=True)
    (project / ".stepkit").mkdir()
    temp.mkdir()
    (project / "stepkit.toml").write_text(
        '[project]\nname = "p"\n[[workspaces]]\nid = "core"\npath = "steps"\n'
    )
    db, ledger = project / ".stepkit" / "state.db", tmp_path / "ledger"
    runner = _spawn("drive", str(db), str(ledger), temp=temp)
    deadline = time.monotonic() + 60
    while not _ledger(ledger):  # a stage has started: the run is recorded
        assert time.monotonic() < deadline and runner.poll() is None
        time.sleep(0.005)
    runner.kill()
    runner.communicate(timeout=60)

    def cli(*args: str) -> str:
        try:
            main(["--project", str(project), *args])
        except SystemExit as exit_:
            assert not exit_.code, capsys.readouterr()
        return capsys.readouterr().out

    assert "running (runner gone)" in cli("runs", "list")
    (listed,) = json.loads(cli("runs", "list", "--json"))
    assert listed["status"] == "running" and listed["runner_gone"] is True
    shown = cli("runs", "show", "latest")
    assert "stopped without finishing (last heartbeat " in shown
    assert " s ago); resume it with: stepkit runs resume" in shown
    cli("runs", "logs", "latest", "--follow")  # ends: nobody will write to the run again
    assert last_runner_exit(db, ledger, temp) == 0
    assert "running" not in cli("runs", "list")


def last_runner_exit(db: Path, ledger: Path, temp: Path) -> int:
    last = _spawn("drive", str(db), str(ledger), temp=temp)
    last.communicate(timeout=120)
    return last.returncode

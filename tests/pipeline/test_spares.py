"""Spare stage children: a ready stage is handed to a child started ahead, which is the
same as one started for it, runs nothing before its stage, and dies with its runner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from stepkit import Pipeline
from stepkit.state import RunStatus, SQLiteStateRepository, StageStatus

from . import spare_stages

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's"
)

TESTS = Path(__file__).resolve().parents[1]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_gone(pids: list[int]) -> list[int]:
    """The pids still alive once they are all gone or a minute has passed."""
    deadline = time.monotonic() + 60
    while any(not _gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return [pid for pid in pids if not _gone(pid)]


def test_a_ready_stage_is_handed_the_spare_and_sees_what_a_fresh_child_sees(
    state: SQLiteStateRepository,
) -> None:
    pipe = Pipeline("spare")
    pipe.add("first", spare_stages.first, mode="subprocess")
    pipe.add("second", spare_stages.second, depends_on=["first"], mode="subprocess")
    result = pipe.run(state=state)
    assert result.ok, result.error
    first = result.stages["first"].outputs
    second = result.outputs["second"]
    # the child started ahead while "first" ran is the one "second" ran in
    assert second["pid"] == first["spare"] != first["pid"]
    # and it is like the child started for "first": same parent (which it dies with),
    # folder, path, environment, command line, modules, an empty stdin
    assert second["view"] == first["view"]
    assert first["view"]["parent"] == os.getpid()
    assert first["view"]["leads_its_group"] and first["view"]["death_signal"] == signal.SIGKILL
    assert first["view"]["stdin"] == ""
    assert _wait_gone([first["spare"]]) == []


def test_a_spare_started_before_the_environment_changed_is_not_used(
    state: SQLiteStateRepository,
) -> None:
    pipe = Pipeline("spare-env")
    # with a timeout, on a thread of its own: the runner is free to start a spare meanwhile
    pipe.add("change", spare_stages.set_environ, mode="direct", timeout=120)
    pipe.add("read", spare_stages.reads_environ, depends_on=["change"], mode="subprocess")
    try:
        result = pipe.run(state=state)
    finally:
        os.environ.pop("STEPKIT_SPARE_TEST", None)
    assert result.ok, result.error
    spare = result.stages["change"].outputs["spare"]
    assert result.outputs["read"]["value"] == "changed"
    assert result.outputs["read"]["pid"] != spare
    assert _wait_gone([spare]) == []


def test_a_cancelled_run_kills_its_spare(state: SQLiteStateRepository, tmp_path: Path) -> None:
    cancel = threading.Event()
    pids = tmp_path / "pids"

    def cancel_when_held() -> None:
        deadline = time.monotonic() + 60
        while not pids.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        cancel.set()

    watcher = threading.Thread(target=cancel_when_held)
    watcher.start()
    try:
        result = spare_stages.held().run(
            inputs={"folder": str(tmp_path)}, state=state, cancel_event=cancel
        )
    finally:
        cancel.set()
        watcher.join()
    assert result.status == RunStatus.CANCELLED
    assert result.stages["hold"].status == StageStatus.CANCELLED
    stage, spare = (int(p) for p in pids.read_text().split())
    assert _wait_gone([stage, spare]) == []
    assert spare_stages.spares_of(os.getpid()) == []


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_a_spare_dies_with_its_runner(tmp_path: Path, how: signal.Signals) -> None:
    """Killed with SIGKILL (the kernel kills the children: PR_SET_PDEATHSIG) or stopped
    with Ctrl-C (the runner kills them): no stage child and no spare is left."""
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    runner = subprocess.Popen(
        [sys.executable, "-m", "pipeline.spare_stages", str(tmp_path / "state.db"), str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    pids = tmp_path / "pids"
    try:
        deadline = time.monotonic() + 60
        while not pids.exists() or not pids.read_text().endswith("\n"):
            assert runner.poll() is None, runner.communicate()
            assert time.monotonic() < deadline, "the stage never saw its spare"
            time.sleep(0.01)
        stage, spare = (int(p) for p in pids.read_text().split())
        os.kill(runner.pid, how)
        runner.communicate(timeout=60)
        assert _wait_gone([stage, spare]) == []
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()

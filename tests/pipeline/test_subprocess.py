"""Subprocess and distributed stages: isolation, captured output, killed trees, big logs."""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psutil
import pytest

from stepkit import Pipeline, RetryPolicy
from stepkit.state import RunStatus, SQLiteStateRepository, StageStatus

from . import stages


def test_a_subprocess_stage_runs_isolated_and_its_output_becomes_log_events(
    state: SQLiteStateRepository,
) -> None:
    pipe = Pipeline("sub")
    pipe.add("seed", lambda context: {"x": 21})
    pipe.add("double", stages.double, depends_on=["seed"], mode="subprocess")
    result = pipe.run(state=state)
    assert result.ok, result.error
    outputs = result.outputs["double"]
    assert outputs["y"] == 42 and outputs["pid"] != os.getpid()
    logs = state.logs(result.run_id, stage="double")
    assert [(e.stream, e.message) for e in logs] == [
        ("stdout", "doubling 21"),
        ("stderr", "a warning"),
    ] or [(e.stream, e.message) for e in logs] == [
        ("stderr", "a warning"),
        ("stdout", "doubling 21"),
    ]
    record = next(r for r in state.stage_records(result.run_id) if r.stage == "double")
    assert record.mode == "subprocess"
    assert record.peak_rss is not None and record.peak_rss > 1_000_000
    assert record.cpu_time is not None and record.cpu_time > 0


def test_a_subprocess_failure_keeps_its_type_message_and_traceback(
    state: SQLiteStateRepository,
) -> None:
    pipe = Pipeline("sub-fail")
    pipe.add(
        "fail",
        stages.fail,
        mode="subprocess",
        retry=RetryPolicy(max_attempts=2, delay=0, retry_on=(ValueError,)),
    )
    result = pipe.run(state=state)
    assert result.status == RunStatus.FAILED
    records = state.stage_records(result.run_id)
    assert [(r.attempt, r.error_type) for r in records] == [(1, "ValueError"), (2, "ValueError")]
    assert records[0].error_message == "bad value in fail"
    assert records[0].traceback is not None and "stages.py" in records[0].traceback


def test_a_subprocess_timeout_kills_the_whole_process_tree(
    state: SQLiteStateRepository, tmp_path: Path
) -> None:
    pids_file = tmp_path / "pids"
    pipe = Pipeline("sub-timeout")
    # Long enough for the child to start its grandchild even on a loaded machine.
    pipe.add("hang", stages.sleep_with_grandchild, mode="subprocess", timeout=2.0)
    started = time.monotonic()
    result = pipe.run(inputs={"pids": str(pids_file)}, state=state)
    assert time.monotonic() - started < 30
    assert result.stages["hang"].status == StageStatus.TIMED_OUT
    assert result.stages["hang"].error_message == (
        "Stage 'hang' timed out after 2 s (process tree killed)."
    )
    child, grandchild = (int(p) for p in pids_file.read_text().split())
    for pid in (child, grandchild):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert [e.message for e in state.logs(result.run_id)] == ["started"]


def test_a_million_log_lines_are_all_persisted_and_queryable(
    state: SQLiteStateRepository,
) -> None:
    pipe = Pipeline("chatty")
    pipe.add("print", stages.million_lines, mode="subprocess")
    result = pipe.run(inputs={"lines": 1_000_000}, state=state)
    assert result.ok, result.error
    run_id = result.run_id
    assert state.count_logs(run_id) == 1_000_001  # and "done" on stderr
    assert state.count_logs(run_id, stage="print") == 1_000_001
    first = [e for e in state.logs(run_id, limit=3) if e.stream == "stdout"]
    assert [e.message for e in first[:2]] == ["line 0", "line 1"]
    # Lines keep their order: seq grows with every line of the stream.
    tail = state.logs(run_id, stage="print", after=first[0].seq + 999_990, limit=20)
    stdout_tail = [e.message for e in tail if e.stream == "stdout"]
    assert stdout_tail[-1] == "line 999999"
    assert stdout_tail == [f"line {i}" for i in range(999_999 - len(stdout_tail) + 1, 1_000_000)]
    assert [e.seq for e in tail] == sorted(e.seq for e in tail)


def test_temp_folders_of_subprocess_stages_are_removed(
    state: SQLiteStateRepository, temp_root: Path
) -> None:
    pipe = Pipeline("sub-temp")
    pipe.add("write", stages.write_temp, mode="subprocess")
    result = pipe.run(state=state, temp_root=temp_root)
    assert result.ok
    assert not Path(result.outputs["write"]["temp"]).exists()
    assert list(temp_root.iterdir()) == []


def test_distributed_stages_run_on_the_executor_handed_in(
    state: SQLiteStateRepository,
) -> None:
    pipe = Pipeline("dist")
    pipe.add("seed", lambda context: {"x": 5})
    pipe.add("double", stages.double, depends_on=["seed"], mode="distributed")
    with ProcessPoolExecutor(max_workers=1) as executor:
        result = pipe.run(state=state, executor=executor)
    assert result.ok, result.error
    assert result.outputs["double"]["y"] == 10
    assert result.outputs["double"]["pid"] != os.getpid()


def test_a_distributed_timeout_is_recorded_timed_out(state: SQLiteStateRepository) -> None:
    pipe = Pipeline("dist-timeout")
    pipe.add("hang", stages.sleep_briefly, mode="distributed", timeout=0.2)
    with ProcessPoolExecutor(max_workers=1) as executor:
        result = pipe.run(state=state, executor=executor)
    assert result.stages["hang"].status == StageStatus.TIMED_OUT


@pytest.mark.parametrize("mode", ["subprocess", "distributed"])
def test_outputs_that_are_not_json_fail_in_every_mode(
    state: SQLiteStateRepository, mode: str
) -> None:
    pipe = Pipeline("not-json")
    pipe.add("bad", stages.returns_a_set, mode=mode)  # type: ignore[arg-type]
    with ProcessPoolExecutor(max_workers=1) as executor:
        result = pipe.run(state=state, executor=executor)
    assert result.stages["bad"].error_message == (
        "Stage 'bad': output 'tags': set is not JSON-serializable "
        "(Object of type set is not JSON serializable)"
    )


def test_the_subprocess_child_loads_no_stepkit_package_and_nothing_heavy(
    state: SQLiteStateRepository,
) -> None:
    from . import bare_stages

    pipe = Pipeline("lean")
    pipe.add("probe", bare_stages.loaded_modules, mode="subprocess")
    result = pipe.run(state=state)
    assert result.ok, result.error
    loaded = set(result.outputs["probe"]["modules"])
    # stepkit's three child modules arrive compiled; the packages are never imported.
    assert {"stepkit.pipeline.context", "stepkit.pipeline.invoke", "stepkit.child"} <= loaded
    assert not loaded & {"stepkit", "stepkit.pipeline", "typing", "json", "pickle", "pathlib", "re"}


@pytest.mark.parametrize("mode", ["direct", "subprocess"])
def test_a_stage_objects_finish_runs_in_the_runner_after_a_subprocess_child(
    state: SQLiteStateRepository, mode: str
) -> None:
    pipe = Pipeline("finish")
    pipe.add("seed", lambda context: {"x": 4})
    pipe.add("made", stages.MadeThenFinished(), depends_on=["seed"], mode=mode)  # type: ignore[arg-type]
    result = pipe.run(state=state)
    assert result.ok, result.error
    outputs = result.outputs["made"]
    assert outputs["y"] == 50
    assert outputs["finish_pid"] == os.getpid()  # stored by the runner, whatever the mode
    assert (outputs["execute_pid"] == os.getpid()) is (mode == "direct")


def test_a_subprocess_stage_ends_like_python_its_threads_and_atexit_handlers_run(
    state: SQLiteStateRepository, tmp_path: Path
) -> None:
    pipe = Pipeline("exit")
    pipe.add("leaves", stages.leaves_work_for_exit, mode="subprocess")
    result = pipe.run(state=state, inputs={"folder": str(tmp_path)})
    assert result.ok, result.error
    assert (tmp_path / "thread.txt").read_text() == "thread done"
    assert (tmp_path / "atexit.txt").read_text() == "thread file seen: True"
    assert [e.message for e in state.logs(result.run_id, stage="leaves")] == ["returning"]

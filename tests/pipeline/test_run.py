"""Running pipelines in direct mode: order, parallelism, retries, timeouts, failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from stepkit import Pipeline, RetryPolicy
from stepkit.errors import PipelineDefinitionError
from stepkit.pipeline import CacheHit, StageContext
from stepkit.state import RunStatus, SQLiteStateRepository, StageStatus


def _attempts(state: SQLiteStateRepository, run_id: str, stage: str) -> list[tuple[int, str]]:
    return [(r.attempt, str(r.status)) for r in state.stage_records(run_id) if r.stage == stage]


def test_a_diamond_passes_outputs_down_and_records_every_stage(
    state: SQLiteStateRepository,
) -> None:
    pipe = Pipeline("diamond")

    @pipe.stage()
    def load(context: StageContext) -> Mapping[str, Any]:
        return {"rows": list(range(context.inputs["n"]))}

    @pipe.stage(depends_on=["load"])
    def left(context: StageContext) -> Mapping[str, Any]:
        return {"total": sum(context["rows"])}

    @pipe.stage(depends_on=["load"])
    def right(context: StageContext) -> Mapping[str, Any]:
        return {"count": len(context.upstream["load"]["rows"])}

    @pipe.stage(depends_on=["left", "right"])
    def report(context: StageContext) -> Mapping[str, Any]:
        return {"mean": context["total"] / context["count"]}

    result = pipe.run(inputs={"n": 5}, state=state)
    assert result.status == RunStatus.COMPLETED
    assert result.outputs == {"report": {"mean": 2.0}}
    run = state.get_run(result.run_id)
    assert run.status == RunStatus.COMPLETED and run.outputs == {"report": {"mean": 2.0}}
    assert run.graph == {
        "load": (),
        "left": ("load",),
        "right": ("load",),
        "report": ("left", "right"),
    }
    records = {r.stage: r for r in state.stage_records(result.run_id)}
    assert {name: r.status for name, r in records.items()} == dict.fromkeys(
        ["load", "left", "right", "report"], StageStatus.COMPLETED
    )
    assert records["report"].inputs == {"left": {"total": 10}, "right": {"count": 5}}
    assert records["left"].started_at >= records["load"].finished_at  # type: ignore[operator]
    assert records["load"].cpu_time is not None and records["load"].duration is not None


def test_a_wide_dag_runs_up_to_max_workers_at_once(state: SQLiteStateRepository) -> None:
    pipe = Pipeline("wide")
    lock = threading.Lock()
    running = [0]
    peak = [0]
    three_running = threading.Barrier(3, timeout=10)

    def work(context: StageContext) -> Mapping[str, Any]:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        if context.stage in {"w0", "w1", "w2"}:
            three_running.wait()  # proves three really overlap
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return {"i": int(context.stage[1:])}

    pipe.add("start", lambda context: {"go": True})
    for i in range(40):
        pipe.add(f"w{i}", work, depends_on=["start"])
    pipe.add(
        "join",
        lambda context: {"n": len(context.upstream)},
        depends_on=[f"w{i}" for i in range(40)],
    )
    result = pipe.run(state=state, max_workers=3)
    assert result.ok
    assert peak[0] == 3
    assert result.outputs == {"join": {"n": 40}}


class Flaky:
    """Fails with ConnectionError until its third attempt."""

    def __init__(self, fail_times: int) -> None:
        self.fail_times = fail_times
        self.calls = 0

    def __call__(self, context: StageContext) -> Mapping[str, Any]:
        self.calls += 1
        if context.attempt <= self.fail_times:
            raise ConnectionError(f"flaky attempt {context.attempt}")
        return {"attempt": context.attempt}


def test_a_retry_succeeds_on_attempt_three_and_every_attempt_is_recorded(
    state: SQLiteStateRepository,
) -> None:
    pipe = Pipeline("retry")
    flaky = Flaky(fail_times=2)
    pipe.add("fetch", flaky, retry=RetryPolicy(max_attempts=3, backoff="fixed", delay=0.01))
    result = pipe.run(state=state)
    assert result.ok and flaky.calls == 3
    assert result.stages["fetch"].attempts == 3
    assert _attempts(state, result.run_id, "fetch") == [
        (1, "failed"),
        (2, "failed"),
        (3, "completed"),
    ]
    failed = state.stage_records(result.run_id)[0]
    assert failed.error_type == "ConnectionError" and failed.error_message == "flaky attempt 1"
    assert failed.traceback is not None and "ConnectionError: flaky attempt 1" in failed.traceback
    assert state.get_run(result.run_id).retries == 2


def test_retries_exhausted_fail_the_stage_and_skip_its_descendants(
    state: SQLiteStateRepository,
) -> None:
    pipe = Pipeline("exhausted")
    flaky = Flaky(fail_times=5)
    pipe.add("fetch", flaky, retry=RetryPolicy(max_attempts=3, delay=0.001, jitter=0.001))
    pipe.add("use", lambda context: None, depends_on=["fetch"])
    result = pipe.run(state=state)
    assert result.status == RunStatus.FAILED
    assert flaky.calls == 3
    assert _attempts(state, result.run_id, "fetch") == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert result.stages["use"].status == StageStatus.SKIPPED
    assert result.stages["use"].reason == "upstream stage 'fetch' failed"
    assert state.get_run(result.run_id).error == "stages failed: fetch"


def test_a_non_retryable_error_is_tried_once(state: SQLiteStateRepository) -> None:
    pipe = Pipeline("nonretry")
    calls = []

    def parse(context: StageContext) -> None:
        calls.append(context.attempt)
        raise ValueError("malformed row 7")

    pipe.add("parse", parse, retry=RetryPolicy(max_attempts=5, delay=0, retry_on=(OSError,)))
    result = pipe.run(state=state)
    assert calls == [1]
    assert result.stages["parse"].status == StageStatus.FAILED
    assert result.stages["parse"].error_message == "malformed row 7"


def test_exponential_backoff_is_capped_and_uses_tenacity_waits() -> None:
    policy = RetryPolicy(max_attempts=10, delay=1.0, max_delay=5.0)
    waits = [policy.next_delay(n, OSError("x")) for n in range(1, 10)]
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]
    assert policy.next_delay(10, OSError("x")) is None
    jittered = RetryPolicy(max_attempts=3, backoff="fixed", delay=1.0, jitter=0.5)
    delay = jittered.next_delay(1, OSError("x"))
    assert delay is not None and 1.0 <= delay <= 1.5
    with pytest.raises(PipelineDefinitionError, match="max_attempts must be at least 1"):
        RetryPolicy(max_attempts=0)


def test_a_direct_timeout_abandons_the_thread_and_records_timed_out(
    state: SQLiteStateRepository,
) -> None:
    pipe = Pipeline("slow")
    release = threading.Event()

    def hang(context: StageContext) -> None:
        release.wait(30)

    pipe.add("hang", hang, timeout=0.2)
    pipe.add("after", lambda context: None, depends_on=["hang"])
    pipe.add("other", lambda context: {"ok": True})
    try:
        result = pipe.run(state=state)
    finally:
        release.set()
    assert result.stages["hang"].status == StageStatus.TIMED_OUT
    assert (
        result.stages["hang"].error_message
        == "Stage 'hang' timed out after 0.2 s (thread abandoned)."
    )
    assert result.stages["after"].status == StageStatus.SKIPPED
    assert result.stages["after"].reason == "upstream stage 'hang' timed_out"
    assert result.stages["other"].status == StageStatus.COMPLETED


def test_a_failed_branch_does_not_stop_a_healthy_one(state: SQLiteStateRepository) -> None:
    pipe = Pipeline("branches")
    pipe.add("root", lambda context: {"v": 1})
    pipe.add("bad", lambda context: 1 / 0, depends_on=["root"])
    pipe.add("bad_child", lambda context: None, depends_on=["bad"])
    pipe.add("bad_grandchild", lambda context: None, depends_on=["bad_child"])
    pipe.add("good", lambda context: {"v": context["v"] + 1}, depends_on=["root"])
    pipe.add("good_child", lambda context: {"v": context["v"] + 1}, depends_on=["good"])
    result = pipe.run(state=state)
    assert result.status == RunStatus.FAILED
    assert result.stages["bad"].error_type == "ZeroDivisionError"
    assert result.stages["bad_child"].reason == "upstream stage 'bad' failed"
    assert result.stages["bad_grandchild"].reason == "upstream stage 'bad_child' skipped"
    assert result.stages["good_child"].status == StageStatus.COMPLETED
    assert result.stages["good_child"].outputs == {"v": 3}


def test_fail_fast_stops_the_run_at_the_first_failure(state: SQLiteStateRepository) -> None:
    pipe = Pipeline("fast")
    started = []
    pipe.add("bad", lambda context: 1 / 0)
    for i in range(5):
        pipe.add(
            f"later{i}",
            lambda context: started.append(context.stage),
            depends_on=["bad"] if i else [],
        )
    pipe.add("chain", lambda context: started.append("chain"), depends_on=["later0"])
    result = pipe.run(state=state, fail_fast=True, max_workers=1)
    assert result.status == RunStatus.FAILED
    assert result.stages["bad"].status == StageStatus.FAILED
    # With one worker "bad" runs first; nothing starts after it fails.
    assert started == []
    assert result.stages["later0"].reason == "fail_fast: stage 'bad' failed"


def test_outputs_that_are_not_json_name_the_stage_and_key(state: SQLiteStateRepository) -> None:
    pipe = Pipeline("bad-outputs")
    pipe.add("make", lambda context: {"ok": 1, "when": {1, 2}}, retry=RetryPolicy(max_attempts=3))
    pipe.add("listy", lambda context: [1, 2])
    result = pipe.run(state=state)
    assert result.stages["make"].error_message == (
        "Stage 'make': output 'when': set is not JSON-serializable "
        "(Object of type set is not JSON serializable)"
    )
    assert result.stages["make"].attempts == 1  # a wrong stage is never retried
    assert result.stages["listy"].error_message == (
        "Stage 'listy': must return a mapping of outputs (or None), not list"
    )
    with pytest.raises(PipelineDefinitionError, match="input 'path': PosixPath is not JSON"):
        pipe.run(inputs={"path": Path("/x")}, state=state)


def test_the_context_is_read_only(state: SQLiteStateRepository) -> None:
    pipe = Pipeline("ro")
    pipe.add("a", lambda context: {"x": 1})

    def mutate(context: StageContext) -> None:
        context.upstream["a"]["x"] = 2  # type: ignore[index]

    pipe.add("b", mutate, depends_on=["a"])
    result = pipe.run(state=state)
    assert result.stages["b"].error_type == "TypeError"
    with pytest.raises(KeyError, match=r"no input or upstream output 'rowz'\. Did you mean 'rows'"):
        StageContext(
            run_id="r",
            stage="s",
            attempt=1,
            inputs={},
            upstream={"a": {"rows": 1}},
            temp_path="/t",
            scratch_path="/s",
        )["rowz"]


class Trainer:
    """A stage object: validate, execute, cleanup."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def validate(self, context: StageContext) -> bool:
        self.events.append("validate")
        return bool(context.inputs.get("ok"))

    def execute(self, context: StageContext) -> Mapping[str, Any]:
        self.events.append("execute")
        return {"model": "m"}

    def cleanup(self, context: StageContext) -> None:
        self.events.append("cleanup")


def test_stage_objects_validate_execute_and_clean_up(state: SQLiteStateRepository) -> None:
    trainer = Trainer()
    pipe = Pipeline("objects")
    pipe.add("train", trainer)
    assert pipe.run(inputs={"ok": True}, state=state).outputs == {"train": {"model": "m"}}
    assert trainer.events == ["validate", "execute", "cleanup"]
    refused = pipe.run(inputs={"ok": False}, state=state)
    assert refused.stages["train"].error_message == (
        "Stage 'train' failed validation: validate(context) returned False"
    )


def test_a_cache_hit_is_recorded_as_cached_and_counts_as_done(
    state: SQLiteStateRepository,
) -> None:
    pipe = Pipeline("cache")
    pipe.add("lookup", lambda context: CacheHit({"path": "cas/ab/cd"}))
    pipe.add("use", lambda context: {"got": context["path"]}, depends_on=["lookup"])
    result = pipe.run(state=state)
    assert result.ok
    assert result.stages["lookup"].status == StageStatus.CACHED
    assert result.outputs == {"use": {"got": "cas/ab/cd"}}


def test_temp_folders_are_removed_after_success_and_failure(
    state: SQLiteStateRepository, temp_root: Path
) -> None:
    seen: list[Path] = []

    def writes(context: StageContext) -> None:
        (context.temp_dir() / "t").write_text("x")
        (context.scratch_dir() / "s").write_text("y")
        seen.extend([context.temp_dir(), context.scratch_dir()])
        if context.inputs.get("fail"):
            raise RuntimeError("boom")

    pipe = Pipeline("temp")
    pipe.add("w", writes)
    assert pipe.run(state=state, temp_root=temp_root).ok
    assert (
        pipe.run(inputs={"fail": True}, state=state, temp_root=temp_root).status == RunStatus.FAILED
    )
    assert len(seen) == 4 and not any(p.exists() for p in seen)
    assert list(temp_root.iterdir()) == []
    kept = pipe.run(state=state, temp_root=temp_root, keep_temp=True)
    assert (temp_root / f"stepkit-{kept.run_id}" / "temp" / "w" / "t").read_text() == "x"


def test_cancellation_records_cancelled_and_leaves_no_temp_folders(
    state: SQLiteStateRepository, temp_root: Path
) -> None:
    cancel = threading.Event()
    release = threading.Event()

    def slow(context: StageContext) -> None:
        (context.temp_dir() / "partial").write_text("x")
        cancel.set()
        release.wait(10)

    pipe = Pipeline("cancel")
    pipe.add("slow", slow)
    pipe.add("next", lambda context: None, depends_on=["slow"])
    pipe.add("slow2", slow)
    try:
        result = pipe.run(state=state, temp_root=temp_root, cancel_event=cancel)
    finally:
        release.set()
    assert result.status == RunStatus.CANCELLED
    assert result.stages["slow"].status == StageStatus.CANCELLED
    assert result.stages["next"].status == StageStatus.SKIPPED
    assert state.get_run(result.run_id).status == RunStatus.CANCELLED
    assert list(temp_root.iterdir()) == []

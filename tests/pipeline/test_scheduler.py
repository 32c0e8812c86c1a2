"""The scheduler on its own: what starts, what is skipped and why, when retries are due."""

from __future__ import annotations

from stepkit.pipeline.dag import DAG
from stepkit.pipeline.scheduler import Scheduler, Start
from stepkit.pipeline.stage import Stage
from stepkit.state import StageRecord, StageStatus


def _noop(context: object) -> None:
    return None


def _scheduler(
    graph: dict[str, tuple[str, ...]],
    *,
    kept: dict[str, StageRecord] | None = None,
    last_attempt: dict[str, int] | None = None,
) -> Scheduler:
    stages = {name: Stage(name=name, target=_noop, depends_on=deps) for name, deps in graph.items()}
    return Scheduler(
        DAG.from_dependencies("p", graph),
        stages,
        run_id="r",
        kept=kept or {},
        last_attempt=last_attempt or {},
    )


def _record(stage: str, status: StageStatus, attempt: int = 1) -> StageRecord:
    return StageRecord(run_id="r", stage=stage, attempt=attempt, status=status, outputs={"x": 1})


DIAMOND = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")}


def test_stages_start_when_their_dependencies_are_final_and_slots_are_free() -> None:
    scheduler = _scheduler(DIAMOND)
    assert scheduler.next_starts(now=0, free=4) == ([Start("a", 1)], [])
    assert scheduler.next_starts(now=0, free=4) == ([], [])  # a is still running
    scheduler.finish(_record("a", StageStatus.COMPLETED))
    assert scheduler.next_starts(now=0, free=1) == ([Start("b", 1)], [])
    assert scheduler.next_starts(now=0, free=1) == ([Start("c", 1)], [])
    scheduler.finish(_record("b", StageStatus.COMPLETED))
    scheduler.finish(_record("c", StageStatus.CACHED))
    assert scheduler.next_starts(now=0, free=1) == ([Start("d", 1)], [])
    scheduler.finish(_record("d", StageStatus.COMPLETED))
    assert scheduler.idle and scheduler.outputs == {n: {"x": 1} for n in DIAMOND}


def test_a_failure_skips_every_descendant_with_the_reason() -> None:
    scheduler = _scheduler(DIAMOND)
    scheduler.next_starts(now=0, free=4)
    scheduler.finish(_record("a", StageStatus.FAILED))
    starts, skipped = scheduler.next_starts(now=5, free=4)
    assert starts == [] and scheduler.idle
    assert [(r.stage, r.status, r.reason, r.finished_at) for r in skipped] == [
        ("b", StageStatus.SKIPPED, "upstream stage 'a' failed", 5),
        ("c", StageStatus.SKIPPED, "upstream stage 'a' failed", 5),
        ("d", StageStatus.SKIPPED, "upstream stage 'b' skipped", 5),
    ]
    assert scheduler.first_failure == "a"


def test_kept_stages_count_as_done_and_attempts_continue_after_a_resume() -> None:
    kept = {"a": _record("a", StageStatus.COMPLETED)}
    scheduler = _scheduler(DIAMOND, kept=kept, last_attempt={"a": 1, "b": 2})
    starts, skipped = scheduler.next_starts(now=0, free=4)
    assert starts == [Start("b", 3), Start("c", 1)] and skipped == []
    assert scheduler.finals["a"] is kept["a"]


def test_a_retry_starts_when_it_is_due_and_before_new_stages() -> None:
    scheduler = _scheduler({"a": (), "b": ()})
    assert scheduler.next_starts(now=0, free=1) == ([Start("a", 1)], [])
    scheduler.retry_later(_record("a", StageStatus.FAILED), due=10)
    assert scheduler.next_retry_at() == 10 and not scheduler.idle
    assert scheduler.next_starts(now=9, free=1) == ([Start("b", 1)], [])
    scheduler.finish(_record("b", StageStatus.COMPLETED))
    assert scheduler.next_starts(now=9, free=1) == ([], [])
    assert scheduler.next_starts(now=10, free=1) == ([Start("a", 2)], [])


def test_stopping_ends_waiting_retries_with_their_failure_and_skips_the_rest() -> None:
    scheduler = _scheduler({"a": (), "b": ("a",), "c": ()})
    scheduler.next_starts(now=0, free=1)
    failed = _record("a", StageStatus.FAILED)
    scheduler.retry_later(failed, due=10)
    scheduler.stop("run cancelled")
    assert scheduler.finals["a"] == failed and scheduler.next_retry_at() is None
    starts, skipped = scheduler.next_starts(now=1, free=4)
    assert starts == []
    assert {r.stage: r.reason for r in skipped} == {
        "b": "upstream stage 'a' failed",
        "c": "run cancelled",
    }

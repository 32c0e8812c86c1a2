"""Progress reaches the caller through the run's own callback, after each commit."""

from __future__ import annotations

import threading
from pathlib import Path

from stepkit import Pipeline
from stepkit.pipeline import RunProgress, StageContext
from stepkit.state import RunStatus, SQLiteStateRepository, StageStatus


def _pipeline(barrier: threading.Barrier) -> Pipeline:
    pipe = Pipeline("same")

    @pipe.stage()
    def load(context: StageContext) -> dict[str, int]:
        barrier.wait(timeout=30)  # both runs are surely running at the same time
        return {"rows": 3}

    @pipe.stage(depends_on=["load"])
    def train(context: StageContext) -> dict[str, int]:
        return {"model": context["rows"] * 2}

    return pipe


def test_two_runs_of_one_pipeline_at_once_each_see_only_their_own_progress(
    tmp_path: Path,
) -> None:
    barrier = threading.Barrier(2)
    events: dict[int, list[RunProgress]] = {0: [], 1: []}
    results = {}

    def run(index: int) -> None:
        state = SQLiteStateRepository(tmp_path / "state.db")
        try:
            results[index] = _pipeline(barrier).run(state=state, progress=events[index].append)
        finally:
            state.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results[0].run_id != results[1].run_id
    state = SQLiteStateRepository(tmp_path / "state.db")
    try:
        for index in (0, 1):
            run_id = results[index].run_id
            seen = events[index]
            assert {event.run_id for event in seen} == {run_id}
            assert seen[0].records == () and seen[0].stages == ("load", "train")
            assert seen[-1].status == RunStatus.COMPLETED
            assert all(event.status == RunStatus.RUNNING for event in seen[:-1])
            # Each stage reported running, then completed; the last word is what is stored.
            reported = [r for event in seen for r in event.records]
            assert [(r.stage, r.status) for r in reported] == [
                ("load", StageStatus.RUNNING),
                ("load", StageStatus.COMPLETED),
                ("train", StageStatus.RUNNING),
                ("train", StageStatus.COMPLETED),
            ]
            last = {(r.stage, r.attempt): r for r in reported}
            assert list(last.values()) == state.stage_records(run_id)
    finally:
        state.close()


def test_a_failure_and_its_skipped_dependents_are_reported_before_the_run_ends() -> None:
    pipe = Pipeline("p")

    @pipe.stage()
    def broken(context: StageContext) -> None:
        raise ValueError("no")

    @pipe.stage(depends_on=["broken"])
    def after(context: StageContext) -> None:
        return None

    seen: list[RunProgress] = []
    result = pipe.run(state="memory://", progress=seen.append)
    final = {r.stage: r.status for event in seen for r in event.records}
    assert final == {"broken": StageStatus.FAILED, "after": StageStatus.SKIPPED}
    assert seen[-1].status == RunStatus.FAILED == result.status

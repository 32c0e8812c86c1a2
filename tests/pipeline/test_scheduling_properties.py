"""Property: on any DAG with any set of failing stages, every stage ends final, a stage
completes exactly when it and all its ancestors succeed, and none starts before its
dependencies have finished."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from stepkit import Pipeline
from stepkit.pipeline import StageContext
from stepkit.pipeline.dag import DAG
from stepkit.state import MemoryStateRepository, StageStatus


@st.composite
def dags(draw: st.DrawFn) -> tuple[dict[str, tuple[str, ...]], set[str], int]:
    size = draw(st.integers(1, 14))
    graph: dict[str, tuple[str, ...]] = {}
    for i in range(size):
        parents = draw(st.sets(st.integers(0, max(0, i - 1)), max_size=3)) if i else set()
        graph[f"s{i}"] = tuple(f"s{p}" for p in sorted(parents) if p < i)
    failing = draw(st.sets(st.sampled_from(sorted(graph)), max_size=3))
    workers = draw(st.integers(1, 4))
    return graph, failing, workers


@settings(max_examples=40, deadline=None)
@given(dags())
def test_any_dag_runs_to_a_consistent_end(
    case: tuple[dict[str, tuple[str, ...]], set[str], int],
) -> None:
    graph, failing, workers = case
    lock = threading.Lock()
    order: list[str] = []

    def stage(context: StageContext) -> dict[str, str]:
        with lock:
            order.append(context.stage)
        if context.stage in failing:
            raise RuntimeError("planned failure")
        return {"by": context.stage}

    pipe = Pipeline("prop")
    for name, deps in graph.items():
        pipe.add(name, stage, depends_on=deps)
    state = MemoryStateRepository()
    result = pipe.run(state=state, max_workers=workers)

    skipped = DAG.from_dependencies("prop", graph).descendants(
        *failing
    )  # a failing stage below another never runs
    for name in graph:
        status = result.stages[name].status
        if name in skipped:
            assert status == StageStatus.SKIPPED
        elif name in failing:
            assert status == StageStatus.FAILED
        else:
            assert status == StageStatus.COMPLETED
            assert result.stages[name].outputs == {"by": name}
    assert result.ok == (not failing)
    # Ran: exactly the stages not skipped, each once, after all its dependencies.
    assert sorted(order) == sorted(n for n in graph if n not in skipped)
    records = {r.stage: r for r in state.stage_records(result.run_id)}
    for name in order:
        for dep in graph[name]:
            assert records[dep].finished_at is not None
            assert records[dep].finished_at <= records[name].started_at  # type: ignore[operator]

"""Each attempt's last log lines, read by the store's tail query, are exactly the last lines
it wrote — whatever other stages and attempts wrote in between — on every backend."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepkit.state import LogBatch, SQLiteStateRepository, StateRepository
from stepkit.state.memory import MemoryStateRepository

History = list[tuple[str, int, str, int]]


@st.composite
def histories(draw: st.DrawFn) -> History:
    """Batches (stage, attempt, stream, lines): a stage's attempts follow one another."""
    attempts = {"a": draw(st.integers(1, 3)), "b": draw(st.integers(1, 2)), "c": 1}
    plan: list[tuple[str, int]] = []
    for stage, count in attempts.items():
        for attempt in range(1, count + 1):
            plan += [(stage, attempt)] * draw(st.integers(0, 4))
    # Interleave stages freely, keeping each stage's attempts in order.
    order = draw(st.permutations(range(len(plan))))
    by_stage: dict[str, list[tuple[str, int]]] = {}
    for stage, attempt in plan:
        by_stage.setdefault(stage, []).append((stage, attempt))
    queues = {k: sorted(v, key=lambda x: x[1]) for k, v in by_stage.items()}
    keys = [plan[i][0] for i in order]
    return [
        (stage, attempt, draw(st.sampled_from(["stdout", "stderr"])), draw(st.integers(0, 30)))
        for stage, attempt in (queues[k].pop(0) for k in keys)
    ]


def _write(state: StateRepository, run_id: str, history: History) -> None:
    for n, (stage, attempt, stream, lines) in enumerate(history):
        if lines:
            text = [f"{stage}{attempt}-{n}-{i}" for i in range(lines)]
            state.commit(logs=[LogBatch(run_id, stage, attempt, stream, float(n), text)])


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateRepository]:
    state: StateRepository
    if request.param == "memory":
        state = MemoryStateRepository()
    elif request.param == "postgres":
        from stepkit.state.postgres import PostgresStateRepository

        state = PostgresStateRepository(request.getfixturevalue("postgres_url"))
    else:
        state = SQLiteStateRepository(tmp_path / "state.db")
    try:
        yield state
    finally:
        state.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=histories(), size=st.integers(1, 12))
def test_tails_are_the_last_lines_of_each_attempt(
    backend: StateRepository, history: History, size: int
) -> None:
    run_id = f"r{os.urandom(4).hex()}"  # one store across examples: a run each
    _write(backend, run_id, history)
    _write(backend, f"{run_id}-other", history)  # another run's lines are never read
    everything = backend.logs(run_id)
    found = backend.log_tails(run_id, size=size)
    attempts = {(s, a) for s, a, _, lines in history if lines}
    assert set(found) == attempts
    for stage, attempt in attempts:
        written = [e for e in everything if (e.stage, e.attempt) == (stage, attempt)]
        tail = found[(stage, attempt)]
        assert list(tail.events) == written[-size:]
        assert tail.lines == len(written)

"""Each attempt's last log lines, found by bisection for a big stage, are exactly the last
lines it wrote — whatever other stages and attempts wrote in between."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stepkit.pipeline.report import logtail
from stepkit.state import LogBatch
from stepkit.state.memory import MemoryStateRepository


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, int, str, int]]:
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


def _write(history: list[tuple[str, int, str, int]]) -> MemoryStateRepository:
    state = MemoryStateRepository()
    for n, (stage, attempt, stream, lines) in enumerate(history):
        if lines:
            state.commit(
                logs=[
                    LogBatch(
                        "r",
                        stage,
                        attempt,
                        stream,
                        float(n),
                        [f"{stage}{attempt}-{n}-{i}" for i in range(lines)],
                    )
                ]
            )
    return state


@pytest.mark.parametrize("read_whole", [0, 2000])  # bisection, and one read per stage
@settings(max_examples=40, deadline=None)
@given(history=histories(), size=st.integers(1, 12))
def test_tails_are_the_last_lines_of_each_attempt(
    history: list[tuple[str, int, str, int]], size: int, read_whole: int
) -> None:
    state = _write(history)
    attempts = {(s, a) for s, a, _, _ in history}
    stages = {s: sorted(a for t, a in attempts if t == s) for s, _ in attempts}
    everything = state.logs("r")
    original = logtail.READ_WHOLE
    logtail.READ_WHOLE = read_whole
    try:
        found = logtail.attempt_tails(state, "r", stages.items(), size=size)
    finally:
        logtail.READ_WHOLE = original
    for stage, attempt in attempts:
        written = [e for e in everything if (e.stage, e.attempt) == (stage, attempt)]
        if not written:
            assert (stage, attempt) not in found
            continue
        tail = found[(stage, attempt)]
        assert list(tail.events) == written[-size:]
        if read_whole or len(stages[stage]) == 1:
            assert tail.lines == len(written)

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepkit import Pipeline
from stepkit.errors import PipelineCycleError, PipelineDefinitionError, UnknownStageError
from stepkit.pipeline.context import StageContext
from stepkit.pipeline.dag import DAG
from stepkit.state.records import StageStatus


def _noop(context: StageContext) -> None:
    return None


def test_a_cycle_is_an_error_naming_the_cycle() -> None:
    pipe = Pipeline("loop")
    pipe.add("load", _noop, depends_on=["train"])
    pipe.add("prep", _noop, depends_on=["load"])
    pipe.add("train", _noop, depends_on=["prep"])
    with pytest.raises(PipelineCycleError) as caught:
        pipe.run(state="memory://")
    message = str(caught.value)
    assert message.startswith("Pipeline 'loop' has a cycle: ")
    cycle = caught.value.cycle
    assert cycle[0] == cycle[-1] and set(cycle) == {"load", "prep", "train"}
    # Read in execution order: each stage runs before the next.
    for before, after in itertools.pairwise(cycle):
        assert before in pipe.stages[after].depends_on


def test_an_unknown_dependency_suggests_close_names() -> None:
    pipe = Pipeline("p")
    pipe.add("preprocess", _noop)
    pipe.add("train", _noop, depends_on=["preprocss"])
    with pytest.raises(UnknownStageError) as caught:
        pipe.validate()
    assert str(caught.value) == (
        "Stage 'train' depends on an unknown stage 'preprocss'. Did you mean 'preprocess'?"
    )


def test_a_duplicate_stage_name_is_refused() -> None:
    pipe = Pipeline("p")
    pipe.add("a", _noop)
    with pytest.raises(PipelineDefinitionError, match="already has a stage named 'a'"):
        pipe.add("a", _noop)


def test_bad_stage_options_are_clear_errors() -> None:
    pipe = Pipeline("p")
    with pytest.raises(PipelineDefinitionError, match="mode must be one of"):
        pipe.add("a", _noop, mode="threads")  # type: ignore[arg-type]
    with pytest.raises(PipelineDefinitionError, match="timeout must be positive"):
        pipe.add("b", _noop, timeout=0)
    with pytest.raises(PipelineDefinitionError, match="expected a function or an object"):
        pipe.add("c", 42)


def test_a_subprocess_stage_must_be_importable_by_the_child() -> None:
    pipe = Pipeline("p")
    pipe.add("closure", lambda context: None, mode="subprocess")
    with pytest.raises(PipelineDefinitionError, match="must be importable by another process"):
        pipe.run(state="memory://")


def training(name: str) -> Pipeline:
    """A factory: a reusable two-stage pipeline."""
    pipe = Pipeline(name)

    @pipe.stage()
    def fit(context: StageContext) -> dict[str, object]:
        return {"model": f"{context['data']}-model"}

    @pipe.stage(depends_on=["fit"])
    def score(context: StageContext) -> dict[str, object]:
        return {"score": f"{context.upstream['fit']['model']}-scored"}

    return pipe


def test_included_pipelines_run_under_their_prefix_and_see_local_names() -> None:
    pipe = Pipeline("all")

    @pipe.stage()
    def load(context: StageContext) -> dict[str, object]:
        return {"data": "rows"}

    pipe.include(training("train"), prefix="small", after=["load"])
    pipe.include(training("train"), prefix="big", after=["load"])
    assert set(pipe.stages) == {"load", "small.fit", "small.score", "big.fit", "big.score"}
    assert pipe.stages["small.score"].depends_on == ("small.fit",)
    result = pipe.run(state="memory://")
    assert result.ok
    assert result.outputs == {
        "small.score": {"score": "rows-model-scored"},
        "big.score": {"score": "rows-model-scored"},
    }
    assert result.stages["big.fit"].status == StageStatus.COMPLETED


@given(st.lists(st.lists(st.integers(0, 11), max_size=4), min_size=1, max_size=12))
def test_validated_order_puts_dependencies_first(deps: list[list[int]]) -> None:
    # Edges only point to lower indexes, so the graph is acyclic by construction.
    graph = {f"s{i}": tuple(f"s{d}" for d in ds if d < i) for i, ds in enumerate(deps)}
    dag = DAG.from_dependencies("p", graph)
    order = dag.topological_order()
    position = {name: index for index, name in enumerate(order)}
    for name, parents in graph.items():
        assert all(position[p] < position[name] for p in parents)
        for child in dag.descendants(name):
            assert position[child] > position[name]

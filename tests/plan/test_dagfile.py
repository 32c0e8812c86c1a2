from __future__ import annotations

from pathlib import Path

import pytest

from stepkit.errors import DagError, DagFileError, PipelineCycleError, UnknownStepError
from stepkit.pipeline.dag import DAG, Location
from stepkit.plan.dagfile import PipelineDAG, load_dag

GOOD = """\
name: churn
nodes:
  - DataLoading_training
  - TabularPreprocessing_training
  - Training
edges:
  - [DataLoading_training, TabularPreprocessing_training]
  - TabularPreprocessing_training -> Training
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dag.yaml"
    path.write_text(text)
    return path


def test_file_loads_in_order_with_lines(tmp_path: Path) -> None:
    dag = load_dag(write(tmp_path, GOOD))
    assert dag.name == "churn"
    assert dag.nodes == ["DataLoading_training", "TabularPreprocessing_training", "Training"]
    assert dag.topological_order() == dag.nodes
    assert dag.predecessors("Training") == ["TabularPreprocessing_training"]
    assert dag.descendants("DataLoading_training") == {"TabularPreprocessing_training", "Training"}
    assert dag.line_of("Training") == 5
    assert dag.line_of("TabularPreprocessing_training -> Training") == 8


def test_mapping_edges_and_python_api_agree(tmp_path: Path) -> None:
    text = GOOD.replace(
        "  - TabularPreprocessing_training -> Training",
        "  - {from: TabularPreprocessing_training, to: Training}",
    )
    from_file = load_dag(write(tmp_path, text))
    built = (
        PipelineDAG("churn")
        .add_node("DataLoading_training")
        .add_node("TabularPreprocessing_training")
        .add_node("Training")
        .add_edge("DataLoading_training", "TabularPreprocessing_training")
        .add_edge("TabularPreprocessing_training", "Training")
    )
    assert from_file.to_dict() == built.to_dict()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD.replace("- Training\n", "- Training\n  - Training\n", 1),
            r"dag.yaml:6: node 'Training' is listed twice",
        ),
        (GOOD + "  - Training -> DataLoading_training\n", r"cycle: .*DataLoading_training"),
        (
            GOOD + "  - Trainin -> DataLoading_training\n",
            r"dag.yaml:9: edge names 'Trainin', which is not in 'nodes'\. Did you mean 'Training'",
        ),
        (GOOD + "  - [a, b, c]\n", r"dag.yaml:9: an edge is"),
        (GOOD + "nodez: []\n", r"dag.yaml:9: unknown key 'nodez'\. Did you mean 'nodes'"),
        ("nodes: [a\n", r"dag.yaml:2: is not valid YAML"),
        ("- a\n", r"must be a mapping"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DagError, match=message):
        load_dag(write(tmp_path, text))


def test_api_errors() -> None:
    dag = PipelineDAG().add_node("A")
    with pytest.raises(UnknownStepError, match="No node named 'B'"):
        dag.add_edge("A", "B")
    with pytest.raises(DagError, match="points at itself"):
        dag.add_edge("A", "A")
    cyclic = PipelineDAG.from_edges([("A", "B"), ("B", "C"), ("C", "A")])
    with pytest.raises(DagError, match="cycle"):
        cyclic.topological_order()
    assert isinstance(DagFileError(Path("x"), "m"), DagError)


def test_a_dag_file_loads_into_the_pipeline_dag_with_locations(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    dag = load_dag(path)
    assert type(dag) is DAG and PipelineDAG is DAG  # one model for files and pipelines
    assert dag.location("DataLoading_training") == Location(path, 3)
    assert str(dag.location("DataLoading_training -> TabularPreprocessing_training")) == (
        f"{path}:7"
    )
    assert dag.dependencies() == {
        "DataLoading_training": (),
        "TabularPreprocessing_training": ("DataLoading_training",),
        "Training": ("TabularPreprocessing_training",),
    }
    assert dag.sinks() == ["Training"]
    assert dag.depths() == {
        "DataLoading_training": 0,
        "TabularPreprocessing_training": 1,
        "Training": 2,
    }


def test_a_cycle_in_a_file_is_the_one_cycle_error_with_its_first_edge_line(
    tmp_path: Path,
) -> None:
    text = GOOD + "  - Training -> DataLoading_training\n"
    with pytest.raises(PipelineCycleError) as caught:
        load_dag(write(tmp_path, text))
    error = caught.value
    assert isinstance(error, DagFileError) and error.path == tmp_path / "dag.yaml"
    assert error.cycle[0] == error.cycle[-1] and len(error.cycle) == 4
    first_edge = f"{error.cycle[0]} -> {error.cycle[1]}"
    line = {
        "DataLoading_training -> TabularPreprocessing_training": 7,
        "TabularPreprocessing_training -> Training": 8,
        "Training -> DataLoading_training": 9,
    }[first_edge]
    assert error.line == line
    assert str(error).startswith(f"{tmp_path / 'dag.yaml'}:{line}: the DAG has a cycle: ")


GOOD_JSON = """\
{"dag": {"nodes": ["DataLoading_training", "TabularPreprocessing_training", "Training"],
         "edges": [["DataLoading_training", "TabularPreprocessing_training"],
                   ["TabularPreprocessing_training", "Training"]]},
 "metadata": {"name": "xgboost_simple", "description": "a simple one", "framework": "xgboost"}}
"""


def write_json(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "simple.dag.json"
    path.write_text(text)
    return path


def test_a_json_dag_loads_like_its_yaml_twin_with_metadata_and_lines(tmp_path: Path) -> None:
    dag = load_dag(write_json(tmp_path, GOOD_JSON))
    assert dag.name == "xgboost_simple"
    assert dag.metadata == {
        "name": "xgboost_simple",
        "description": "a simple one",
        "framework": "xgboost",
    }
    yaml_twin = load_dag(write(tmp_path, GOOD))
    assert (dag.nodes, dag.edges) == (yaml_twin.nodes, yaml_twin.edges)
    assert dag.line_of("TabularPreprocessing_training -> Training") == 3
    assert load_dag(write(tmp_path, GOOD + "description: churn\n")).metadata == {
        "description": "churn"
    }


def test_a_json_dag_without_a_name_is_named_for_its_file(tmp_path: Path) -> None:
    text = '{"dag": {"nodes": ["A"], "edges": []}}'
    dag = load_dag(write_json(tmp_path, text))
    assert (dag.name, dag.metadata) == ("simple.dag", {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"dag": {"nodes": ["A", "B"],\n "edges": [["A"]]}}',
            r"dag.json:2: dag.edges\[0\]: an edge is",
        ),
        (
            '{"dag": {"nodes": ["A",\n "A"]}}',
            r"dag.json:2: dag.nodes\[1\]: node 'A' is listed twice",
        ),
        (
            '{"dag": {"nodes": ["Alpha"], "edges": [["Alpha", "Alpah"]]}}',
            r"dag.edges\[0\]: edge names 'Alpah', which is not in 'nodes'\. Did you mean 'Alpha'",
        ),
        ('{"dag": {"nodes": ["A"]},\n "metadata": []}', r"dag.json:2: metadata: 'metadata' must"),
        ('{"dag": {"nodez": []}}', r"dag.nodez: unknown key 'nodez'\. Did you mean 'nodes'"),
        ('{"dgs": {}}', r"must be an object with a 'dag' object"),
        ('{"dag": {"nodes": ["A"]}, "metdata": {}}', r"unknown key 'metdata'\. Did you mean"),
        ('{"dag": {"nodes": ["A"]\n', r"dag.json:2: is not valid JSON: Expecting"),
        ('{"dag": {"nodes": ["A", "B"], "edges": [["A", "B"], ["B", "A"]]}}', r"cycle"),
    ],
)
def test_bad_json_dags_name_the_file_line_and_place(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(DagError, match=message):
        load_dag(write_json(tmp_path, text))


def test_a_json_dag_the_yaml_composer_cannot_place_still_names_the_place(tmp_path: Path) -> None:
    text = '{\n\t"dag": {"nodes": ["A", "B"], "edges": [["A", "C"]]}}'  # a tab before a token
    with pytest.raises(DagFileError, match=r"simple.dag.json: dag.edges\[0\]: edge names 'C'"):
        load_dag(write_json(tmp_path, text))

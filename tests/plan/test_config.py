from __future__ import annotations

from pathlib import Path

import pytest

from stepkit.components import ScriptContract
from stepkit.errors import DagFileError, PlanError
from stepkit.plan.config import (
    PipelineConfig,
    check_config_nodes,
    import_class,
    load_pipeline_config,
    node_config,
    script_environment,
)


def test_example_config_loads(example_project: Path) -> None:
    config = load_pipeline_config(example_project / "pipelines/churn-config.yaml")
    assert config.shared == {"label_field": "churned"}
    assert config.nodes["DataLoading_training"] == {"n_rows": 6000}


def test_json_config_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "c.json"
    good.write_text('{"shared": {"a": 1}, "nodes": {"N": null}}')
    assert load_pipeline_config(good).nodes == {"N": {}}
    bad = tmp_path / "bad.json"
    bad.write_text('{"shared": {"a": 1},\n "nodes": [}')
    with pytest.raises(DagFileError, match=r"bad.json:2: is not valid JSON"):
        load_pipeline_config(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("shard: {}\n")
    with pytest.raises(DagFileError, match=r"unknown key 'shard'. Did you mean 'shared'"):
        load_pipeline_config(typo)
    with pytest.raises(
        PlanError,
        match=r"DataLoading_trainin: .* not a node of the DAG. Did you mean 'DataLoading_training'",
    ):
        check_config_nodes(
            PipelineConfig(nodes={"DataLoading_trainin": {}}), ["DataLoading_training"]
        )


def test_node_config_validates_with_the_step_class(example_project: Path) -> None:
    path = example_project / "steps/configs/config_data_loading_step.py"
    cls = import_class(path, "DataLoadingConfig", node="DataLoading_training")
    config = PipelineConfig(
        shared={"label_field": "is_churned", "unrelated": 1},
        nodes={"DataLoading_training": {"n_rows": 10}},
    )
    made = node_config(cls, node="DataLoading_training", job_type="training", config=config)
    assert (made.n_rows, made.label_field, made.job_type) == (10, "is_churned", "training")  # type: ignore[attr-defined]
    wrong_type = PipelineConfig(nodes={"DataLoading_training": {"n_rows": "many"}})
    with pytest.raises(
        PlanError,
        match="DataLoading_training: config field n_rows: Input should be a valid integer",
    ):
        node_config(cls, node="DataLoading_training", job_type="training", config=wrong_type)
    typo = PipelineConfig(nodes={"DataLoading_training": {"n_row": 3}})
    with pytest.raises(
        PlanError, match=r"config field n_row: unknown field.* Did you mean 'n_rows'"
    ):
        node_config(cls, node="DataLoading_training", job_type="training", config=typo)
    with pytest.raises(PlanError, match="defines no class 'Nope'"):
        import_class(path, "Nope", node="X")


def test_broken_config_module_is_the_nodes_error(tmp_path: Path) -> None:
    path = tmp_path / "config_broken_step.py"
    path.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(
        PlanError, match=r"Broken: importing config_broken_step.py failed: RuntimeError: boom"
    ):
        import_class(path, "X", node="Broken")


def test_environment_follows_the_contract(example_project: Path) -> None:
    cls = import_class(
        example_project / "steps/configs/config_data_loading_step.py", "DataLoadingConfig", node="n"
    )
    contract = ScriptContract(
        entry_point="data_loading.py",
        required_env_vars=["LABEL_FIELD"],
        optional_env_vars={"N_ROWS": "5000", "EXTRA": "x"},
        expected_arguments={"job_type": "training"},
    )
    made = node_config(
        cls, node="n", job_type="testing", config=PipelineConfig(nodes={"n": {"n_rows": 7}})
    )
    env, args = script_environment(contract, made, node="n")
    assert env == {"LABEL_FIELD": "churned", "N_ROWS": "7", "EXTRA": "x"}
    assert args == {"job_type": "testing"}
    strict = ScriptContract(entry_point="x.py", required_env_vars=["API_TOKEN"])
    with pytest.raises(
        PlanError, match="n: required env var API_TOKEN has no value: set 'api_token'"
    ):
        script_environment(strict, made, node="n")

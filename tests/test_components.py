"""The shared component models: what a step file constructs, and how configs and builders
read the registry through the active workspace."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pydantic import ValidationError

from stepkit.components import (
    DependencySpec,
    DependencyType,
    NodeType,
    OutputSpec,
    ScriptContract,
    StepBuilder,
    StepConfig,
    StepSpecification,
)
from stepkit.errors import UnknownStepError
from stepkit.registry import Registry, workspace_context

EXAMPLE_STEPS = Path(__file__).resolve().parents[1] / "examples" / "churn" / "steps"

DEFINITIONS: dict[str, dict[str, Any]] = {
    "XGBoostTraining": {
        "config_class": "XGBoostTrainingConfig",
        "builder_step_name": "XGBoostTrainingStepBuilder",
        "spec_type": "XGBoostTraining",
        "sagemaker_step_type": "Training",
        "description": "train",
    }
}


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class XGBoostTrainingConfig(StepConfig):
    training_entry_point: str | None = "xgboost_training.py"
    max_depth: int = 6


class XGBoostTrainingStepBuilder(StepBuilder):
    pass


class RunningBuilder(StepBuilder):
    def run(self, context: dict[str, Any]) -> dict[str, Any]:
        return {"ran": context}


def test_contract_of_the_example_loads_and_keeps_every_field() -> None:
    module = _load(EXAMPLE_STEPS / "contracts" / "tabular_preprocessing_contract.py")
    contract = module.TABULAR_PREPROCESSING_CONTRACT
    assert contract.entry_point == "tabular_preprocessing.py"
    assert contract.script_stem == "tabular_preprocessing"
    assert contract.expected_input_paths == {"DATA": "/opt/ml/processing/input/data"}
    assert contract.required_env_vars == ["LABEL_FIELD"]
    assert contract.optional_env_vars == {
        "TRAIN_RATIO": "0.7",
        "TEST_VAL_RATIO": "0.5",
        "ID_FIELD": "customer_id",
    }


def test_contracts_with_equal_fields_compare_equal() -> None:
    kwargs: dict[str, Any] = {
        "entry_point": "a.py",
        "expected_input_paths": {"x": "/in"},
        "required_env_vars": ["A"],
    }
    assert ScriptContract(**kwargs) == ScriptContract(**kwargs)
    assert ScriptContract(**kwargs) != ScriptContract(**{**kwargs, "required_env_vars": []})


def test_unknown_keyword_is_an_error_not_dropped() -> None:
    with pytest.raises(ValidationError, match="expected_inputs"):
        ScriptContract(entry_point="a.py", expected_inputs={"x": "/in"})  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="max_dept"):
        XGBoostTrainingConfig(max_dept=3)  # type: ignore[call-arg]


def test_contract_entry_point_must_be_a_python_file() -> None:
    with pytest.raises(ValidationError, match="must be a Python file name"):
        ScriptContract(entry_point="train.sh")


def test_spec_accepts_lists_and_keys_them_by_logical_name() -> None:
    dep = DependencySpec(logical_name="data", dependency_type=DependencyType.PROCESSING_OUTPUT)
    out = OutputSpec(
        logical_name="model", output_type=DependencyType.MODEL_ARTIFACTS, aliases=["artifacts"]
    )
    spec = StepSpecification(
        step_type="XGBoostTraining_Training",
        node_type=NodeType.INTERNAL,
        dependencies=[dep],
        outputs=[out],
    )
    assert list(spec.dependencies) == ["data"]
    assert spec.get_output("artifacts") == out
    assert spec.base_step_type == "XGBoostTraining"
    assert spec.job_type == "training"
    assert spec.required_dependencies() == [dep]
    assert spec.node_type_problems() == []
    as_dict = StepSpecification(
        step_type="XGBoostTraining_Training",
        node_type=NodeType.INTERNAL,
        dependencies={"data": dep},
        outputs={"model": out},
    )
    assert as_dict == spec


def test_spec_rejects_two_dependencies_with_one_name() -> None:
    dep = DependencySpec(logical_name="data", dependency_type="processing_output")
    with pytest.raises(ValidationError, match="dependency 'data' is listed twice"):
        StepSpecification(step_type="X", node_type="internal", dependencies=[dep, dep])


def test_dependency_type_accepts_its_value_and_rejects_unknown() -> None:
    dep = DependencySpec(logical_name="h", dependency_type="hyperparameters")
    assert dep.dependency_type is DependencyType.HYPERPARAMETERS
    with pytest.raises(ValidationError, match="dependency_type"):
        DependencySpec(logical_name="h", dependency_type="hyperparams")


def test_node_type_disagreement_is_reported_not_raised() -> None:
    out = OutputSpec(logical_name="r", output_type=DependencyType.PROCESSING_OUTPUT)
    spec = StepSpecification(step_type="Reg", node_type=NodeType.SINK, outputs=[out])
    assert spec.node_type_problems() == [
        "sink node needs dependencies",
        "sink node must have no outputs",
    ]


def test_example_specs_load_with_their_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    from stepkit.registry import step_names

    step_names.set_registry(
        Registry.from_dict(
            {
                "ModelRegistration": {
                    **DEFINITIONS["XGBoostTraining"],
                    "spec_type": "ModelRegistration",
                }
            }
        )
    )
    module = _load(EXAMPLE_STEPS / "specs" / "model_registration_spec.py")
    spec = module.MODEL_REGISTRATION_SPEC
    assert spec.step_type == "ModelRegistration"
    assert spec.node_type is NodeType.INTERNAL  # it writes a registration record
    assert set(spec.dependencies) == {"packaged_model", "metrics_input"}
    assert spec.script_contract is None


def test_config_entry_point_and_registry_through_its_workspace() -> None:
    registry = Registry.from_dict(DEFINITIONS)
    config = XGBoostTrainingConfig(job_type="training")
    assert config.script_entry_point == "xgboost_training.py"
    assert config.step_name(registry=registry) == "XGBoostTraining"
    assert config.node_name(registry=registry) == "XGBoostTraining_training"
    assert config.active_workspace_id is None
    with workspace_context("alice"):
        assert config.active_workspace_id == "alice"
        assert XGBoostTrainingConfig(workspace_id="bob").active_workspace_id == "bob"


def test_config_environment_variable_is_the_last_resort(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPKIT_WORKSPACE", "carol")
    assert XGBoostTrainingConfig().active_workspace_id == "carol"
    with workspace_context("alice"):
        assert XGBoostTrainingConfig().active_workspace_id == "alice"


def test_config_validates_job_type_and_assignment() -> None:
    with pytest.raises(ValidationError, match="lower-case snake_case"):
        XGBoostTrainingConfig(job_type="Training")
    config = XGBoostTrainingConfig()
    with pytest.raises(ValidationError, match="max_depth"):
        config.max_depth = "deep"  # type: ignore[assignment]


def test_unregistered_config_names_close_classes() -> None:
    class XGBoostTrainConfig(StepConfig):
        pass

    registry = Registry.from_dict(DEFINITIONS)
    with pytest.raises(UnknownStepError, match="Did you mean 'XGBoostTrainingConfig'"):
        XGBoostTrainConfig().step_name(registry=registry)


def test_builder_takes_config_and_spec_and_reads_its_workspace() -> None:
    registry = Registry.from_dict(DEFINITIONS)
    spec = StepSpecification(step_type="XGBoostTraining", node_type=NodeType.SINGULAR)
    builder = XGBoostTrainingStepBuilder(XGBoostTrainingConfig(), spec=spec, registry=registry)
    assert builder.spec is spec
    assert builder.contract is None
    assert builder.step_name == "XGBoostTraining"
    assert builder.STEP_NAMES["XGBoostTraining"]["sagemaker_step_type"] == "Training"
    assert not builder.has_run
    assert RunningBuilder(XGBoostTrainingConfig(), registry=registry).has_run


def test_builder_rejects_unknown_keywords_and_wrong_config() -> None:
    with pytest.raises(TypeError, match="role"):
        XGBoostTrainingStepBuilder(XGBoostTrainingConfig(), role="arn")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="needs a StepConfig, got dict"):
        XGBoostTrainingStepBuilder({})  # type: ignore[arg-type]


def test_components_are_not_imported_by_import_stepkit() -> None:
    code = (
        "import sys, stepkit; print('stepkit.components' in sys.modules, 'pydantic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"

"""The compatibility module behaves as the classic flat registry did, per active workspace."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from stepkit.errors import StepkitError, UnknownStepError
from stepkit.project import Project
from stepkit.registry import Registry, step_names
from stepkit.registry.step_names import (
    BUILDER_STEP_NAMES,
    CONFIG_STEP_REGISTRY,
    SPEC_STEP_TYPES,
    STEP_NAMES,
    clear_workspace_context,
    get_all_sagemaker_step_types,
    get_all_step_names,
    get_builder_step_name,
    get_builder_step_names,
    get_canonical_name_from_file_name,
    get_config_class_name,
    get_config_step_registry,
    get_sagemaker_step_type,
    get_sagemaker_step_type_mapping,
    get_spec_step_type,
    get_spec_step_type_with_job_type,
    get_spec_step_types,
    get_step_description,
    get_step_name_from_spec_type,
    get_step_names,
    get_steps_by_sagemaker_type,
    get_workspace_context,
    list_all_step_info,
    list_available_workspaces,
    set_workspace_context,
    validate_file_name,
    validate_spec_type,
    validate_step_name,
    workspace_context,
)


@pytest.fixture
def example(example_project: Path) -> Registry:
    registry = Registry.load(Project.load(example_project), use_cache=False)
    step_names.set_registry(registry)
    return registry


def test_maps_and_functions_read_the_core_by_default(example: Registry) -> None:
    assert STEP_NAMES["DataLoading"]["config_class"] == "DataLoadingConfig"
    assert CONFIG_STEP_REGISTRY["ModelEvaluationConfig"] == "ModelEvaluation"
    assert BUILDER_STEP_NAMES["ModelPackaging"] == "ModelPackagingStepBuilder"
    assert SPEC_STEP_TYPES["TabularPreprocessing"] == "TabularPreprocessing"
    assert "FeatureSelection" not in STEP_NAMES
    assert len(STEP_NAMES) == len(get_all_step_names()) == 9
    assert get_config_class_name("ModelCalibration") == "ModelCalibrationConfig"
    assert get_builder_step_name("ModelCalibration") == "ModelCalibrationStepBuilder"
    assert get_spec_step_type("ModelCalibration") == "ModelCalibration"
    assert get_spec_step_type_with_job_type("DataLoading", "training") == "DataLoading_Training"
    assert get_spec_step_type_with_job_type("DataLoading") == "DataLoading"
    assert get_step_name_from_spec_type("DataLoading_Training") == "DataLoading"
    assert get_sagemaker_step_type("GradientBoostingTraining") == "Training"
    assert get_step_description("ModelEvaluation").startswith("Score the model")
    assert validate_step_name("DataLoading") and not validate_step_name("Nope")
    assert validate_spec_type("DataLoading_Testing") and not validate_spec_type("Nope")
    assert get_steps_by_sagemaker_type("Training") == ["GradientBoostingTraining"]
    assert "RegisterModel" in get_all_sagemaker_step_types()
    assert get_sagemaker_step_type_mapping()["Transform"] == ["BatchTransform"]
    assert get_canonical_name_from_file_name("model_evaluation.py") == "ModelEvaluation"
    assert get_canonical_name_from_file_name("config_data_loading_step.py") == "DataLoading"
    assert get_canonical_name_from_file_name("data_loading_calibration_spec.py") == "DataLoading"
    assert validate_file_name("builder_model_packaging_step.py")
    assert not validate_file_name("mystery.py")
    assert list_available_workspaces() == ["alice", "bob", "shared"]
    info = list_all_step_info()
    info["DataLoading"]["config_class"] = "changed"  # a copy: the registry is untouched
    assert STEP_NAMES["DataLoading"]["config_class"] == "DataLoadingConfig"
    assert get_step_names() == dict(STEP_NAMES)
    assert get_config_step_registry()["DataLoadingConfig"] == "DataLoading"
    assert get_builder_step_names()["DataLoading"] == "DataLoadingStepBuilder"
    assert get_spec_step_types()["DataLoading"] == "DataLoading"


def test_unknown_names_raise_the_classic_builtins_with_suggestions(example: Registry) -> None:
    with pytest.raises(KeyError):
        STEP_NAMES["ModelEvaluaton"]
    with pytest.raises(ValueError, match="Did you mean 'ModelEvaluation'"):
        get_config_class_name("ModelEvaluaton")
    with pytest.raises(StepkitError):
        get_canonical_name_from_file_name("model_evaluaton.py")
    with pytest.raises(UnknownStepError, match="spec type"):
        get_step_name_from_spec_type("Nothing_Training")
    with pytest.raises(TypeError):
        STEP_NAMES["DataLoading"]["config_class"] = "x"  # type: ignore[index]


def test_references_taken_at_import_follow_the_active_workspace(example: Registry) -> None:
    seen_before = "FeatureSelection" in STEP_NAMES
    with workspace_context("alice"):
        assert STEP_NAMES["FeatureSelection"]["config_class"] == "FeatureSelectionConfig"
        assert get_workspace_context() == "alice"
        assert "FeatureSelection" in get_all_step_names()
    assert not seen_before and "FeatureSelection" not in STEP_NAMES
    with workspace_context("bob"):
        assert "bootstrap" in STEP_NAMES["ModelEvaluation"]["description"]
    assert get_step_description("ModelEvaluation", workspace_id="bob").endswith("(bob)")
    assert get_all_step_names("alice") != get_all_step_names()


def test_context_restores_the_previous_value_also_when_none(example: Registry) -> None:
    assert get_workspace_context() is None
    with workspace_context("alice"):
        with workspace_context("bob"):
            assert get_workspace_context() == "bob"
        assert get_workspace_context() == "alice"
    assert get_workspace_context() is None
    set_workspace_context("bob")
    assert "bootstrap" in STEP_NAMES["ModelEvaluation"]["description"]
    clear_workspace_context()
    assert get_workspace_context() is None


def test_environment_variable_is_the_fallback(
    example: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEPKIT_WORKSPACE", "alice")
    assert "FeatureSelection" in STEP_NAMES
    with workspace_context("bob"):
        assert "FeatureSelection" not in STEP_NAMES
    assert "FeatureSelection" not in get_all_step_names(workspace_id="shared")


def test_context_is_isolated_between_threads(example: Registry) -> None:
    seen: dict[str, bool] = {}
    ready = threading.Barrier(2)

    def worker(name: str, workspace: str | None) -> None:
        if workspace:
            set_workspace_context(workspace)
        ready.wait()
        seen[name] = "FeatureSelection" in STEP_NAMES

    threads = [
        threading.Thread(target=worker, args=("a", "alice")),
        threading.Thread(target=worker, args=("b", None)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": True, "b": False}
    assert get_workspace_context() is None


def test_context_is_isolated_between_asyncio_tasks(example: Registry) -> None:
    async def in_alice() -> bool:
        with workspace_context("alice"):
            await asyncio.sleep(0.01)
            return "FeatureSelection" in STEP_NAMES

    async def plain() -> bool:
        await asyncio.sleep(0.005)
        return "FeatureSelection" in STEP_NAMES

    async def both() -> list[bool]:
        return list(await asyncio.gather(in_alice(), plain()))

    assert asyncio.run(both()) == [True, False]


def test_registry_loads_from_the_current_project(
    example_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(example_project / "steps")
    assert STEP_NAMES["DataLoading"]["sagemaker_step_type"] == "Processing"

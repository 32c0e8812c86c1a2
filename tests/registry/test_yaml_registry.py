"""A registry written as a YAML table, as the framework's transition release keeps it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stepkit.errors import RegistryFileError
from stepkit.project import Project
from stepkit.registry import Registry

WriteProject = Callable[..., Path]

PROJECT = """
[project]
name = "retail"

[[workspaces]]
id = "shared"
path = "steps"
registry = "steps/registry/step_names.yaml"
"""

TABLE = """\
# the step-name registry
step_names:
  TabularPreprocessing:
    config_class: TabularPreprocessingConfig
    builder_step_name: TabularPreprocessingStepBuilder
    spec_type: TabularPreprocessing
    sagemaker_step_type: Processing
    description: Preprocess tables
  XGBoostTraining:
    config_class: XGBoostTrainingConfig
    builder_step_name: XGBoostTrainingStepBuilder
    spec_type: XGBoostTraining
    sagemaker_step_type: Training
"""


def _project(write_project: WriteProject, table: str) -> Project:
    return Project.load(
        write_project({"stepkit.toml": PROJECT, "steps/registry/step_names.yaml": table})
    )


def test_a_yaml_table_is_read_with_lines(write_project: WriteProject) -> None:
    registry = Registry.load(_project(write_project, TABLE))
    assert registry.names() == ["TabularPreprocessing", "XGBoostTraining"]
    definition = registry.get("TabularPreprocessing")
    assert definition.sagemaker_step_type == "Processing"
    assert definition.description == "Preprocess tables"
    assert definition.origin is not None and definition.origin.line == 3
    assert registry.get("XGBoostTraining").description == ""


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("step_name:\n  A: {}\n", r"step_names\.yaml:1: unknown table 'step_name'.*step_names"),
        ("step_names:\n  A: {confg_class: X}\n", r":2: step 'A': unknown field 'confg_class'"),
        ("step_names: [A, B]\n", r":1: step_names must be a mapping"),
        ("step_names:\n  A: {config_class: X\n", r"is not valid YAML"),
        ("step_names:\n  A:\n    config_class: X\n", r":2: step 'A': missing field"),
    ],
)
def test_a_bad_yaml_table_is_one_clear_error(
    write_project: WriteProject, table: str, message: str
) -> None:
    with pytest.raises(RegistryFileError, match=message):
        Registry.load(_project(write_project, table), strict=True)


def test_yaml_tags_that_would_run_code_are_refused(write_project: WriteProject) -> None:
    hostile = "step_names: !!python/object/apply:os.system ['echo pwned']\n"
    with pytest.raises(RegistryFileError, match="step_names must be a mapping"):
        Registry.load(_project(write_project, hostile), strict=True)
    inner = "step_names:\n  A: !!python/object/apply:os.system ['echo pwned']\n"
    with pytest.raises(RegistryFileError, match=":2: 'A' is not plain data"):
        Registry.load(_project(write_project, inner), strict=True)

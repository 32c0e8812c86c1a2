from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stepkit.errors import RegistryConflictError, RegistryFileError, UnknownStepError
from stepkit.project import Project
from stepkit.registry import Registry, check_registry

WriteProject = Callable[..., Path]

PROJECT = """
[project]
name = "retail"

[[workspaces]]
id = "alice"
path = "dev/alice/steps"

[[workspaces]]
id = "bob"
path = "dev/bob/steps"

[[workspaces]]
id = "shared"
path = "steps"
"""

CORE = """
STEP_NAMES = {
    "TabularPreprocessing": {
        "config_class": "TabularPreprocessingConfig",
        "builder_step_name": "TabularPreprocessingStepBuilder",
        "spec_type": "TabularPreprocessing",
        "sagemaker_step_type": "Processing",
        "description": "Preprocess tables",
    },
    "XGBoostTraining": {
        "config_class": "XGBoostTrainingConfig",
        "builder_step_name": "XGBoostTrainingStepBuilder",
        "spec_type": "XGBoostTraining",
        "sagemaker_step_type": "Training",
        "description": "Train XGBoost",
    },
}
"""


def make(write_project: WriteProject, alice: str = "", bob: str = "", core: str = CORE) -> Project:
    files = {"stepkit.toml": PROJECT, "steps/step_names.py": core}
    if alice:
        files["dev/alice/steps/registry.toml"] = alice
    if bob:
        files["dev/bob/steps/step_names.py"] = bob
    root = write_project(files)
    for ws in ("dev/alice/steps", "dev/bob/steps"):
        (root / ws).mkdir(parents=True, exist_ok=True)
    return Project.load(root)


def test_core_view_and_developer_additions(write_project: WriteProject) -> None:
    project = make(
        write_project,
        alice="""
        [steps.FeatureSelection]
        config_class = "FeatureSelectionConfig"
        builder_step_name = "FeatureSelectionStepBuilder"
        spec_type = "FeatureSelection"
        sagemaker_step_type = "Processing"
        job_types = ["training", "backfill"]
        """,
    )
    registry = Registry.load(project)
    assert registry.names() == ["TabularPreprocessing", "XGBoostTraining"]
    assert registry.names("alice") == [
        "FeatureSelection",
        "TabularPreprocessing",
        "XGBoostTraining",
    ]
    assert registry.names("bob") == ["TabularPreprocessing", "XGBoostTraining"]
    added = registry.get("FeatureSelection", "alice")
    assert added.workspace_id == "alice"
    assert added.origin is not None and added.origin.line == 1
    assert "backfill" in registry.job_types("alice")
    with pytest.raises(UnknownStepError, match="Did you mean 'XGBoostTraining'"):
        registry.get("XGBoostTrainin")


def test_override_replaces_only_named_fields(write_project: WriteProject) -> None:
    project = make(
        write_project,
        bob="""
        STEP_OVERRIDES = {
            "XGBoostTraining": {"description": "Train XGBoost, bob's way"},
        }
        """,
    )
    registry = Registry.load(project)
    mine = registry.get("XGBoostTraining", "bob")
    assert mine.description == "Train XGBoost, bob's way"
    assert mine.config_class == "XGBoostTrainingConfig"
    assert mine.overridden_fields == ("description",)
    assert registry.get("XGBoostTraining").description == "Train XGBoost"
    report = {r.workspace_id: r for r in registry.reports()}
    (override,) = report["bob"].overrides
    assert override.fields == {"description": ("Train XGBoost", "Train XGBoost, bob's way")}


def test_toml_override_flag(write_project: WriteProject) -> None:
    project = make(
        write_project,
        alice="""
        [steps.TabularPreprocessing]
        override = true
        sagemaker_step_type = "Utility"
        """,
    )
    assert (
        Registry.load(project).get("TabularPreprocessing", "alice").sagemaker_step_type == "Utility"
    )


def test_redefining_without_override_names_both_places(write_project: WriteProject) -> None:
    project = make(
        write_project,
        alice="""
        # comment line

        [steps.XGBoostTraining]
        config_class = "MyConfig"
        builder_step_name = "MyBuilder"
        spec_type = "XGBoostTraining"
        sagemaker_step_type = "Training"
        """,
    )
    with pytest.raises(RegistryConflictError) as info:
        Registry.load(project, strict=True)
    message = str(info.value)
    assert (
        "dev/alice/steps/registry.toml:3: step 'XGBoostTraining' is already defined at" in message
    )
    assert "steps/step_names.py:9" in message
    assert "override" in message


def test_override_of_unknown_step_suggests(write_project: WriteProject) -> None:
    project = make(write_project, bob='STEP_OVERRIDES = {"XGBoostTrainng": {"description": "x"}}\n')
    with pytest.raises(RegistryFileError, match="Did you mean 'XGBoostTraining'"):
        Registry.load(project, strict=True)


def test_duplicate_key_in_one_python_dict_is_a_conflict(write_project: WriteProject) -> None:
    dup = CORE.replace('"XGBoostTraining": {', '"TabularPreprocessing": {', 1)
    project = make(write_project, core=dup)
    with pytest.raises(RegistryConflictError, match="TabularPreprocessing"):
        Registry.load(project, strict=True)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("STEP_NAMES = {", "syntax error"),
        ("STEP_NAMES = build()", r"is computed by code \(build\(\)\), which stepkit does not run"),
        (
            'STEP_NAMES = {"A": {"config_class": make()}}',
            r"STEP_NAMES\['A'\] holds a call to make\(\.\.\.\), not a literal value: write the "
            "value itself",
        ),
        (
            'STEP_NAMES = {"A": {"confg_class": "X"}}',
            "unknown field 'confg_class'. Did you mean 'config_class'",
        ),
        ('STEP_NAMES = {"A": {"config_class": "X"}}', "missing field 'builder_step_name'"),
        ('STEP_NAMES = {"A": {"config_class": 3}}', "config_class must be a string"),
    ],
)
def test_bad_python_registry_is_one_clear_error(
    write_project: WriteProject, source: str, message: str
) -> None:
    project = make(write_project, core=source)
    with pytest.raises(RegistryFileError, match=message) as info:
        Registry.load(project, strict=True)
    assert "step_names.py:1:" in str(info.value)


def test_python_registry_is_never_imported(write_project: WriteProject, tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    core = f"open({str(marker)!r}, 'w').close()\n" + CORE
    project = make(write_project, core=core)
    assert Registry.load(project).names() == ["TabularPreprocessing", "XGBoostTraining"]
    assert not marker.exists()


def test_cache_is_used_and_refreshed_when_the_file_changes(write_project: WriteProject) -> None:
    import sqlite3

    from stepkit.catalog import StepCatalog

    project = make(write_project)
    StepCatalog(project)  # the cache lives in the catalog index
    assert len(Registry.load(project).names()) == 2
    index = sqlite3.connect(project.state_dir / "catalog" / "index.sqlite")
    (count,) = index.execute("SELECT count(*) FROM registry_sources").fetchone()
    assert count == 1
    core_file = project.core.registry_file
    assert core_file is not None
    core_file.write_text(
        CORE.replace('"XGBoostTraining": {', '"LightGBMTraining": {').replace(
            '"spec_type": "XGBoostTraining"', '"spec_type": "LightGBMTraining"'
        )
    )
    assert Registry.load(project).names() == ["LightGBMTraining", "TabularPreprocessing"]
    with index:
        index.execute("UPDATE registry_sources SET entries = 'garbage'")
    index.close()
    assert Registry.load(project).names() == ["LightGBMTraining", "TabularPreprocessing"]


def test_check_reports_each_rule_with_file_and_line() -> None:
    registry = Registry.from_dict(
        {
            "good_name": {
                "config_class": "C1",
                "builder_step_name": "B1",
                "spec_type": "good_name",
                "sagemaker_step_type": "Processing",
                "description": "d",
            },
            "Other": {
                "config_class": "C1",
                "builder_step_name": "B2",
                "spec_type": "Another",
                "sagemaker_step_type": "Procesing",
                "description": "d",
            },
        }
    )
    found = {(p.severity, p.step, p.message) for p in check_registry(registry)}
    assert (
        "error",
        "good_name",
        "name is not PascalCase (letters and digits, first upper-case)",
    ) in found
    assert ("error", "Other", "spec_type 'Another' differs from the step name") in found
    assert (
        "warning",
        "Other",
        "custom sagemaker_step_type 'Procesing' (did you mean 'Processing'?)",
    ) in found
    assert any(
        p[1] == "Other" and "config_class 'C1' is also used by good_name" in p[2] for p in found
    )


def test_example_project_layers(example_project: Path) -> None:
    registry = Registry.load(Project.load(example_project))
    reports = {r.workspace_id: r for r in registry.reports()}
    assert reports["alice"].defines == ("FeatureSelection",)
    assert [o.name for o in reports["bob"].overrides] == ["ModelEvaluation"]
    assert len(reports["shared"].defines) >= 9
    assert [p for p in check_registry(registry) if p.severity == "error"] == []


def test_a_broken_developer_registry_hurts_only_its_workspace(
    write_project: WriteProject,
) -> None:
    project = make(write_project, alice="[steps.Broken\n", bob='STEP_NAMES = {"A": {')
    registry = Registry.load(project)
    # everyone still sees the core; alice and bob lose only their own layer
    for ws in ("alice", "bob", "shared"):
        assert registry.names(ws) == ["TabularPreprocessing", "XGBoostTraining"]
    problems = registry.problems
    assert [p.workspace_id for p in problems] == ["alice", "bob"]
    assert "dev/alice/steps/registry.toml" in str(problems[0]) and "is not valid TOML" in str(
        problems[0]
    )
    assert str(problems[1]).startswith("workspace 'bob': ")
    assert "syntax error" in str(problems[1])


def test_a_conflicting_entry_is_left_out_and_the_rest_of_the_layer_kept(
    write_project: WriteProject,
) -> None:
    alice = """
    [steps.XGBoostTraining]
    config_class = "X"
    builder_step_name = "X"
    spec_type = "X"
    sagemaker_step_type = "Training"

    [steps.AliceStep]
    config_class = "AliceStepConfig"
    builder_step_name = "AliceStepBuilder"
    spec_type = "AliceStep"
    sagemaker_step_type = "Processing"
    """
    registry = Registry.load(make(write_project, alice=alice))
    assert registry.names("alice") == ["AliceStep", "TabularPreprocessing", "XGBoostTraining"]
    assert registry.get("XGBoostTraining", "alice").config_class == "XGBoostTrainingConfig"
    (problem,) = registry.problems
    assert problem.workspace_id == "alice"
    assert isinstance(problem.error, RegistryConflictError)
    with pytest.raises(RegistryConflictError, match="XGBoostTraining"):
        Registry.load(make(write_project, alice=alice), strict=True)


def test_a_broken_core_registry_leaves_the_developer_steps(write_project: WriteProject) -> None:
    alice = """
    [steps.AliceStep]
    config_class = "AliceStepConfig"
    builder_step_name = "AliceStepBuilder"
    spec_type = "AliceStep"
    sagemaker_step_type = "Processing"
    """
    registry = Registry.load(make(write_project, alice=alice, core="STEP_NAMES = {"))
    assert registry.names("alice") == ["AliceStep"]
    assert registry.names() == []
    assert [p.workspace_id for p in registry.problems] == ["shared"]


def test_registry_check_reports_what_was_left_out(write_project: WriteProject) -> None:
    registry = Registry.load(make(write_project, alice="[steps.Broken\n"))
    (first, *_) = check_registry(registry)
    assert first.severity == "error"
    assert str(first).startswith("error: workspace 'alice': left out: ")
    assert "registry.toml" in str(first)

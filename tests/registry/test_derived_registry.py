"""Registries derived from interface files: one row per ``.step.yaml``, the page's defaults,
layered over the core like any other source."""

from __future__ import annotations

from pathlib import Path

import pytest
from interface_layout import InterfaceStep, write_interface_project, write_interface_step

from stepkit.errors import ProjectFileError
from stepkit.project import Project
from stepkit.registry.layering import Registry
from stepkit.registry.sources import read_registry


def test_rows_have_the_defaults_and_the_variants_job_types(tmp_path: Path) -> None:
    root = write_interface_project(
        tmp_path / "p",
        {"shared": [InterfaceStep(name="Alpha", variants=("training", "calibration"))]},
    )
    source = read_registry(root / "steps" / "interfaces", "shared")
    (entry,) = source.entries
    assert entry.kind == "derive"
    assert dict(entry.fields) == {
        "config_class": "AlphaConfig",
        "builder_step_name": "AlphaStepBuilder",
        "spec_type": "Alpha",
        "sagemaker_step_type": "Processing",
        "description": "Alpha step",
        "job_types": ["training", "calibration"],
    }
    assert entry.origin.path == root / "steps" / "interfaces" / "alpha.step.yaml"
    assert entry.origin.line == 3


def test_a_broken_interface_gives_no_row(tmp_path: Path) -> None:
    root = write_interface_project(tmp_path / "p", {"shared": [InterfaceStep(name="Alpha")]})
    (root / "steps" / "interfaces" / "broken.step.yaml").write_text("step_type: [\n")
    registry = Registry.load(Project.load(root))
    assert list(registry.view("shared")) == ["Alpha"]
    assert registry.problems == ()


def test_a_developer_interface_overrides_what_differs_without_a_conflict(tmp_path: Path) -> None:
    root = write_interface_project(
        tmp_path / "p",
        {
            "alice": [InterfaceStep(name="Alpha", sagemaker_step_type="Training")],
            "shared": [InterfaceStep(name="Alpha"), InterfaceStep(name="Beta")],
        },
    )
    write_interface_step(root / "dev" / "alice" / "steps", InterfaceStep(name="Gamma"))
    registry = Registry.load(Project.load(root))
    assert registry.problems == ()
    alpha = registry.get("Alpha", workspace_id="alice")
    assert alpha.sagemaker_step_type == "Training"
    assert alpha.workspace_id == "alice" and alpha.overridden_fields == ("sagemaker_step_type",)
    assert registry.get("Alpha", workspace_id="shared").sagemaker_step_type == "Processing"
    (report,) = [r for r in registry.reports() if r.workspace_id == "alice"]
    assert report.defines == ("Gamma",)
    assert [o.name for o in report.overrides] == ["Alpha"]


def test_two_interfaces_of_one_step_in_a_workspace_conflict(tmp_path: Path) -> None:
    root = write_interface_project(tmp_path / "p", {"shared": [InterfaceStep(name="Alpha")]})
    write_interface_step(root / "steps", InterfaceStep(name="Alpha", stem="alpha_copy"))
    (problem,) = Registry.load(Project.load(root)).problems
    assert "alpha_copy.step.yaml" in str(problem) and "alpha.step.yaml" in str(problem)


def test_registry_may_name_a_folder_but_not_a_missing_one(tmp_path: Path) -> None:
    root = write_interface_project(
        tmp_path / "p", {"shared": [InterfaceStep(name="Alpha")]}, registry={"shared": "nowhere"}
    )
    with pytest.raises(ProjectFileError, match="registry file 'nowhere' does not exist"):
        Project.load(root)

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stepkit.catalog import StepCatalog
from stepkit.errors import PlanInvalidError
from stepkit.plan.config import PipelineConfig, load_pipeline_config
from stepkit.plan.dagfile import PipelineDAG, load_dag
from stepkit.plan.planner import plan_pipeline
from stepkit.project import Project


@pytest.fixture
def project(example_project: Path, tmp_path: Path) -> Project:
    """A private copy of the example (the catalog writes its index in the state dir)."""
    root = tmp_path / "churn"
    shutil.copytree(example_project, root, ignore=shutil.ignore_patterns(".stepkit"))
    return Project.load(root)


def test_example_plans_with_every_input_wired(project: Project) -> None:
    catalog = StepCatalog(project)
    dag = load_dag(project.root / "pipelines/churn.yaml")
    plan = plan_pipeline(
        catalog, dag, load_pipeline_config(project.root / "pipelines/churn-config.yaml")
    )
    assert list(plan.nodes) == dag.topological_order()
    wiring = {(r["node"], r["input"]): r["from"] for r in plan.wiring_rows()}
    assert (
        wiring[("GradientBoostingTraining", "input_path")]
        == "TabularPreprocessing_training.processed_data"
    )
    assert wiring[("ModelEvaluation", "calibration_input")] == "ModelCalibration.calibration_output"
    assert wiring[("ModelRegistration", "metrics_input")] == "ModelEvaluation.metrics_output"
    loading = plan.nodes["DataLoading_testing"]
    assert loading.how == "script" and loading.job_type == "testing"
    assert loading.environment == {"LABEL_FIELD": "churned", "N_ROWS": "3000", "SEED": "7"}
    assert loading.arguments == {"job_type": "testing"}
    assert plan.nodes["ModelRegistration"].how == "builder"
    assert plan.nodes["ModelRegistration"].outputs == ("registration",)
    assert plan.notes == []  # the optional hyperparameters input has no candidate at all


def test_every_problem_is_reported_before_anything_runs(project: Project) -> None:
    catalog = StepCatalog(project)
    dag = PipelineDAG.from_edges(
        [
            ("DataLoading_training", "TabularPreprocesing_training"),
            ("DataLoading_training", "GradientBoostingTraining"),
        ]
    )
    config = PipelineConfig(nodes={"DataLoading_training": {"n_rows": "lots"}})
    with pytest.raises(PlanInvalidError) as info:
        plan_pipeline(catalog, dag, config)
    problems = info.value.problems
    assert any(
        p.startswith("TabularPreprocesing_training: No step named 'TabularPreprocesing_training'")
        and "Did you mean 'TabularPreprocessing'" in p
        for p in problems
    ), problems
    assert any(
        p.startswith("DataLoading_training: config field n_rows: Input should be a valid integer")
        for p in problems
    )
    assert any(
        p.startswith(
            "GradientBoostingTraining: no upstream output satisfies required input 'input_path'"
        )
        for p in problems
    ), problems


def test_ambiguous_wiring_is_reported_with_candidates(project: Project) -> None:
    catalog = StepCatalog(project)
    dag = PipelineDAG.from_edges(
        [
            ("DataLoading_training", "TabularPreprocessing_training"),
            ("DataLoading_testing", "TabularPreprocessing_training"),
        ]
    )
    with pytest.raises(PlanInvalidError) as info:
        plan_pipeline(catalog, dag)
    (problem,) = info.value.problems
    assert problem.startswith(
        "TabularPreprocessing_training: required input 'DATA' is ambiguous between"
    )
    assert (
        "DataLoading_training.DATA (1.00" in problem and "DataLoading_testing.DATA (1.00" in problem
    )


@pytest.mark.parametrize(
    ("component", "relative"),
    [
        ("contract", "steps/contracts/model_packaging_contract.py"),
        ("script", "steps/scripts/model_packaging.py"),
    ],
)
def test_a_component_with_a_syntax_error_is_named_with_file_and_line(
    project: Project, component: str, relative: str
) -> None:
    broken = project.root / relative
    broken.write_text(broken.read_text() + "\n\ndef half(:\n")
    line = broken.read_text().count("\n")
    catalog = StepCatalog(project)
    with pytest.raises(PlanInvalidError) as info:
        plan_pipeline(catalog, PipelineDAG().add_node("ModelPackaging"))
    (problem,) = info.value.problems
    assert problem.startswith(
        f"ModelPackaging: step ModelPackaging is incomplete: its {component} {broken}:{line}: "
        "syntax error:"
    ), problem


def test_step_without_script_or_runnable_builder_cannot_run_locally(project: Project) -> None:
    builder = project.root / "steps/builders/builder_batch_transform_step.py"
    builder.write_text(
        "from stepkit.components import StepBuilder\n\n\nclass BatchTransformStepBuilder(StepBuilder):\n    pass\n"
    )
    catalog = StepCatalog(project)
    dag = PipelineDAG.from_edges([("DataLoading_testing", "BatchTransform_testing")])
    with pytest.raises(PlanInvalidError) as info:
        plan_pipeline(catalog, dag)
    assert info.value.problems == [
        "BatchTransform_testing: step BatchTransform cannot run locally: it has no script, "
        "and its builder BatchTransformStepBuilder defines no run(context)"
    ]


def test_incomplete_processing_step_is_named(project: Project) -> None:
    (project.root / "steps/scripts/model_packaging.py").unlink()
    catalog = StepCatalog(project)
    dag = PipelineDAG().add_node("ModelPackaging")
    with pytest.raises(
        PlanInvalidError,
        match="ModelPackaging: Processing step ModelPackaging is incomplete: no script",
    ):
        plan_pipeline(catalog, dag)

"""Where a test's inputs come from: ``--data`` leaves what it lacks absent, a node's input
seeded from a local file, and synthetic data shaped as the contract and spec declare."""

from __future__ import annotations

import csv
import shutil
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepkit.cli.app import app
from stepkit.components import (
    DependencySpec,
    DependencyType,
    NodeType,
    ScriptContract,
    StepSpecification,
)
from stepkit.errors import PlanError
from stepkit.project import Project
from stepkit.testing import RuntimeTester, Status, Target, TestOptions
from stepkit.testing.script import run_test
from stepkit.testing.synthetic import input_shape

#: Writes what it found under each input: files (relative paths) and CSV headers.
LISTER = """
import os
from pathlib import Path

def main(input_paths, output_paths, environ_vars, job_args):
    lines = []
    for name, path in sorted(input_paths.items()):
        if not os.path.exists(path):
            lines.append(f"{name}: absent")
            continue
        for file in sorted(Path(path).rglob("*")):
            if file.is_file():
                head = file.read_text().splitlines()[0] if file.suffix == ".csv" else ""
                lines.append(f"{name}: {file.relative_to(path).as_posix()} {head}".rstrip())
    Path(output_paths["out"], "seen.txt").write_text("\\n".join(lines) + "\\n")
"""


@pytest.fixture
def options(tmp_path: Path) -> TestOptions:
    (tmp_path / "runs").mkdir()
    return TestOptions(timeout=60, temp_root=tmp_path / "runs", keep=True, sandbox=False)


def lister(tmp_path: Path, inputs: dict[str, str], **contract: object) -> Path:
    script = tmp_path / "scripts" / "lister.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(textwrap.dedent(LISTER).lstrip())
    return script


def dependency(
    name: str, *, required: bool = True, sources: tuple[str, ...] = ()
) -> DependencySpec:
    return DependencySpec(
        logical_name=name,
        dependency_type=DependencyType.PROCESSING_OUTPUT,
        required=required,
        compatible_sources=list(sources),
    )


def seen(result_outputs: dict[str, Path]) -> list[str]:
    return (result_outputs["out"] / "seen.txt").read_text().splitlines()


def make_target(
    tmp_path: Path,
    inputs: dict[str, str],
    dependencies: list[DependencySpec],
    *,
    channels: dict[str, list[str]] | None = None,
    job_type: str | None = None,
) -> Target:
    contract = ScriptContract(
        entry_point="lister.py",
        expected_input_paths=inputs,
        expected_output_paths={"out": "/opt/ml/processing/output"},
        channels=channels or {},
    )
    spec = StepSpecification(
        step_type="Lister", node_type=NodeType.INTERNAL, dependencies=dependencies
    )
    return Target("Lister", lister(tmp_path, inputs), contract, spec, job_type=job_type)


def test_data_leaves_an_optional_input_it_lacks_absent(
    tmp_path: Path, options: TestOptions
) -> None:
    data = tmp_path / "data"
    (data / "data").mkdir(parents=True)
    (data / "data" / "rows.csv").write_text("a,b\n1,2\n")
    target = make_target(
        tmp_path,
        {"data": "/opt/ml/processing/input/data", "signature": "/opt/ml/processing/input/sig"},
        [dependency("data"), dependency("signature", required=False)],
    )
    result = run_test(target, options, data=data)
    assert result.status is Status.PASS, result.reason
    assert seen(result.outputs) == ["data: rows.csv a,b", "signature: absent"]
    assert result.inputs["signature"] == f"absent (not in --data {data})"


def test_synthetic_inputs_take_the_shape_of_the_step_that_feeds_them(
    tmp_path: Path, options: TestOptions
) -> None:
    target = make_target(
        tmp_path,
        {
            "raw": "/opt/ml/processing/input/raw",
            "processed": "/opt/ml/processing/input/processed",
            "scored": "/opt/ml/processing/input/scored",
            "channelled": "/opt/ml/input/data",
        },
        [
            dependency("raw", sources=("CradleDataLoading",)),
            dependency("processed", sources=("TabularPreprocessing",)),
            dependency("scored", sources=("XGBoostModelEval",)),
            dependency("channelled"),
        ],
        channels={"channelled": ["train", "val"]},
        job_type="training",
    )
    result = run_test(target, options)
    assert result.status is Status.PASS, result.reason
    header = "id,feature_1,feature_2,feature_3,category,label"
    assert seen(result.outputs) == [
        f"channelled: train/data.csv {header}",
        f"channelled: val/data.csv {header}",
        f"processed: test/test_processed_data.csv {header}",
        f"processed: train/train_processed_data.csv {header}",
        f"processed: val/val_processed_data.csv {header}",
        f"raw: part-00000.csv {header}",
        f"raw: part-00001.csv {header}",
        f"scored: predictions.csv {header},prob_class_0,prob_class_1",
    ]
    assert result.inputs == {
        "raw": "synthetic csv (shards)",
        "processed": "synthetic csv (splits)",
        "scored": "synthetic csv (scores)",
        "channelled": "synthetic csv (channels train, val)",
    }


def test_a_non_training_job_gets_its_own_split(tmp_path: Path, options: TestOptions) -> None:
    target = make_target(
        tmp_path,
        {"processed": "/opt/ml/processing/input/processed"},
        [dependency("processed", sources=("TabularPreprocessing",))],
        job_type="calibration",
    )
    result = run_test(target, options)
    assert [line.split(" ")[:2] for line in seen(result.outputs)] == [
        ["processed:", "calibration/calibration_processed_data.csv"]
    ]


def test_scores_probabilities_add_up(tmp_path: Path, options: TestOptions) -> None:
    target = make_target(
        tmp_path,
        {"scored": "/opt/ml/processing/input/scored"},
        [dependency("scored", sources=("ModelEvaluation",))],
    )
    result = run_test(target, options)
    assert result.temp_dir is not None
    table = (result.temp_dir / "input" / "scored" / "predictions.csv").read_text()
    for row in list(csv.DictReader(table.splitlines())):
        total = float(row["prob_class_0"]) + float(row["prob_class_1"])
        assert abs(total - 1) < 1e-3


def test_input_shape_reads_sources_then_keywords() -> None:
    assert input_shape(None) == "table"
    assert input_shape(dependency("x")) == "table"
    assert input_shape(dependency("x", sources=("DummyDataLoading",))) == "shards"
    keyworded = DependencySpec(
        logical_name="x",
        dependency_type=DependencyType.PROCESSING_OUTPUT,
        semantic_keywords=["predictions", "evaluation"],
    )
    assert input_shape(keyworded) == "scores"


# -- test pipeline --data NODE.INPUT=PATH, on the example --------------------------------

ENV = {"LABEL_FIELD": "churned"}


@pytest.fixture
def churn(tmp_path: Path, example_project: Path) -> Path:
    root = tmp_path / "churn"
    shutil.copytree(example_project, root, ignore=shutil.ignore_patterns(".stepkit"))
    (root / "two.yaml").write_text(
        "nodes: [DataLoading_training, TabularPreprocessing_training]\n"
        "edges: [[DataLoading_training, TabularPreprocessing_training]]\n"
    )
    return root


def customers(path: Path) -> Path:
    rows = ["customer_id,tenure,monthly_charges,churned"]
    rows += [f"{i},{i % 24},{20 + i % 50}.5,{i % 2}" for i in range(60)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_pipeline_data_seeds_a_nodes_input_from_a_local_file(churn: Path, tmp_path: Path) -> None:
    table = customers(tmp_path / "customers.csv")
    tester = RuntimeTester(Project.load(churn), env=ENV, temp_root=tmp_path, keep=True)
    result = tester.test_pipeline(
        churn / "two.yaml", data={"TabularPreprocessing_training.DATA": table}
    )
    assert result.status is Status.PASS, [s.reason for s in result.steps]
    step = result.steps[1]
    assert step.inputs == {"DATA": f"data {table}"}
    assert step.temp_dir is not None
    assert (step.temp_dir / "input" / "DATA" / "customers.csv").read_text() == table.read_text()


def test_pipeline_data_names_are_checked_with_close_names(churn: Path, tmp_path: Path) -> None:
    tester = RuntimeTester(Project.load(churn), env=ENV, temp_root=tmp_path)
    with pytest.raises(PlanError) as caught:
        tester.test_pipeline(
            churn / "two.yaml", data={"TabularPreprocessing_training.DAT": tmp_path}
        )
    assert str(caught.value) == (
        "TabularPreprocessing_training: --data names no input 'DAT' of its contract "
        "(inputs: DATA). Did you mean 'DATA'?"
    )
    done = CliRunner().invoke(
        app,
        [
            "-p",
            str(churn),
            "test",
            "pipeline",
            str(churn / "two.yaml"),
            "--data",
            f"TabularPreprocesing_training.DATA={tmp_path}",
        ],
    )
    assert isinstance(done.exception, PlanError)
    assert "names no node of the DAG. Did you mean 'TabularPreprocessing_training'" in str(
        done.exception
    )


# -- sample data that ships with a step ----------------------------------------------------


def test_a_step_s_samples_are_its_inputs_and_test_data_names_are_checked(
    churn: Path, tmp_path: Path
) -> None:
    samples = churn / "steps" / "samples"
    tester = RuntimeTester(Project.load(churn), env=ENV, temp_root=tmp_path)
    result = tester.test_script("ModelCalibration")
    assert result.status is Status.PASS, result.reason
    assert result.inputs == {
        "evaluation_data": f"sample {samples / 'model_calibration' / 'evaluation_data'}",
        "model_input": f"sample {samples / 'model_calibration' / 'model_input'}",
    }
    toml = churn / "stepkit.toml"
    toml.write_text(toml.read_text() + 'ModelCalibration.model_inpt = "steps/samples"\n')
    broken = RuntimeTester(Project.load(churn), env=ENV, temp_root=tmp_path)
    result = broken.test_script("ModelCalibration")
    assert result.status is Status.ERROR
    assert result.reason == (
        "[test.data] ModelCalibration.model_inpt: ModelCalibration's contract has no input "
        "'model_inpt' (inputs: evaluation_data, model_input). Did you mean 'model_input'?"
    )


def test_a_job_type_s_own_samples_come_first(churn: Path, tmp_path: Path) -> None:
    own = churn / "steps" / "samples" / "tabular_preprocessing_testing" / "DATA"
    own.mkdir(parents=True)
    customers(own / "customers.csv")
    tester = RuntimeTester(Project.load(churn), env=ENV, temp_root=tmp_path)
    assert tester.test_script("TabularPreprocessing_testing").inputs == {"DATA": f"sample {own}"}
    assert tester.test_script("TabularPreprocessing").inputs["DATA"].startswith("synthetic")

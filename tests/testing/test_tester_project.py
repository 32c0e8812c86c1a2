"""The tester on the example project: names through the catalog, test all, pipelines, CLI."""

from __future__ import annotations

import csv
import json
import shutil
import textwrap
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

import stepkit
from stepkit.cli.app import app
from stepkit.errors import DagFileError, UnknownStepError
from stepkit.project import Project
from stepkit.testing import RuntimeTester, Status

ENV = {"LABEL_FIELD": "churned"}
#: what ``test all`` tests on the example: a step with job-type variants once per job type
CHURN_TESTS = [
    *(f"DataLoading_{job}" for job in ("calibration", "testing", "training", "validation")),
    "FeatureSelection_testing",
    "FeatureSelection_training",
    "GradientBoostingTraining",
    "MissingValueImputation_testing",
    "MissingValueImputation_training",
    "ModelCalibration",
    "ModelEvaluation",
    "ModelPackaging",
    *(
        f"TabularPreprocessing_{job}"
        for job in ("calibration", "testing", "training", "validation")
    ),
]


@pytest.fixture
def churn(tmp_path: Path, example_project: Path) -> Path:
    """A copy of the example project (the catalog writes its index under the project)."""
    root = tmp_path / "churn"
    shutil.copytree(example_project, root, ignore=shutil.ignore_patterns(".stepkit"))
    (tmp_path / "runs").mkdir()
    return root


@pytest.fixture
def tester(churn: Path, tmp_path: Path) -> RuntimeTester:
    return RuntimeTester(Project.load(churn), env=ENV, temp_root=tmp_path / "runs", keep=True)


#: Steps that need a trained model: the example ships one as sample data (make_samples.py).
NEEDS_A_MODEL = {"ModelCalibration", "ModelEvaluation"}


def without_test_env(churn: Path) -> Path:
    """The project with its ``[test] env`` section removed."""
    toml = churn / "stepkit.toml"
    text = toml.read_text()
    toml.write_text(text[: text.index("[test]")])
    return churn


def write_dag(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def test_runtime_tester_is_exported_lazily() -> None:
    assert stepkit.RuntimeTester is RuntimeTester


def test_all_scripts_of_the_example_run_on_synthetic_data(tester: RuntimeTester) -> None:
    results = tester.test_all(jobs=2)
    assert [r.name for r in results] == CHURN_TESTS
    for result in results:
        assert result.status is Status.PASS, (result.name, result.reason)
        if result.name in NEEDS_A_MODEL:  # the model comes from the step's sample data
            assert result.inputs["model_input"].startswith("sample "), result.inputs
        assert result.outputs, result.name
        for folder in result.outputs.values():
            assert any(p.is_file() and p.stat().st_size for p in folder.rglob("*")), folder


def test_all_of_one_workspace(tester: RuntimeTester) -> None:
    assert [r.name for r in tester.test_all(workspace="alice")] == [
        "FeatureSelection_testing",
        "FeatureSelection_training",
    ]


def test_script_by_node_name_synthesizes_inputs_from_contract_and_spec(
    tester: RuntimeTester,
) -> None:
    result = tester.test_script("GradientBoostingTraining")
    assert result.status is Status.PASS, result.reason
    # its input comes from TabularPreprocessing: a training job's three split files
    assert result.inputs == {
        "input_path": "synthetic csv (splits)",
        "hyperparameters_s3_uri": "synthetic json",
    }
    assert result.temp_dir is not None
    folder = result.temp_dir / "input" / "input_path"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.csv")) == [
        "test/test_processed_data.csv",
        "train/train_processed_data.csv",
        "val/val_processed_data.csv",
    ]
    table = (folder / "train" / "train_processed_data.csv").read_text()
    rows = list(csv.reader(table.splitlines()))
    assert rows[0] == ["id", "feature_1", "feature_2", "feature_3", "category", "churned"]
    assert len(rows) == 101
    hyper = result.temp_dir / "input" / "hyperparameters_s3_uri" / "hyperparameters.json"
    assert json.loads(hyper.read_text())["label_name"] == "churned"


def test_script_by_path_finds_its_step(tester: RuntimeTester, churn: Path) -> None:
    result = tester.test_script(churn / "steps" / "scripts" / "tabular_preprocessing.py")
    assert (result.name, result.status) == ("TabularPreprocessing", Status.PASS)


def test_unknown_step_name_suggests_close_ones(tester: RuntimeTester) -> None:
    with pytest.raises(UnknownStepError, match="Did you mean 'TabularPreprocessing'"):
        tester.test_script("TabularPreprocesing")


def test_data_folder_gives_the_inputs(tester: RuntimeTester, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "DATA").mkdir(parents=True)
    (data / "DATA" / "table.csv").write_text("id,churned\n1,0\n")
    result = tester.test_script("TabularPreprocessing", data=data)
    assert result.status is Status.PASS, result.reason
    assert result.inputs == {"DATA": f"data {data / 'DATA'}"}
    assert result.temp_dir is not None
    assert (result.temp_dir / "input" / "DATA" / "table.csv").read_text() == "id,churned\n1,0\n"


def test_data_folder_missing_an_input_is_an_error_with_did_you_mean(
    tester: RuntimeTester, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    (data / "DAT").mkdir(parents=True)
    result = tester.test_script("TabularPreprocessing", data=data)
    assert result.status is Status.ERROR
    assert result.reason == (
        f"--data {data} has no folder 'DATA' for a required input (has: DAT). Did you mean 'DAT'?"
    )


def test_project_test_env_is_used(churn: Path, tmp_path: Path) -> None:
    tester = RuntimeTester(Project.load(churn), temp_root=tmp_path / "runs")
    assert tester.test_script("DataLoading").status is Status.PASS  # [test] env in stepkit.toml
    bare = RuntimeTester(Project.load(without_test_env(churn)), temp_root=tmp_path / "runs")
    result = bare.test_script("DataLoading")
    assert result.status is Status.ERROR and "LABEL_FIELD" in (result.reason or "")


CHURN_DAG = """
    nodes:
      - DataLoading_training
      - TabularPreprocessing_training
      - GradientBoostingTraining
      - DataLoading_testing
      - TabularPreprocessing_testing
      - ModelEvaluation
    edges:
      - [DataLoading_training, TabularPreprocessing_training]
      - [TabularPreprocessing_training, GradientBoostingTraining]
      - [DataLoading_testing, TabularPreprocessing_testing]
      - [GradientBoostingTraining, ModelEvaluation]
      - [TabularPreprocessing_testing, ModelEvaluation]
"""


def test_pipeline_wires_each_input_to_what_upstream_wrote(
    tester: RuntimeTester, tmp_path: Path
) -> None:
    result = tester.test_pipeline(write_dag(tmp_path / "dag.yaml", CHURN_DAG))
    assert result.status is Status.PASS, [s.reason for s in result.steps]
    assert result.first_break is None
    steps = {s.name: s for s in result.steps}
    assert list(steps)[:2] == ["DataLoading_training", "DataLoading_testing"]
    assert steps["TabularPreprocessing_training"].inputs == {
        "DATA": "from DataLoading_training.DATA"
    }
    assert steps["GradientBoostingTraining"].inputs == {
        "input_path": "from TabularPreprocessing_training.processed_data",
        "hyperparameters_s3_uri": "synthetic json",
    }
    samples = tester.project.root / "steps" / "samples"  # type: ignore[union-attr]
    assert steps["ModelEvaluation"].inputs == {  # no upstream calibrates: the step's sample
        "model_input": "from GradientBoostingTraining.model_output",
        "processed_data": "from TabularPreprocessing_testing.processed_data",
        "calibration_input": f"sample {samples / 'model_evaluation' / 'calibration_input'}",
    }


def test_pipeline_reports_the_first_data_flow_break(tester: RuntimeTester, tmp_path: Path) -> None:
    dag = write_dag(
        tmp_path / "dag.yaml",
        """
        nodes: [DataLoading_training, GradientBoostingTraining, ModelEvaluation]
        edges:
          - [DataLoading_training, GradientBoostingTraining]
          - [GradientBoostingTraining, ModelEvaluation]
        """,
    )
    result = tester.test_pipeline(dag)
    assert result.status is Status.FAIL
    assert str(result.first_break) == (
        "GradientBoostingTraining: input 'input_path': required, but no upstream step "
        "provides it (upstream: DataLoading_training)"
    )
    assert [(s.name, s.status) for s in result.steps] == [
        ("DataLoading_training", Status.PASS),
        ("GradientBoostingTraining", Status.FAIL),
        ("ModelEvaluation", Status.SKIP),
    ]
    assert result.steps[2].reason == "upstream GradientBoostingTraining did not pass"
    assert result.temp_dir is not None and result.temp_dir.is_dir()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "nodes: [DataLoading_training, TabularPreprocesing_training]\n",
            "dag.yaml:1: no step named 'TabularPreprocesing_training'. "
            "Did you mean 'TabularPreprocessing_training'?",
        ),
        (
            "nodes: [DataLoading_training]\nedges: [[DataLoading_trainin, DataLoading_training]]\n",
            "dag.yaml:2: edge names 'DataLoading_trainin', which is not in 'nodes'. "
            "Did you mean 'DataLoading_training'?",
        ),
        (
            "nodes: [DataLoading_training, TabularPreprocessing_training]\n"
            "edges: [[DataLoading_training, TabularPreprocessing_training],"
            " [TabularPreprocessing_training, DataLoading_training]]\n",
            "the DAG has a cycle: ",
        ),
        ("steps: []\n", "dag.yaml:1: unknown key 'steps'."),
        ("nodes: [a\n", "is not valid YAML"),
    ],
)
def test_bad_dag_files(tester: RuntimeTester, tmp_path: Path, text: str, message: str) -> None:
    dag = tmp_path / "dag.yaml"
    dag.write_text(text)
    with pytest.raises(DagFileError) as caught:
        tester.test_pipeline(dag)
    assert str(caught.value).startswith(f"{dag}")
    assert message in str(caught.value)


# -- CLI ----------------------------------------------------------------------------------------


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        output += "".join(traceback.format_exception(result.exception))  # a crash is shown
    return result.exit_code, output


def test_cli_script_json(churn: Path) -> None:
    code, out = run_cli(
        "-p",
        str(churn),
        "test",
        "script",
        "DataLoading_training",
        "--json",
        "--env",
        "LABEL_FIELD=y",
        "--rows",
        "5",
    )
    assert code == 0, out
    data = json.loads(out)
    assert (data["name"], data["status"], data["temp_dir"]) == (
        "DataLoading_training",
        "PASS",
        None,
    )


def test_cli_script_that_did_not_run_exits_1_and_keeps_nothing(churn: Path) -> None:
    code, out = run_cli("-p", str(without_test_env(churn)), "test", "script", "DataLoading")
    assert code == 1
    assert "ERROR DataLoading" in out and "required env var(s) LABEL_FIELD not set" in out
    assert "kept: " not in out


def test_cli_script_that_failed_keeps_its_folder(tmp_path: Path) -> None:
    script = tmp_path / "boom.py"
    script.write_text("def main(input_paths, output_paths, environ_vars, job_args):\n    1 / 0\n")
    code, out = run_cli("test", "script", str(script))  # no project: import check only
    assert code == 1
    assert "the script is not part of a project: import check only" in out


def test_cli_bad_env_pair_is_a_usage_error(churn: Path) -> None:
    code, out = run_cli("-p", str(churn), "test", "script", "DataLoading", "--env", "NOEQUALS")
    assert code == 2
    assert "'NOEQUALS' is not KEY=VALUE" in out


def test_cli_all_writes_junit(churn: Path, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    code, out = run_cli("-p", str(churn), "test", "all", "--jobs", "2", "--junit", str(junit))
    assert code == 0, out  # the README's CI line passes on the example
    assert junit.exists(), out
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == str(len(CHURN_TESTS))
    assert [c.get("name") for c in suite if len(c.findall("failure") + c.findall("error"))] == []
    assert "16/16 passed (8 scripts)" in out
    code, out = run_cli("-p", str(without_test_env(churn)), "test", "all", "--junit", str(junit))
    assert code == 1, out
    errors = {c.get("name") for c in ET.parse(junit).getroot() if c.find("error") is not None}
    assert errors == {
        name
        for name in CHURN_TESTS
        if name.startswith(("DataLoading", "FeatureSelection", "TabularPreprocessing"))
        or name in ("ModelCalibration", "ModelEvaluation")
    }


def test_cli_pipeline(churn: Path, tmp_path: Path) -> None:
    dag = write_dag(tmp_path / "dag.yaml", CHURN_DAG)
    code, out = run_cli("-p", str(churn), "test", "pipeline", str(dag), "-e", "LABEL_FIELD=y")
    assert code == 0, out
    assert out.count("PASS") == 6

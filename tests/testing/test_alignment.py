"""Script ↔ contract alignment read statically, and the reasons a failed test gives."""

from __future__ import annotations

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
from stepkit.reads import read_main
from stepkit.testing import Status, Target, TestOptions
from stepkit.testing.alignment import mismatches
from stepkit.testing.script import run_test

CONTRACT = ScriptContract(
    entry_point="step.py",
    expected_input_paths={
        "eval_output": "/opt/ml/processing/input/eval",
        "model_input": "/opt/ml/processing/input/model",
    },
    expected_output_paths={"metrics": "/opt/ml/processing/output"},
    required_env_vars=["LABEL_FIELD"],
    job_arguments=[{"flag": "--job_type", "source": "job_type"}],
)

#: Reads input_paths["processed_data"] where the contract says eval_output, and fails
#: with a TypeError three frames deep (the issue's own case).
MISMATCHED = """
import os
from pathlib import Path


def load(folder):
    return _open(folder)


def _open(folder):
    return sorted(os.listdir(Path(folder)))


def main(input_paths, output_paths, environ_vars, job_args):
    label = environ_vars["LABEL_FIELD"]
    model = input_paths["model_input"]
    rows = load(input_paths.get("processed_data"))
    if "debug" in environ_vars:
        print(job_args.job_type, job_args.verbose)
    Path(output_paths["metrics"], "m.txt").write_text(str(rows))
"""


def write(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "scripts" / "step.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(textwrap.dedent(body).lstrip())
    return script


def test_reads_of_main_are_found_with_their_lines() -> None:
    reads = read_main(textwrap.dedent(MISMATCHED).lstrip())
    assert reads is not None
    assert [(r.param, r.name, r.line) for r in reads.reads] == [
        ("environ_vars", "LABEL_FIELD", 14),
        ("input_paths", "model_input", 15),
        ("input_paths", "processed_data", 16),
        ("environ_vars", "debug", 17),
        ("job_args", "job_type", 18),
        ("job_args", "verbose", 18),
        ("output_paths", "metrics", 19),
    ]
    assert reads.escapes == frozenset()


def test_mismatches_name_the_read_the_declared_names_and_close_ones(tmp_path: Path) -> None:
    script = write(tmp_path, MISMATCHED)
    found = {(m.kind, m.param, m.name): m for m in mismatches(script, CONTRACT)}
    assert set(found) == {
        ("undeclared", "input_paths", "processed_data"),
        ("undeclared", "environ_vars", "debug"),
        ("undeclared", "job_args", "verbose"),
        ("unread", "input_paths", "eval_output"),
    }
    read = found[("undeclared", "input_paths", "processed_data")]
    assert read.line == 16
    assert str(read) == (
        "main reads input_paths['processed_data'], which the contract does not declare "
        "(declared: eval_output, model_input)"
    )
    assert str(found[("undeclared", "job_args", "verbose")]) == (
        "main reads job_args.verbose, which the contract does not declare (declared: job_type)"
    )
    assert str(found[("unread", "input_paths", "eval_output")]) == (
        "main never reads required input 'eval_output' of the contract "
        "(input_paths reads: model_input, processed_data)"
    )


def test_a_close_name_is_suggested_and_an_optional_input_may_go_unread(tmp_path: Path) -> None:
    script = write(
        tmp_path,
        """
        def main(input_paths, output_paths, environ_vars, job_args):
            return input_paths["model_inpt"]
        """,
    )
    spec = StepSpecification(
        step_type="Step",
        node_type=NodeType.INTERNAL,
        dependencies=[
            DependencySpec(
                logical_name=name,
                dependency_type=DependencyType.PROCESSING_OUTPUT,
                required=name == "model_input",
            )
            for name in ("eval_output", "model_input")
        ],
    )
    found = mismatches(script, CONTRACT, spec)
    assert [(m.kind, m.name, m.suggestions) for m in found] == [
        ("undeclared", "model_inpt", ("model_input",)),
        ("unread", "model_input", ()),
    ]
    assert str(found[0]).endswith("Did you mean 'model_input'?")


def test_main_that_hands_input_paths_on_is_not_said_to_leave_inputs_unread(
    tmp_path: Path,
) -> None:
    script = write(
        tmp_path,
        """
        def helper(paths):
            return paths["eval_output"], paths["model_input"]

        def main(input_paths, output_paths, environ_vars, job_args):
            return helper(input_paths)
        """,
    )
    assert mismatches(script, CONTRACT) == []


@pytest.fixture
def options(tmp_path: Path) -> TestOptions:
    (tmp_path / "runs").mkdir()
    return TestOptions(
        timeout=60, temp_root=tmp_path / "runs", sandbox=False, env={"LABEL_FIELD": "y"}
    )


def test_a_failure_caused_by_an_undeclared_read_names_it(
    tmp_path: Path, options: TestOptions
) -> None:
    script = write(tmp_path, MISMATCHED)
    result = run_test(Target("Step", script, CONTRACT, job_type="training"), options)
    assert result.status is Status.FAIL
    assert result.reason.startswith(
        "main reads input_paths['processed_data'], which the contract does not declare "
        "(declared: eval_output, model_input) (step.py:16), so main raised TypeError: "
    ), result.reason
    assert result.exception is not None and result.exception.type == "TypeError"


def test_a_script_that_logs_an_error_and_returns_gives_its_error_line(
    tmp_path: Path, options: TestOptions
) -> None:
    script = write(
        tmp_path,
        """
        import logging

        def main(input_paths, output_paths, environ_vars, job_args):
            logging.info("starting")
            logging.error("could not reach the feature store: giving up")
            logging.warning("done")
        """,
    )
    contract = ScriptContract(
        entry_point="step.py", expected_output_paths={"out": "/opt/ml/processing/output"}
    )
    result = run_test(Target("Step", script, contract), options)
    assert result.status is Status.FAIL
    assert result.reason.endswith(
        "is an empty folder ("
        + str(result.outputs["out"])
        + "); the script logged: ERROR:root:could not reach the feature store: giving up"
    ), result.reason


def test_an_import_failure_beside_a_missing_env_var_is_a_fail_with_the_var_noted(
    tmp_path: Path, options: TestOptions
) -> None:
    script = write(
        tmp_path,
        """
        import not_installed_anywhere

        def main(input_paths, output_paths, environ_vars, job_args):
            pass
        """,
    )
    contract = ScriptContract(entry_point="step.py", required_env_vars=["REGION"])
    result = run_test(Target("Step", script, contract), options)
    assert result.status is Status.FAIL
    assert result.reason == (
        "import failed ModuleNotFoundError: No module named 'not_installed_anywhere' "
        "(also: required env var(s) REGION not set: pass --env REGION=… or set it under "
        "[test] env in stepkit.toml)"
    )


def test_catalog_check_reports_alignment_with_file_and_line(
    tmp_path: Path, example_project: Path
) -> None:
    root = tmp_path / "churn"
    shutil.copytree(example_project, root, ignore=shutil.ignore_patterns(".stepkit"))
    clean = CliRunner().invoke(app, ["-p", str(root), "catalog", "check"])
    assert clean.exit_code == 0, clean.output
    script = root / "steps" / "scripts" / "model_packaging.py"
    text = script.read_text()
    script.write_text(text.replace('input_paths["', 'input_paths["x_', 1))
    done = CliRunner().invoke(app, ["-p", str(root), "catalog", "check"])
    assert done.exit_code == 1
    lines = [line for line in done.output.splitlines() if line.startswith("alignment: ")]
    assert lines and lines[0].startswith(f"alignment: {script}:"), done.output
    assert "ModelPackaging: main reads input_paths['x_" in lines[0]
    assert "Did you mean" in lines[0]

"""Scripts written the way the framework's really are, each kind in a synthetic repository:
job-type readers, scripts in a package, argparse programs, missing job arguments."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepkit.cli.app import app
from stepkit.project import Project
from stepkit.testing import RuntimeTester, Status

WriteProject = Callable[..., Path]

TOML = """
[project]
name = "real"

[[workspaces]]
id = "shared"
path = "steps"
"""

#: A framework-style step: main reads job_args.job_type; __main__ parses --job_type.
JOB_TYPE_READER = """
import argparse
from pathlib import Path

def main(input_paths, output_paths, environ_vars, job_args):
    seen = sorted(vars(job_args))
    Path(output_paths["out"], "job.txt").write_text(f"{job_args.job_type} {seen}")

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--job_type", required=True)
    main({}, {"out": "/opt/ml/processing/output"}, {}, parser.parse_args())
"""

CONTRACT = """
from stepkit.components import ScriptContract

{name}_CONTRACT = ScriptContract(
    entry_point="{stem}.py",
    expected_output_paths={outputs},
    expected_arguments={{"template_version": "template version identifier"}},
    job_arguments=[{{"flag": "--job_type", "source": "job_type"}}],
)
"""


SPEC = """
from stepkit.components import NodeType, OutputSpec, StepSpecification, DependencyType

{name}_TRAINING_SPEC = StepSpecification(
    step_type="{step}_Training",
    node_type=NodeType.SOURCE,
    outputs=[OutputSpec(logical_name="out", output_type=DependencyType.PROCESSING_OUTPUT)],
)
"""


def spec(stem: str, step: str) -> str:
    """A training variant's spec: what makes ``<Step>_training`` a node name."""
    return SPEC.format(name=stem.upper(), step=step)


def contract(stem: str, outputs: str = '{"out": "/opt/ml/processing/output"}') -> str:
    return CONTRACT.format(name=stem.upper(), stem=stem, outputs=outputs)


@pytest.fixture
def repo(write_project: WriteProject, tmp_path: Path) -> Path:
    (tmp_path / "runs").mkdir()
    return write_project(
        {
            "stepkit.toml": TOML,
            "steps/scripts/__init__.py": "",
            "steps/scripts/helpers.py": "LABEL = 'from the package'\n",
            "steps/scripts/job_reader.py": JOB_TYPE_READER,
            "steps/contracts/job_reader_contract.py": contract("job_reader"),
            "steps/specs/job_reader_training_spec.py": spec("job_reader", "JobReader"),
            # a script of a package, with a relative import of a helper module
            "steps/scripts/package_user.py": """
                from pathlib import Path

                from .helpers import LABEL

                def main(input_paths, output_paths, environ_vars, job_args):
                    Path(output_paths["out"], "label.txt").write_text(f"{__name__}: {LABEL}")
            """,
            "steps/contracts/package_user_contract.py": contract("package_user"),
            # an argparse program: main() takes nothing and parses its own command line
            "steps/scripts/arg_program.py": """
                import argparse

                def main():
                    parser = argparse.ArgumentParser()
                    parser.add_argument("--job_type", required=True)
                    args = parser.parse_args()
                    print(f"program ran as {args.job_type}")

                if __name__ == "__main__":
                    main()
            """,
            "steps/contracts/arg_program_contract.py": contract("arg_program", "{}"),
            "steps/specs/arg_program_training_spec.py": spec("arg_program", "ArgProgram"),
        }
    )


def make_tester(repo: Path, tmp_path: Path, **options: object) -> RuntimeTester:
    return RuntimeTester(Project.load(repo), temp_root=tmp_path / "runs", **options)  # type: ignore[arg-type]


def test_a_job_type_reader_gets_the_nodes_job_type_and_never_a_description(
    repo: Path, tmp_path: Path
) -> None:
    result = make_tester(repo, tmp_path, keep=True).test_script("JobReader_training")
    assert result.status is Status.PASS, result.reason
    # template_version had only a description: it is not passed at all
    assert (result.outputs["out"] / "job.txt").read_text() == "training ['job_type']"


def test_a_missing_job_argument_says_stepkit_had_no_value_and_how_to_give_one(
    repo: Path, tmp_path: Path
) -> None:
    result = make_tester(repo, tmp_path).test_script("JobReader")
    assert result.status is Status.FAIL
    assert result.reason == (
        "main raised AttributeError: 'Namespace' object has no attribute 'job_type' "
        "(stepkit had no value for job argument job_type (--job_type): pass --arg "
        "job_type=… or set it under [test] args in stepkit.toml)"
    )


def test_arg_and_the_project_args_give_job_arguments(repo: Path, tmp_path: Path) -> None:
    toml = repo / "stepkit.toml"
    toml.write_text(toml.read_text() + '\n[test]\nargs = {job_type = "calibration"}\n')
    from_toml = make_tester(repo, tmp_path, keep=True).test_script("JobReader")
    assert from_toml.status is Status.PASS, from_toml.reason
    assert (from_toml.outputs["out"] / "job.txt").read_text().startswith("calibration ")
    given = make_tester(repo, tmp_path, keep=True, args={"job_type": "testing"})
    result = given.test_script("JobReader_training")  # --arg wins over the job type too
    assert (result.outputs["out"] / "job.txt").read_text().startswith("testing ")


def test_the_cli_takes_arg_name_value(repo: Path) -> None:
    done = CliRunner().invoke(
        app,
        ["--project", str(repo), "test", "script", "JobReader", "--arg", "job_type=validation"],
    )
    assert done.exit_code == 0, done.output
    assert "PASS" in done.output and "JobReader" in done.output


def test_a_script_in_a_package_runs_as_a_module_of_it(repo: Path, tmp_path: Path) -> None:
    result = make_tester(repo, tmp_path, keep=True).test_script("PackageUser")
    assert result.status is Status.PASS, result.reason
    text = (result.outputs["out"] / "label.txt").read_text()
    assert text == "scripts.package_user: from the package"


def test_an_argparse_program_runs_with_its_job_argument_flags(repo: Path, tmp_path: Path) -> None:
    result = make_tester(repo, tmp_path).test_script("ArgProgram_training")
    assert result.status is Status.PASS, result.reason
    assert result.stdout is not None and result.stdout.text == "program ran as training\n"
    assert [c.name for c in result.checks] == ["run", "outputs"]


def test_an_argparse_program_without_its_argument_fails_with_its_usage(
    repo: Path, tmp_path: Path
) -> None:
    result = make_tester(repo, tmp_path).test_script("ArgProgram")
    assert result.status is Status.FAIL
    assert result.reason == "called sys.exit(2)"
    assert result.stderr is not None
    assert "the following arguments are required: --job_type" in result.stderr.text


def test_json_shows_the_job_arguments_origin(repo: Path) -> None:
    done = CliRunner().invoke(
        app, ["--project", str(repo), "test", "script", "JobReader_training", "--json"]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["status"] == "PASS"

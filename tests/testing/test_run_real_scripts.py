"""``stepkit run`` on scripts written the way the framework's really are: job arguments
given with ``--arg``, argparse programs started with the contract's own flags, the
sandbox that maps container paths, and node inputs seeded from local files."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from stepkit import sandbox
from stepkit.cli.app import app
from stepkit.names import pascal_to_snake
from stepkit.plan.execute import RunOptions, run_dag

TOML = """\
[project]
name = "realrun"

[[workspaces]]
id = "shared"
path = "steps"
"""

#: A source step whose main reads two job arguments and writes them out.
JOB_WRITER = """
from pathlib import Path

def main(input_paths, output_paths, environ_vars, job_args):
    out = Path(output_paths["processed_data"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "args.json").write_text(
        __import__("json").dumps(vars(job_args), sort_keys=True)
    )
"""

#: An argparse program: main() takes nothing, parses --job-type (a hyphen: the
#: contract's spelling, not the attribute's) and writes where the env var says.
FLAG_PROGRAM = """
import argparse
import os
from pathlib import Path

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--job-type", required=True)
    parser.add_argument("--template_version", default="none")
    args = parser.parse_args()
    Path(os.environ["MARKER"]).write_text(f"{args.job_type} {args.template_version}")

if __name__ == "__main__":
    main()
"""


def write_step(
    steps: Path,
    name: str,
    script: str,
    *,
    inputs: dict[str, str] | None = None,
    outputs: dict[str, str] | None = None,
    job_arguments: list[dict[str, str]] | None = None,
    optional_env: dict[str, str] | None = None,
    source: bool = False,
) -> None:
    """A classic-layout step with a training variant: registry row, contract, spec, config
    and script, as the framework writes them."""
    stem = pascal_to_snake(name)
    inputs = inputs or {}
    outputs = {"processed_data": "/opt/ml/processing/output"} if outputs is None else outputs
    job_arguments = job_arguments or [{"flag": "--job_type", "source": "job_type"}]
    dependencies = "".join(
        f"DependencySpec(logical_name={k!r}, dependency_type=DependencyType.PROCESSING_OUTPUT,"
        f" required=True, semantic_keywords=['data'], compatible_sources=['JobWriter']),"
        for k in inputs
    )
    spec_outputs = "".join(
        f"OutputSpec(logical_name={k!r}, output_type=DependencyType.PROCESSING_OUTPUT,"
        " aliases=['input_data']),"
        for k in outputs
    )
    files = {
        f"contracts/{stem}_contract.py": (
            "from stepkit.components import ScriptContract\n"
            f"{stem.upper()}_CONTRACT = ScriptContract(entry_point={stem + '.py'!r}, "
            f"expected_input_paths={inputs!r}, expected_output_paths={outputs!r}, "
            "expected_arguments={'job_type': 'the job type'}, "
            f"job_arguments={job_arguments!r}, optional_env_vars={optional_env or {}!r})\n"
        ),
        f"specs/{stem}_training_spec.py": (
            "from stepkit.components import DependencySpec, DependencyType, NodeType, "
            "OutputSpec, StepSpecification\n"
            f"{stem.upper()}_TRAINING_SPEC = StepSpecification(step_type={name + '_Training'!r},"
            f" node_type=NodeType.{'SOURCE' if source else 'INTERNAL'},"
            f" dependencies=[{dependencies}], outputs=[{spec_outputs}])\n"
        ),
        f"configs/config_{stem}_step.py": (
            "from stepkit.components import StepConfig\n\n\n"
            f"class {name}Config(StepConfig):\n    label_field: str = 'label'\n"
        ),
        f"builders/builder_{stem}_step.py": (
            "from stepkit.components import StepBuilder\n\n\n"
            f"class {name}StepBuilder(StepBuilder):\n    pass\n"
        ),
        f"scripts/{stem}.py": textwrap.dedent(script).lstrip(),
    }
    registry = steps / "registry.toml"
    registry.parent.mkdir(parents=True, exist_ok=True)
    with registry.open("a", encoding="utf-8") as handle:
        handle.write(
            f"[steps.{name}]\nconfig_class = '{name}Config'\n"
            f"builder_step_name = '{name}StepBuilder'\nspec_type = '{name}'\n"
            "sagemaker_step_type = 'Processing'\ndescription = 'a step'\n"
            "job_types = ['training']\n\n"
        )
    for rel, text in files.items():
        path = steps / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.fixture
def bwrap() -> None:
    """Under CI (``CI=true``) a sandbox that cannot run fails the test; locally it skips."""
    why = sandbox.unavailable()
    if why is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI needs the sandbox: {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    steps = root / "steps"
    steps.mkdir(parents=True)
    (root / "stepkit.toml").write_text(TOML, encoding="utf-8")
    write_step(steps, "JobWriter", JOB_WRITER, source=True)
    write_step(
        steps,
        "FlagProgram",
        FLAG_PROGRAM,
        outputs={},
        job_arguments=[{"flag": "--job-type", "source": "job_type"}],
        optional_env={"MARKER": str(tmp_path / "marker.txt")},
        source=True,
    )
    (root / "writer.yaml").write_text("name: writer\nnodes: [JobWriter_training]\nedges: []\n")
    (root / "program.yaml").write_text("name: program\nnodes: [FlagProgram_training]\nedges: []\n")
    return root


def written_args(result: Any) -> dict[str, str]:
    folder = Path(result.stages["JobWriter_training"].outputs["processed_data"]["path"])
    loaded: dict[str, str] = json.loads((folder / "args.json").read_text())
    return loaded


def test_run_arg_gives_a_job_argument_and_is_part_of_the_cache_key(project: Path) -> None:
    plain = run_dag(project, project / "writer.yaml")
    assert written_args(plain) == {"job_type": "training"}
    given = run_dag(
        project, project / "writer.yaml", options=RunOptions(args={"template_version": "v2"})
    )
    assert given.stages["JobWriter_training"].status.value == "completed"  # not a cache hit
    assert written_args(given) == {"job_type": "training", "template_version": "v2"}
    # --arg wins over the node's job type, and a flag spelling names the same argument
    over = run_dag(project, project / "writer.yaml", options=RunOptions(args={"--job-type": "x"}))
    assert written_args(over)["job_type"] == "x"


def test_a_program_gets_the_contracts_own_flag_spelling(project: Path, tmp_path: Path) -> None:
    done = CliRunner().invoke(
        app,
        [
            "--project",
            str(project),
            "run",
            str(project / "program.yaml"),
            "--arg",
            "template_version=v3",
            "--json",
        ],
    )
    assert done.exit_code == 0, done.output
    assert (tmp_path / "marker.txt").read_text() == "training v3"


def test_run_arg_that_is_not_name_value_is_refused(project: Path) -> None:
    done = CliRunner().invoke(
        app, ["--project", str(project), "run", str(project / "writer.yaml"), "--arg", "oops"]
    )
    assert done.exit_code == 2
    assert "'oops' is not KEY=VALUE" in done.output


#: An argparse program that reads and writes fixed container paths only.
FIXED_READER = """
import argparse
import json

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--job_type", required=True)
    args = parser.parse_args()
    given = json.load(open("/opt/ml/processing/input/data/args.json"))
    with open("/opt/ml/processing/output/seen.txt", "w") as handle:
        handle.write(f"{args.job_type} read {given}")

if __name__ == "__main__":
    main()
"""

#: What some of the framework's scripts do at import: rewrite the interpreter's packages.
SITE_WRITER = """
import site

open(site.getsitepackages()[0] + "/stepkit_run_probe.pth", "w").write("x")

def main(input_paths, output_paths, environ_vars, job_args):
    pass
"""

#: A script that tries to change its input: in a run, a folder of the artifact store.
INPUT_WRITER = """
from pathlib import Path

def main(input_paths, output_paths, environ_vars, job_args):
    Path(input_paths["input_data"], "args.json").write_text("changed")
"""


@pytest.fixture
def chained(project: Path) -> Path:
    steps = project / "steps"
    for name, script in (
        ("FixedReader", FIXED_READER),
        ("SiteWriter", SITE_WRITER),
        ("InputWriter", INPUT_WRITER),
    ):
        write_step(steps, name, script, inputs={"input_data": "/opt/ml/processing/input/data"})
        (project / f"{pascal_to_snake(name)}.yaml").write_text(
            f"name: {name}\nnodes: [JobWriter_training, {name}_training]\n"
            f"edges: [[JobWriter_training, {name}_training]]\n"
        )
    return project


def test_run_sandbox_maps_container_paths_for_a_program(bwrap: None, chained: Path) -> None:
    done = CliRunner().invoke(
        app, ["--project", str(chained), "run", str(chained / "fixed_reader.yaml"), "--sandbox"]
    )
    assert done.exit_code == 0, done.output
    result = run_dag(chained, chained / "fixed_reader.yaml", options=RunOptions(sandbox=True))
    stage = result.stages["FixedReader_training"]
    assert stage.status.value == "cached"  # the CLI's run made it; the sandbox is no key part
    seen = Path(stage.outputs["processed_data"]["path"]) / "seen.txt"
    assert seen.read_text() == "training read {'job_type': 'training'}"


def test_run_sandbox_from_the_project_file_keeps_site_packages_as_they_were(
    bwrap: None, chained: Path
) -> None:
    import site

    toml = chained / "stepkit.toml"
    toml.write_text(toml.read_text() + "\n[run]\nsandbox = true\n")
    site_packages = Path(site.getsitepackages()[0])
    result = run_dag(chained, chained / "site_writer.yaml")
    stage = result.stages["SiteWriter_training"]
    assert stage.status.value == "failed"
    assert stage.error_message == (
        "Stage 'SiteWriter_training' raised OSError: [Errno 30] Read-only file system: "
        f"'{site_packages / 'stepkit_run_probe.pth'}' "
        "(the sandbox keeps everything outside the test folders read-only)"
    )
    assert not (site_packages / "stepkit_run_probe.pth").exists()


def test_run_sandbox_keeps_the_stores_files_read_only(bwrap: None, chained: Path) -> None:
    result = run_dag(chained, chained / "input_writer.yaml", options=RunOptions(sandbox=True))
    assert result.stages["InputWriter_training"].status.value == "failed"
    written = Path(result.stages["JobWriter_training"].outputs["processed_data"]["path"])
    assert json.loads((written / "args.json").read_text()) == {"job_type": "training"}


def test_run_sandbox_where_bwrap_cannot_run_warns_and_runs_guarded(
    chained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stepkit.sandbox import unavailable

    write_step(
        chained / "steps",
        "GuardReader",
        """
        import os
        from pathlib import Path

        def main(input_paths, output_paths, environ_vars, job_args):
            seen = f"{os.environ.get('PIP_NO_INDEX')} {os.environ.get('HTTPS_PROXY')}"
            Path(output_paths["processed_data"], "seen.txt").write_text(seen)
        """,
    )
    (chained / "guard.yaml").write_text("name: guard\nnodes: [GuardReader_training]\nedges: []\n")
    empty = tmp_path / "no-bwrap-here"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # bwrap is not found, here and in every stage
    unavailable.cache_clear()
    try:
        toml = chained / "stepkit.toml"
        toml.write_text(toml.read_text() + "\n[run]\nsandbox = true\n")
        done = CliRunner().invoke(
            app, ["--project", str(chained), "run", str(chained / "guard.yaml"), "--json"]
        )
    finally:
        unavailable.cache_clear()
    assert done.exit_code == 0, done.output
    assert done.stderr.splitlines()[0] == (
        "warning: the sandbox is off: bwrap is not installed (Debian: apt-get install "
        "bubblewrap); container paths are not mapped, pip and proxies are disabled through "
        "the environment"
    )
    folder = json.loads(done.stdout)["outputs"]["GuardReader_training"]["processed_data"]
    assert (Path(folder) / "seen.txt").read_text() == "1 http://127.0.0.1:9"


def test_run_input_seeds_a_nodes_input_into_the_store_and_its_cache_key(
    chained: Path, tmp_path: Path
) -> None:
    (chained / "alone.yaml").write_text("name: alone\nnodes: [InputReader_training]\nedges: []\n")
    write_step(
        chained / "steps",
        "InputReader",
        """
        from pathlib import Path

        def main(input_paths, output_paths, environ_vars, job_args):
            given = Path(input_paths["input_data"], "args.json").read_text()
            Path(output_paths["processed_data"], "copy.txt").write_text(given)
        """,
        inputs={"input_data": "/opt/ml/processing/input/data"},
    )
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "args.json").write_text('{"from": "a local folder"}')
    options = RunOptions(inputs={"InputReader_training.input_data": str(seed)})
    first = run_dag(chained, chained / "alone.yaml", options=options)
    stage = first.stages["InputReader_training"]
    assert stage.status.value == "completed", stage.error_message
    copy = Path(stage.outputs["processed_data"]["path"]) / "copy.txt"
    assert copy.read_text() == '{"from": "a local folder"}'
    assert (seed / "args.json").exists()  # copied into the store, not moved
    again = run_dag(chained, chained / "alone.yaml", options=options)
    assert again.stages["InputReader_training"].status.value == "cached"
    (seed / "args.json").write_text('{"from": "an edited folder"}')
    edited = run_dag(chained, chained / "alone.yaml", options=options)
    assert edited.stages["InputReader_training"].status.value == "completed"


def test_a_resume_runs_with_the_inputs_and_args_the_run_was_made_with(
    chained: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "fail-once"
    gate.touch()
    (chained / "alone.yaml").write_text("name: alone\nnodes: [InputReader_training]\nedges: []\n")
    write_step(
        chained / "steps",
        "InputReader",
        f"""
        from pathlib import Path

        def main(input_paths, output_paths, environ_vars, job_args):
            if Path({str(gate)!r}).exists():
                raise SystemExit(3)
            given = Path(input_paths["input_data"], "args.json").read_text()
            Path(output_paths["processed_data"], "copy.txt").write_text(given + job_args.extra)
        """,
        inputs={"input_data": "/opt/ml/processing/input/data"},
    )
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "args.json").write_text("seeded ")
    base = ["--project", str(chained)]
    run = [*base, "run", str(chained / "alone.yaml"), "--arg", "extra=given"]
    first = CliRunner().invoke(app, [*run, "--input", f"InputReader_training.input_data={seed}"])
    assert first.exit_code == 1, first.output
    gate.unlink()
    # planned again with its seed (unwired otherwise) and its --arg
    resumed = CliRunner().invoke(app, [*base, "runs", "resume", "latest", "--json"])
    assert resumed.exit_code == 0, resumed.output
    folder = json.loads(resumed.stdout)["outputs"]["InputReader_training"]["processed_data"]
    copy = Path(folder) / "copy.txt"
    assert copy.read_text() == "seeded given"
    # `run --resume` with other options would mix two settings in one run: refused
    run_id = json.loads(resumed.stdout)["run_id"]
    seeded = ["--input", f"InputReader_training.input_data={seed}", "--resume", run_id]
    same = CliRunner().invoke(app, [*run, *seeded])
    assert same.exit_code == 0, same.output  # the same options: allowed
    alone = str(chained / "alone.yaml")
    other = CliRunner().invoke(app, [*base, "run", alone, "--arg", "extra=other", *seeded])
    assert other.exit_code == 1, other.output
    assert f"Run {run_id!r} was made with --arg extra=given, not extra=other" in str(
        other.exception
    )


def test_plan_input_shows_the_seed_in_place_of_a_wire(chained: Path, tmp_path: Path) -> None:
    (chained / "alone.yaml").write_text("name: alone\nnodes: [InputWriter_training]\nedges: []\n")
    base = ["--project", str(chained), "plan", str(chained / "alone.yaml"), "--json"]
    unwired = CliRunner().invoke(app, base)
    assert "no upstream output satisfies required input 'input_data'" in str(unwired.exception)
    seed = tmp_path / "seed"
    seed.mkdir()
    done = CliRunner().invoke(app, [*base, "--input", f"InputWriter_training.input_data={seed}"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["wiring"] == [
        {
            "node": "InputWriter_training",
            "input": "input_data",
            "from": str(seed),
            "score": None,
            "why": "--input",
        }
    ]
    seeded = [*base, "--input", f"InputWriter_training.input_data={seed}"]
    wrong = CliRunner().invoke(app, [*seeded, "--input", f"InputWriter_training.input_dat={seed}"])
    assert "--input names no input 'input_dat' of its contract" in str(wrong.exception)


def test_run_input_names_are_checked(chained: Path, tmp_path: Path) -> None:
    done = CliRunner().invoke(
        app,
        [
            "--project",
            str(chained),
            "run",
            str(chained / "fixed_reader.yaml"),
            "--input",
            f"FixedReader_training.input_dta={tmp_path}",
        ],
    )
    assert str(done.exception) == (
        "FixedReader_training: --input names no input 'input_dta' of its contract "
        "(inputs: input_data). Did you mean 'input_data'?"
    )


def test_an_input_whose_container_path_names_a_file_gets_that_file(
    chained: Path, tmp_path: Path
) -> None:
    write_step(
        chained / "steps",
        "HyperReader",
        """
        from pathlib import Path

        def main(input_paths, output_paths, environ_vars, job_args):
            given = Path(input_paths["hyperparameters"])
            Path(output_paths["processed_data"], "hp.txt").write_text(
                f"{given.name}: {given.read_text()}"
            )
        """,
        inputs={"hyperparameters": "/opt/ml/input/config/hyperparameters.json"},
    )
    (chained / "hyper.yaml").write_text("name: hyper\nnodes: [HyperReader_training]\nedges: []\n")
    seed = tmp_path / "hyperparameters.json"
    seed.write_text('{"max_iter": 3}')
    options = RunOptions(inputs={"HyperReader_training.hyperparameters": str(seed)})
    result = run_dag(chained, chained / "hyper.yaml", options=options)
    stage = result.stages["HyperReader_training"]
    assert stage.status.value == "completed", stage.error_message
    written = Path(stage.outputs["processed_data"]["path"]) / "hp.txt"
    assert written.read_text() == 'hyperparameters.json: {"max_iter": 3}'


def test_test_all_runs_a_step_with_job_types_once_per_job_type(
    project: Path, tmp_path: Path
) -> None:
    from stepkit.project import Project
    from stepkit.testing import RuntimeTester

    (tmp_path / "runs").mkdir()
    tester = RuntimeTester(Project.load(project), keep=True, temp_root=tmp_path / "runs")
    (result,) = [r for r in tester.test_all() if r.name.startswith("JobWriter")]
    assert (result.name, result.status.value) == ("JobWriter_training", "PASS"), result.reason
    written = json.loads((result.outputs["processed_data"] / "args.json").read_text())
    assert written == {"job_type": "training"}  # what the framework's scripts read

"""The CLI edge: exit codes, one-line errors, JSON output, help on every command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stepkit.cli import main
from stepkit.cli.app import app


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == "stepkit 0.1.0"


def test_registry_list_json_is_stable(
    capsys: pytest.CaptureFixture[str], example_project: Path
) -> None:
    code, out, _ = run(
        capsys, "-p", str(example_project), "registry", "list", "--json", "-w", "alice"
    )
    assert code == 0
    data = json.loads(out)
    assert data["workspace"] == "alice"
    names = [s["name"] for s in data["steps"]]
    assert names == sorted(names) and "FeatureSelection" in names
    step = next(s for s in data["steps"] if s["name"] == "FeatureSelection")
    assert set(step) == {
        "name",
        "config_class",
        "builder_step_name",
        "spec_type",
        "sagemaker_step_type",
        "description",
        "job_types",
        "workspace_id",
        "source",
        "overridden_fields",
    }
    assert step["workspace_id"] == "alice"  # derived from the interface file
    assert step["source"].endswith("interfaces/feature_selection.step.yaml:6")


def test_registry_list_filters_by_type(
    capsys: pytest.CaptureFixture[str], example_project: Path
) -> None:
    code, out, _ = run(
        capsys, "-p", str(example_project), "registry", "list", "--type", "Training", "--json"
    )
    assert code == 0
    assert [s["name"] for s in json.loads(out)["steps"]] == ["GradientBoostingTraining"]


def test_unknown_step_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], example_project: Path
) -> None:
    code, out, err = run(capsys, "-p", str(example_project), "registry", "show", "ModelEvaluaton")
    assert code == 1 and out == ""
    assert (
        err == "error: No step named 'ModelEvaluaton'. Did you mean 'ModelEvaluation', "
        "'ModelCalibration', 'ModelRegistration'?\n"
    )


def test_unknown_workspace_suggests(
    capsys: pytest.CaptureFixture[str], example_project: Path
) -> None:
    code, _, err = run(capsys, "-p", str(example_project), "registry", "list", "-w", "alicia")
    assert code == 1 and "Did you mean 'alice'?" in err and err.count("\n") == 1


def test_no_project_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "-p", str(tmp_path), "registry", "list")
    assert code == 1 and err.startswith("error: No stepkit.toml found")


def test_show_and_conflicts(capsys: pytest.CaptureFixture[str], example_project: Path) -> None:
    code, out, _ = run(
        capsys, "-p", str(example_project), "registry", "show", "ModelEvaluation", "-w", "bob"
    )
    assert code == 0 and "(bob)" in out and "overridden_fields" in out
    code, out, _ = run(capsys, "-p", str(example_project), "registry", "conflicts", "--json")
    data = {r["workspace_id"]: r for r in json.loads(out)}
    assert data["alice"]["defines"] == ["FeatureSelection"]
    assert data["bob"]["overrides"][0]["fields"]["description"]["new"].endswith("(bob)")
    code, out, _ = run(capsys, "-p", str(example_project), "registry", "conflicts")
    assert "adds      FeatureSelection" in out and "overrides ModelEvaluation" in out


def test_check_exit_codes(
    capsys: pytest.CaptureFixture[str], example_project: Path, tmp_path: Path
) -> None:
    code, out, _ = run(capsys, "-p", str(example_project), "registry", "check")
    assert code == 0 and "0 error(s)" in out
    (tmp_path / "steps").mkdir()
    (tmp_path / "stepkit.toml").write_text(
        '[project]\nname="x"\n[[workspaces]]\nid="core"\npath="steps"\n'
    )
    (tmp_path / "steps/step_names.py").write_text(
        'STEP_NAMES = {"bad_name": {"config_class": "C", "builder_step_name": "B",'
        ' "spec_type": "bad_name", "sagemaker_step_type": "Processing"}}\n'
    )
    code, out, _ = run(capsys, "-p", str(tmp_path), "registry", "check")
    assert code == 1
    assert "step_names.py:1: error: bad_name: name is not PascalCase" in out


def test_export_round_trips_through_the_python_reader(
    capsys: pytest.CaptureFixture[str], example_project: Path, tmp_path: Path
) -> None:
    target = tmp_path / "exported" / "step_names.py"
    code, _, _ = run(
        capsys,
        "-p",
        str(example_project),
        "registry",
        "export",
        "--format",
        "python",
        "-w",
        "alice",
        "-o",
        str(target),
    )
    assert code == 0
    from stepkit.registry import Registry
    from stepkit.registry.sources import read_registry

    source = read_registry(target, "core")
    exported = Registry({"core": source}, ["core"])
    original = Registry.load(__import__("stepkit").Project.load(example_project))
    assert dict(exported.classic()) == dict(original.classic("alice"))
    code, out, _ = run(capsys, "-p", str(example_project), "registry", "export")
    assert json.loads(out)["DataLoading"]["config_class"] == "DataLoadingConfig"


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str], example_project: Path) -> None:
    code, _, err = run(capsys, "-p", str(example_project), "registry", "export", "--format", "yaml")
    assert code == 2 and "yaml" in err


def test_traceback_only_with_debug(example_project: Path) -> None:
    args = [sys.executable, "-m", "stepkit", "-p", str(example_project), "registry", "show", "Nope"]
    plain = subprocess.run(args, capture_output=True, text=True)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    debug = subprocess.run([*args[:3], "--debug", *args[3:]], capture_output=True, text=True)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def _commands(group: object, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    import typer.main

    click_group = typer.main.get_command(group)  # type: ignore[arg-type]
    found: list[tuple[tuple[str, ...], object]] = []

    def walk(cmd: object, path: tuple[str, ...]) -> None:
        found.append((path, cmd))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, (*path, name))

    walk(click_group, prefix)
    return found


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, cmd in _commands(app):
        if not getattr(cmd, "help", None):
            missing.append(" ".join(path) or "stepkit")
        for param in getattr(cmd, "params", []):
            if getattr(param, "param_type_name", "") == "option" and not getattr(
                param, "help", None
            ):
                missing.append(f"{' '.join(path)} {param.opts[0]}")
    assert missing == []


def test_registry_list_type_typo_exits_2_with_a_suggestion(
    capsys: pytest.CaptureFixture[str], example_project: Path
) -> None:
    code, _, err = run(capsys, "-p", str(example_project), "registry", "list", "-t", "Procesing")
    assert code == 2
    assert "no step type 'Procesing'; did you mean 'Processing'?" in err
    code, _, err = run(capsys, "-p", str(example_project), "registry", "list", "--type", "Zzz")
    assert code == 2 and "one of Base, Condition," in err
    code, out, _ = run(capsys, "-p", str(example_project), "registry", "list", "-t", "Training")
    assert code == 0 and "GradientBoostingTraining" in out and "DataLoading" not in out


# -- output that survives a pipe ------------------------------------------------------------


def _stepkit(*args: str) -> subprocess.CompletedProcess[str]:
    """The console script as a shell runs it, stdout and stderr each a pipe."""
    command = [str(Path(sys.executable).with_name("stepkit")), *args]
    return subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)


def test_a_run_in_a_pipe_ends_its_table_lists_outputs_and_has_one_duration(
    tmp_path: Path,
) -> None:
    import re

    from e2e.conftest import write_tiny_project

    root = write_tiny_project(tmp_path / "tiny")
    report = tmp_path / "r.html"
    done = _stepkit("-p", str(root), "run", str(root / "dag.yaml"), "--report", str(report))
    assert done.returncode == 0, done.stderr
    err = done.stderr.splitlines()
    # the live table is printed once, whole, and its last line ends before the next one
    assert err[-2].startswith("└") and err[-2].endswith("┘")
    assert err[-1] == f"report: {report}"
    title = re.search(r"run (\S+) — (.+ s)$", done.stderr.splitlines()[0].strip())
    assert title is not None
    run_id, live_seconds = title.groups()
    out = done.stdout.splitlines()
    assert out[0] == f"run {run_id}: completed in {live_seconds} (3 completed)"
    folder = f"outputs in {root / '.stepkit' / 'artifacts' / 'runs' / run_id}/:"
    assert out[1] == folder
    assert out[2:] == ["  Make/numbers", "  Double/doubled", "  Report/report"]
    listed = _stepkit("-p", str(root), "runs", "list").stdout.splitlines()
    assert listed[0].split() == ["run", "pipeline", "status", "created", "duration", "retries"]
    cells = listed[1].split()
    assert cells[:3] == [run_id, "tiny", "completed"] and cells[5:7] == live_seconds.split()
    shown = _stepkit("-p", str(root), "runs", "show", run_id).stdout.splitlines()
    assert shown[0].endswith(f"duration {live_seconds}")


def test_option_values_are_checked_before_anything_is_drawn(tmp_path: Path) -> None:
    from e2e.conftest import write_tiny_project

    root = write_tiny_project(tmp_path / "tiny")
    dag = str(root / "dag.yaml")
    bad_timeout = _stepkit("-p", str(root), "run", dag, "--timeout", "-1")
    assert bad_timeout.returncode == 2 and bad_timeout.stdout == ""
    assert bad_timeout.stderr.splitlines()[-1] == (
        "Error: Invalid value for --timeout: -1 is not a number of seconds above zero"
    )
    bad_refresh = _stepkit("-p", str(root), "run", dag, "--refresh", "Doubel")
    assert bad_refresh.returncode == 1 and bad_refresh.stdout == ""
    assert bad_refresh.stderr == (
        "error: Doubel: --refresh names no node of the DAG. Did you mean 'Double'?\n"
    )
    assert _stepkit("-p", str(root), "runs", "list").stdout == "No runs recorded yet.\n"


def test_tables_never_cut_ids_paths_or_digests() -> None:
    from rich.console import Console

    from stepkit.cli.common import PIPE_WIDTH, table

    digest = "ab" * 32
    path = "runs/" + "/".join(f"folder{i}" for i in range(30)) + "/file.csv"
    shown = table("sha256", "path", "note")
    shown.add_row(digest, path, "a note of some words")
    piped = Console(width=PIPE_WIDTH, file=sys.stdout, soft_wrap=True)
    with piped.capture() as captured:
        piped.print(shown)
    rows = [line for line in captured.get().splitlines() if digest in line]
    assert len(rows) == 1 and path in rows[0]  # in a pipe: one line, whole
    narrow = Console(width=60, file=sys.stdout)
    with narrow.capture() as captured:
        narrow.print(shown)
    cells = "".join(
        line.split("│")[1].strip() for line in captured.get().splitlines() if line.count("│") > 2
    )
    assert cells == digest  # on a narrow terminal: folded onto further lines, never cut


def test_durations_read_one_way_everywhere() -> None:
    from stepkit.cli.common import format_duration
    from stepkit.pipeline.report.units import format_duration as on_the_page

    assert format_duration is on_the_page
    assert [format_duration(s) for s in (None, 0.032, 0.39, 11.62, 200)] == [
        "–",
        "0.032 s",
        "0.390 s",
        "11.6 s",
        "3 min 20.0 s",
    ]


# -- did you mean, wherever a value comes from a set -----------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("catalog", "list", "-j", "trainig"),
            "Invalid value for --job-type: no job type 'trainig'; did you mean 'training'?",
        ),
        (
            ("catalog", "list", "--type", "Procesing"),
            "Invalid value for --type: no step type 'Procesing'; did you mean 'Processing'?",
        ),
        (
            ("catalog", "search", "data", "-j", "validaton"),
            "Invalid value for --job-type: no job type 'validaton'; did you mean 'validation' or "
            "'calibration'?",
        ),
        (
            ("run", "dag.yaml", "--executor", "proces"),
            "Invalid value for --executor: no executor 'proces'; did you mean 'process'?",
        ),
        (
            ("run", "dag.yaml", "--executor", "threads"),
            "Invalid value for --executor: no executor 'threads'; one of dask-local, local, "
            "process, dask://HOST:PORT.",
        ),
    ],
)
def test_a_value_from_a_set_exits_2_with_suggestions(
    capsys: pytest.CaptureFixture[str],
    example_project: Path,
    args: tuple[str, ...],
    message: str,
) -> None:
    code, out, err = run(capsys, "-p", str(example_project), *args)
    assert code == 2 and out == ""
    assert err.splitlines()[-1] == f"Error: {message}"


def test_a_filter_that_names_a_known_value_may_still_be_empty(
    capsys: pytest.CaptureFixture[str], example_project: Path
) -> None:
    code, out, _ = run(
        capsys, "-p", str(example_project), "catalog", "list", "-t", "Condition", "--json"
    )
    assert (code, json.loads(out)) == (0, {"steps": []})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("catalog", "variants", "Tabular"),
            "error: No step named 'Tabular'. Did you mean 'TabularPreprocessing'?",
        ),
        (
            ("catalog", "variants", "Preprocessing"),
            "error: No step named 'Preprocessing'. Did you mean 'TabularPreprocessing'?",
        ),
        (
            ("registry", "show", "Model"),
            "error: No step named 'Model'. Did you mean 'ModelPackaging', 'ModelEvaluation', "
            "'ModelCalibration'?",
        ),
        (("catalog", "show", "Zzz"), "error: No step named 'Zzz'."),
    ],
)
def test_a_step_name_that_is_only_a_part_suggests_the_whole(
    capsys: pytest.CaptureFixture[str],
    example_project: Path,
    args: tuple[str, ...],
    message: str,
) -> None:
    code, _, err = run(capsys, "-p", str(example_project), *args)
    assert (code, err) == (1, message + "\n")


def test_runs_logs_of_an_unknown_stage_lists_the_stages(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from stepkit import Pipeline
    from stepkit.project import Project
    from stepkit.state import SQLiteStateRepository

    (tmp_path / "steps").mkdir()
    (tmp_path / "stepkit.toml").write_text(
        '[project]\nname = "p"\n[[workspaces]]\nid = "core"\npath = "steps"\n'
    )
    pipe = Pipeline("demo")
    pipe.add("load", lambda context: {"rows": 3})
    pipe.add("train", lambda context: None, depends_on=["load"])
    state = SQLiteStateRepository.for_project(Project.load(tmp_path))
    try:
        run_id = pipe.run(state=state).run_id
    finally:
        state.close()
    code, _, err = run(capsys, "-p", str(tmp_path), "runs", "logs", run_id, "--stage", "Nope")
    assert code == 2
    assert err.splitlines()[-1] == (
        "Error: Invalid value for --stage: no stage 'Nope'; one of load, train."
    )
    code, _, err = run(capsys, "-p", str(tmp_path), "runs", "logs", run_id, "--stage", "trian")
    assert code == 2 and err.splitlines()[-1].endswith("did you mean 'train'?")


def test_a_mistyped_job_type_of_a_script_suggests_the_variants(
    capsys: pytest.CaptureFixture[str], example_project: Path
) -> None:
    code, _, err = run(capsys, "-p", str(example_project), "test", "script", "DataLoading_trainig")
    assert (code, err) == (
        1,
        "error: No job-type variant named 'DataLoading_trainig'. Did you mean "
        "'DataLoading_training', 'DataLoading_testing', 'DataLoading_calibration'?\n",
    )


# -- tidy edges ------------------------------------------------------------------------------


def test_messages_carry_no_pydantic_wording(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "steps").mkdir()
    (tmp_path / "stepkit.toml").write_text(
        '[project]\nname = "p"\n[[workspaces]]\nid = "co re"\npath = "steps"\n'
    )
    code, out, err = run(capsys, "-p", str(tmp_path), "catalog", "list")
    assert code == 1 and out == ""
    assert err == (
        f"error: {tmp_path / 'stepkit.toml'}:4: workspaces.0.id: must be letters, digits, "
        "'_', '-' or '.' (got 'co re').\n"
    )


def test_test_pipeline_lines_up_its_columns(tmp_path: Path) -> None:
    from e2e.conftest import write_tiny_project

    root = write_tiny_project(tmp_path / "tiny")
    done = _stepkit("-p", str(root), "test", "pipeline", str(root / "dag.yaml"), "--no-sandbox")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("PASS")]
    assert [line.split()[1] for line in lines] == ["Make", "Double", "Report"]
    # the time and the memory end in the same column on every line
    assert len({line.index(" s ") for line in lines}) == 1
    assert len({len(line) for line in lines}) == 1


def test_verify_and_import_manifest_start_with_their_first_line(
    example_project: Path, tmp_path: Path
) -> None:
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(example_project, root, ignore=shutil.ignore_patterns(".stepkit"))
    verify = _stepkit("-p", str(root), "artifacts", "verify")
    assert verify.stderr == "" and verify.stdout.startswith("0 objects checked")
    manifest = root / "manifest.jsonl"
    manifest.write_text("not json\n")
    imported = _stepkit("-p", str(root), "artifacts", "import-manifest", str(manifest))
    assert imported.stderr == ""
    assert imported.stdout.startswith(f"{manifest}:1: malformed: ")

"""The example's pipeline as a JSON DAG file (the interface-first layout's form): planned,
tested and run like its YAML twin."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stepkit.cli import main


@pytest.fixture
def churn(example_project: Path, tmp_path: Path) -> Path:
    root = tmp_path / "churn"
    shutil.copytree(example_project, root, ignore=shutil.ignore_patterns(".stepkit"))
    return root


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def plan(capsys: pytest.CaptureFixture[str], churn: Path, dag: str) -> dict[str, object]:
    config = str(churn / "pipelines/churn-config.yaml")
    code, out, err = cli(capsys, "-p", str(churn), "plan", str(churn / dag), "-c", config, "--json")
    assert code == 0, err
    result: dict[str, object] = json.loads(out)
    return result


def test_the_json_dag_plans_as_its_yaml_twin_and_shows_its_metadata(
    capsys: pytest.CaptureFixture[str], churn: Path
) -> None:
    from_json = plan(capsys, churn, "pipelines/churn.dag.json")
    from_yaml = plan(capsys, churn, "pipelines/churn.yaml")
    assert from_json["metadata"] == {
        "name": "churn_json",
        "description": "The churn pipeline in the interface-first layout's JSON DAG form.",
        "framework": "scikit-learn",
    }
    for key in ("order", "nodes", "wiring"):
        assert from_json[key] == from_yaml[key]
    config = str(churn / "pipelines/churn-config.yaml")
    code, out, _ = cli(
        capsys, "-p", str(churn), "plan", str(churn / "pipelines/churn.dag.json"), "-c", config
    )
    assert code == 0
    assert out.startswith("description: The churn pipeline") and "framework: scikit-learn" in out


def test_a_bad_json_dag_is_one_line_naming_file_line_and_place(
    capsys: pytest.CaptureFixture[str], churn: Path
) -> None:
    bad = churn / "pipelines/bad.dag.json"
    bad.write_text(
        '{"dag": {"nodes": ["DataLoading_training"],\n "edges": [["DataLoading_training", "Nope"]]}}'
    )
    code, _, err = cli(capsys, "-p", str(churn), "plan", str(bad))
    assert code == 1
    assert err.strip() == (
        f"error: {bad}:2: dag.edges[0]: edge names 'Nope', which is not in 'nodes'."
    )


@pytest.mark.slow
def test_the_json_dag_runs_and_tests_like_the_yaml_one(
    capsys: pytest.CaptureFixture[str], churn: Path
) -> None:
    dag, config = (
        str(churn / "pipelines/churn.dag.json"),
        str(churn / "pipelines/churn-config.yaml"),
    )
    code, out, err = cli(capsys, "-p", str(churn), "run", dag, "-c", config, "--json")
    assert code == 0, err
    assert {s["status"] for s in json.loads(out)["stages"].values()} == {"completed"}
    code, out, err = cli(capsys, "-p", str(churn), "test", "pipeline", dag, "--json")
    assert code == 0, out + err

"""The example project end to end, as `make demo` runs it."""

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


def test_plan_prints_the_wiring(capsys: pytest.CaptureFixture[str], churn: Path) -> None:
    code, out, _ = cli(
        capsys,
        "-p",
        str(churn),
        "plan",
        str(churn / "pipelines/churn.yaml"),
        "-c",
        str(churn / "pipelines/churn-config.yaml"),
        "--json",
    )
    assert code == 0
    plan = json.loads(out)
    assert plan["order"][0].startswith("DataLoading_")
    assert plan["nodes"]["ModelRegistration"]["runs"] == "builder"
    wired = {(r["node"], r["input"]): r["from"] for r in plan["wiring"]}
    assert wired[("ModelCalibration", "model_input")] == "GradientBoostingTraining.model_output"


@pytest.mark.slow
def test_example_pipeline_does_real_work_then_is_all_cached(
    capsys: pytest.CaptureFixture[str], churn: Path
) -> None:
    args = [
        "-p",
        str(churn),
        "run",
        str(churn / "pipelines/churn.yaml"),
        "-c",
        str(churn / "pipelines/churn-config.yaml"),
        "--json",
    ]
    code, out, err = cli(capsys, *args)
    assert code == 0, err
    first = json.loads(out)
    assert {s["status"] for s in first["stages"].values()} == {"completed"}
    outputs = first["outputs"]
    metrics = json.loads(
        (Path(outputs["ModelEvaluation"]["metrics_output"]) / "metrics.json").read_text()
    )
    assert metrics["rows"] == 3000 and 0.7 < metrics["auc"] < 0.95 and metrics["calibrated"] is True
    png = (Path(outputs["ModelEvaluation"]["eval_output"]) / "roc.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    record = json.loads(
        (Path(outputs["ModelRegistration"]["registration"]) / "registration.json").read_text()
    )
    assert record["approval"] == "approved" and len(record["sha256"]) == 64
    code, out, _ = cli(capsys, *args)
    second = json.loads(out)
    assert code == 0 and {s["status"] for s in second["stages"].values()} == {"cached"}
    assert second["outputs"] == first["outputs"]

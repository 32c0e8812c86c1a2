"""docs/add-a-step.md, followed to the letter on a copy of the example project."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from stepkit.cli import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "add-a-step.md"
BLOCK = re.compile(r"<!-- (file|append|insert-node): (\S+) -->\n```\w*\n(.*?)```", re.S)


def follow_the_doc(root: Path) -> int:
    """Apply every annotated code block of the page; returns how many there were."""
    blocks = BLOCK.findall(DOC.read_text())
    for action, rel, text in blocks:
        path = root / rel
        if action == "file":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        elif action == "append":
            path.write_text(path.read_text().rstrip("\n") + "\n" + text)
        else:  # a node: goes at the end of the 'nodes:' list
            lines = path.read_text().splitlines(keepends=True)
            at = lines.index("edges:\n")
            path.write_text("".join([*lines[:at], text, *lines[at:]]))
    return len(blocks)


def run(capsys: pytest.CaptureFixture[str], root: Path, *args: str) -> dict[str, object]:
    try:
        main(["-p", str(root), *args, "--json"])
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr()
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_the_page_adds_a_step_that_runs_alone(
    capsys: pytest.CaptureFixture[str], example_project: Path, tmp_path: Path
) -> None:
    root = tmp_path / "churn"
    shutil.copytree(example_project, root, ignore=shutil.ignore_patterns(".stepkit", "report.html"))
    dag, config = str(root / "pipelines/churn.yaml"), str(root / "pipelines/churn-config.yaml")
    run(capsys, root, "run", dag, "-c", config)
    assert follow_the_doc(root) == 6
    listed = run(capsys, root, "registry", "list", "-w", "alice")
    assert "PredictionSummary" in json.dumps(listed)
    shown = run(capsys, root, "catalog", "show", "PredictionSummary")
    assert shown["complete"] is True, shown
    tested = run(capsys, root, "test", "script", "PredictionSummary")
    assert tested["status"] == "PASS", tested
    assert str(tested["inputs"]).startswith("{'predictions': 'sample "), tested
    planned = run(capsys, root, "plan", dag, "-c", config)
    assert "PredictionSummary" in json.dumps(planned["order"]), planned
    result = run(capsys, root, "run", dag, "-c", config)
    stages = result["stages"]
    assert isinstance(stages, dict)
    assert stages["PredictionSummary"]["status"] == "completed"
    assert {s["status"] for n, s in stages.items() if n != "PredictionSummary"} == {"cached"}
    outputs = result["outputs"]
    assert isinstance(outputs, dict)
    summary = json.loads(
        (Path(outputs["PredictionSummary"]["summary"]) / "summary.json").read_text()
    )
    assert summary["customers"] == 3000 and 0 < summary["at_risk"] < 3000

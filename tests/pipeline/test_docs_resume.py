"""docs/pipeline.md's run → failure → fix → resume example, run as it is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepkit.pipeline import RunResult
from stepkit.state import RunStatus, SQLiteStateRepository, StageStatus

DOC = Path(__file__).resolve().parents[2] / "docs" / "pipeline.md"


def _example() -> str:
    text = DOC.read_text(encoding="utf-8")
    after = text.split("<!-- resume-example", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_documented_resume_example_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace: dict[str, object] = {"__name__": "docs_example"}
    exec(compile(_example(), str(DOC), "exec"), namespace)  # our own docs, run as written
    out = capsys.readouterr().out.splitlines()
    assert out == ["failed FileNotFoundError", "completed {'total': {'total': 7.5}}"]
    first, again = namespace["first"], namespace["again"]
    assert isinstance(first, RunResult) and isinstance(again, RunResult)
    state = SQLiteStateRepository(tmp_path / ".stepkit" / "state.db")  # no project here
    try:
        run = state.get_run(again.run_id)
        assert run.status == RunStatus.COMPLETED and run.run_id == first.run_id
        attempts = [(r.stage, r.attempt, r.status) for r in state.stage_records(run.run_id)]
    finally:
        state.close()
    assert attempts == [
        ("download", 1, StageStatus.COMPLETED),
        ("total", 1, StageStatus.FAILED),
        ("total", 2, StageStatus.COMPLETED),
    ]

"""A stage object's ``keep``: what it remembers for later runs once its outputs are stored,
left off the hand-off to its dependents for a subprocess stage, and done before the run
ends."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from stepkit import Pipeline
from stepkit.pipeline.context import StageContext
from stepkit.state import SQLiteStateRepository, StageStatus

from . import spare_stages


class _Keeping:
    """A stage object whose ``keep`` notes what it was given, in a file."""

    def __init__(self, folder: str, *, fail: bool = False) -> None:
        self.folder = folder
        self.fail = fail

    def execute(self, context: StageContext) -> Mapping[str, Any]:
        return {"made": 1}

    def finish(self, context: StageContext, made: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"stored": made["made"] + 1}

    def keep(
        self, context: StageContext, made: Mapping[str, Any], outputs: Mapping[str, Any]
    ) -> None:
        if self.fail:
            raise OSError("the cache is full")
        Path(self.folder, context.stage).write_text(f"{made['made']} {outputs['stored']}")


@pytest.mark.parametrize("mode", ["subprocess", "direct"])
def test_a_stage_keeps_what_it_stored_before_the_run_ends(
    state: SQLiteStateRepository, tmp_path: Path, mode: str
) -> None:
    pipe = Pipeline("keeping")
    pipe.add("kept", _Keeping(str(tmp_path)), mode=mode)  # type: ignore[arg-type]
    result = pipe.run(state=state)
    assert result.ok, result.error
    assert result.outputs["kept"] == {"stored": 2}
    assert (tmp_path / "kept").read_text() == "1 2"


def test_a_keep_that_fails_leaves_the_stage_completed(
    state: SQLiteStateRepository, tmp_path: Path
) -> None:
    pipe = Pipeline("keep-fails")
    pipe.add("kept", _Keeping(str(tmp_path), fail=True), mode="subprocess")
    pipe.add("next", spare_stages.second, depends_on=["kept"], mode="subprocess")
    result = pipe.run(state=state)
    assert result.ok, result.error
    assert result.stages["kept"].outputs == {"stored": 2}
    assert result.stages["next"].status == StageStatus.COMPLETED

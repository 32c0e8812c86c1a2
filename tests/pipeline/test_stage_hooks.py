"""A stage object's ``lookup`` (its outputs found, not made) and ``keep`` (what it remembers
for later runs once its outputs are stored): for a subprocess stage the runner's, before it
starts a child and beside the dependents' start, and done before the run ends."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from stepkit import Pipeline
from stepkit.pipeline.context import StageContext
from stepkit.pipeline.invoke import CacheHit
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


class _Found:
    """A stage object whose outputs are always found: it must never run."""

    def lookup(self, context: StageContext) -> CacheHit:
        return CacheHit({"found": context.stage})

    def execute(self, context: StageContext) -> None:
        raise AssertionError("a stage whose outputs were found ran")


@pytest.mark.parametrize("mode", ["subprocess", "direct"])
def test_a_stage_whose_outputs_are_found_does_not_run(
    state: SQLiteStateRepository, mode: str
) -> None:
    pipe = Pipeline("found")
    pipe.add("found", _Found(), mode=mode)  # type: ignore[arg-type]
    pipe.add("next", spare_stages.second, depends_on=["found"], mode="subprocess")
    result = pipe.run(state=state)
    assert result.ok, result.error
    assert result.stages["found"].status == StageStatus.CACHED
    assert result.stages["found"].outputs == {"found": "found"}
    (record,) = [r for r in state.stage_records(result.run_id) if r.stage == "found"]
    if mode == "subprocess":  # looked up in the runner: no process was started for it
        assert record.peak_rss is None and record.cpu_time is None

"""``Pipeline.run()`` records durably by default, and ``resume(run_id)`` finds the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stepkit import Pipeline, Project
from stepkit.errors import UnknownRunError
from stepkit.pipeline import StageContext
from stepkit.state import RunStatus, SQLiteStateRepository, StageStatus

PROJECT = """\
[project]
name = "demo"

[[workspaces]]
id = "core"
path = "steps"
"""


def _flaky(marker: Path) -> Pipeline:
    """``load`` always works; ``train`` fails while ``marker`` says so."""
    pipe = Pipeline("flaky")
    calls = {"load": 0}

    @pipe.stage()
    def load(context: StageContext) -> dict[str, int]:
        calls["load"] += 1
        (marker.parent / "load-calls").write_text(str(calls["load"]))
        return {"rows": 10}

    @pipe.stage(depends_on=["load"])
    def train(context: StageContext) -> dict[str, int]:
        if json.loads(marker.read_text())["broken"]:
            raise RuntimeError("train is broken")
        return {"score": context["rows"] * 2}

    return pipe


def test_inside_a_project_runs_go_to_its_state_store_and_resume_finds_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "project"
    (root / "steps").mkdir(parents=True)
    (root / "stepkit.toml").write_text(PROJECT)
    (root / "src").mkdir()
    monkeypatch.chdir(root / "src")  # anywhere inside the project
    marker = tmp_path / "marker.json"
    marker.write_text('{"broken": true}')

    failed = _flaky(marker).run()
    assert failed.status == RunStatus.FAILED
    project = Project.load(root)
    state = SQLiteStateRepository.for_project(project)
    try:
        assert state.get_run(failed.run_id).status == RunStatus.FAILED
    finally:
        state.close()
    assert not (root / "src" / ".stepkit").exists()

    marker.write_text('{"broken": false}')
    resumed = _flaky(marker).resume(failed.run_id)  # a fresh pipeline, no state= given
    assert resumed.ok and resumed.run_id == failed.run_id
    assert resumed.outputs == {"train": {"score": 20}}
    assert resumed.stages["load"].status == StageStatus.COMPLETED
    assert (tmp_path / "load-calls").read_text() == "1"  # kept, not run again
    assert resumed.stages["train"].attempts == 2


def test_outside_a_project_runs_go_to_dot_stepkit_in_the_current_folder(tmp_path: Path) -> None:
    marker = tmp_path / "marker.json"
    marker.write_text('{"broken": false}')
    result = _flaky(marker).run()
    assert result.ok
    state = SQLiteStateRepository(tmp_path / ".stepkit" / "state.db")
    try:
        assert state.get_run(result.run_id).status == RunStatus.COMPLETED
    finally:
        state.close()


def test_memory_only_when_asked(tmp_path: Path) -> None:
    marker = tmp_path / "marker.json"
    marker.write_text('{"broken": true}')
    failed = _flaky(marker).run(state="memory://")
    assert failed.status == RunStatus.FAILED
    assert not (tmp_path / ".stepkit").exists()
    with pytest.raises(UnknownRunError):
        _flaky(marker).resume(failed.run_id)  # nothing durable to resume from


def test_a_state_url_is_opened_and_closed_by_the_run(tmp_path: Path) -> None:
    marker = tmp_path / "marker.json"
    marker.write_text('{"broken": false}')
    result = _flaky(marker).run(state=f"sqlite:///{tmp_path / 'elsewhere.db'}")
    state = SQLiteStateRepository(tmp_path / "elsewhere.db")
    try:
        assert state.get_run(result.run_id).status == RunStatus.COMPLETED
    finally:
        state.close()

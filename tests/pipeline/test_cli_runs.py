"""``stepkit runs …`` end to end, on a project's own state file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from stepkit import Pipeline, RetryPolicy
from stepkit.cli.app import app
from stepkit.pipeline.context import StageContext
from stepkit.project import Project
from stepkit.state import LogBatch, RunStatus, SQLiteStateRepository, StageStatus
from stepkit.state.records import latest_attempts

from . import runner_scripts

TESTS = Path(__file__).resolve().parents[1]
STEPKIT = str(Path(sys.executable).with_name("stepkit"))


@pytest.fixture
def project(write_project) -> Project:  # type: ignore[no-untyped-def]
    root = write_project(
        {
            "stepkit.toml": '[project]\nname = "demo"\n\n[[workspaces]]\nid = "shared"\n'
            'path = "steps"\n',
            "steps/.keep": "",
        }
    )
    return Project.load(root)


def _flaky(context: StageContext) -> dict[str, int]:
    if context.attempt < 2:
        raise ConnectionError("net down")
    print("fine now")
    return {"attempt": context.attempt}


def _demo_run(project: Project) -> str:
    pipe = Pipeline("demo")
    pipe.add("load", lambda context: {"rows": 3})
    pipe.add("flaky", _flaky, depends_on=["load"], retry=RetryPolicy(max_attempts=3, delay=0))
    pipe.add("bad", lambda context: 1 / 0, depends_on=["load"])
    pipe.add("after_bad", lambda context: None, depends_on=["bad"])
    state = SQLiteStateRepository.for_project(project)
    try:
        result = pipe.run(state=state)
        state.commit(
            logs=[LogBatch(result.run_id, "load", 1, "stdout", time.time(), ["hello", "world"])]
        )
        return result.run_id
    finally:
        state.close()


def _cli(project: Project, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--project", str(project.root), "runs", *args])
    return result.exit_code, result.output


def test_runs_list_show_and_logs(project: Project) -> None:
    run_id = _demo_run(project)
    code, out = _cli(project, "list")
    assert code == 0 and run_id in out and "failed" in out
    code, out = _cli(project, "list", "--status", "completed")
    assert code == 0 and run_id not in out
    code, out = _cli(project, "list", "--json", "--pipeline", "demo")
    assert code == 0
    (listed,) = json.loads(out)
    assert listed["run_id"] == run_id and listed["status"] == "failed"

    code, out = _cli(project, "show", run_id)
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "completed" in lines["flaky"] and " 2 " in lines["flaky"]
    assert "ZeroDivisionError" not in lines["bad"] and "division by zero" in lines["bad"]
    assert "upstream stage 'bad' failed" in lines["after_bad"]
    assert "█" in lines["load"]

    code, out = _cli(project, "show", run_id, "--json")
    attempts = json.loads(out)["attempts"]
    assert [(a["stage"], a["attempt"], a["status"]) for a in attempts if a["stage"] == "flaky"] == [
        ("flaky", 1, "failed"),
        ("flaky", 2, "completed"),
    ]

    code, out = _cli(project, "logs", run_id)
    assert code == 0
    assert out.splitlines() == ["load stdout: hello", "load stdout: world"]
    code, out = _cli(project, "logs", run_id, "--stage", "flaky")
    assert code == 0 and out == ""


def test_unknown_runs_stages_and_statuses_get_suggestions(project: Project) -> None:
    run_id = _demo_run(project)
    result = CliRunner().invoke(
        app, ["--project", str(project.root), "runs", "show", run_id[:-1] + "x"]
    )
    assert result.exit_code == 1
    assert isinstance(result.exception, LookupError)
    assert f"Did you mean '{run_id}'?" in str(result.exception)
    code, out = _cli(project, "list", "--status", "complete")
    assert code == 2 and "did you mean 'completed'?" in out
    result = CliRunner().invoke(
        app, ["--project", str(project.root), "runs", "resume", run_id, "--pipeline", "nosuch:make"]
    )
    assert str(result.exception) == (
        "--pipeline 'nosuch:make': cannot import nosuch: No module named 'nosuch'"
    )
    result = CliRunner().invoke(app, ["--project", str(project.root), "runs", "resume", run_id])
    assert str(result.exception) == (
        f"Run {run_id!r} recorded no pipeline source; pass --pipeline MODULE:ATTR."
    )


def test_runs_report_is_self_contained_html(project: Project, tmp_path: Path) -> None:
    run_id = _demo_run(project)
    target = tmp_path / "report.html"
    code, out = _cli(project, "report", run_id, "-o", str(target))
    assert code == 0 and out.strip() == f"wrote {target}"
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    for needle in (
        'aria-label="pipeline DAG"',
        'aria-label="Gantt timeline"',
        "flaky #1",
        "flaky #2",
    ):
        assert needle in page
    # 4 stage boxes, 3 edges, 4 attempt bars (the skipped stage never ran).
    assert page.count('<g class="node"') == 4
    assert page.count('<g class="edge"') == 3
    assert page.count('<rect class="bar"') == 4
    # Nothing to fetch: no URL, no script, no external stylesheet or font.
    for forbidden in ("http://", "https://", "<script", "<link", "@import", "url("):
        assert forbidden not in page


def test_runs_resume_of_a_completed_run_runs_nothing_again(
    project: Project, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    marker.mkdir()
    state = SQLiteStateRepository.for_project(project)
    try:
        result = runner_scripts.killable().run(inputs={"marker": str(marker)}, state=state)
        assert result.ok
        run_id = result.run_id
    finally:
        state.close()
    before = (marker / "ran.txt").read_text().split()
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    done = subprocess.run(
        [STEPKIT, "--project", str(project.root), "runs", "resume", run_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"run {run_id}: completed in ")
    assert (marker / "ran.txt").read_text().split() == before  # nothing ran again


def test_ctrl_c_cancels_the_run_kills_its_stages_and_exits_130(
    project: Project, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    marker.mkdir()
    (marker / "fail").write_text("")
    state = SQLiteStateRepository.for_project(project)
    try:
        failed = runner_scripts.interruptible().run(inputs={"marker": str(marker)}, state=state)
    finally:
        state.close()
    assert failed.stages["hang"].status == StageStatus.FAILED
    (marker / "fail").unlink()
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    cli = subprocess.Popen(
        [STEPKIT, "--project", str(project.root), "runs", "resume", failed.run_id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (marker / "pid").exists():
            assert time.monotonic() < deadline and cli.poll() is None, cli.communicate()
            time.sleep(0.02)
        stage_pid = int((marker / "pid").read_text())
        cli.send_signal(signal.SIGINT)
        _, err = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 130, err
    assert f"Run {failed.run_id} cancelled; resume it with: stepkit " in err
    assert f"runs resume {failed.run_id}" in err
    assert (
        not psutil.pid_exists(stage_pid)
        or psutil.Process(stage_pid).status() == psutil.STATUS_ZOMBIE
    )
    state = SQLiteStateRepository.for_project(project)
    try:
        assert state.get_run(failed.run_id).status == RunStatus.CANCELLED
        latest = latest_attempts(state.stage_records(failed.run_id))
        assert latest["hang"].status == StageStatus.CANCELLED and latest["hang"].attempt == 2
        assert latest["first"].attempt == 1  # kept from the first run
    finally:
        state.close()
    assert not list(Path(tempfile.gettempdir()).glob(f"stepkit-{failed.run_id}*"))


def test_runs_logs_follow_prints_new_lines_until_the_run_ends(project: Project) -> None:
    import threading

    from stepkit.state import RunRecord

    state = SQLiteStateRepository.for_project(project)
    import os
    import socket

    run = RunRecord(  # held by a live runner (this process): a lease that has not run out
        run_id="live-run",
        pipeline="demo",
        status=RunStatus.RUNNING,
        graph={"s": ()},
        host=socket.gethostname(),
        pid=os.getpid(),
        lease_expires_at=time.time() + 60,
    )
    state.commit(runs=[run], logs=[LogBatch("live-run", "s", 1, "stdout", 1.0, ["first"])])

    def later() -> None:
        writer = SQLiteStateRepository.for_project(project)
        try:
            time.sleep(0.3)
            writer.commit(logs=[LogBatch("live-run", "s", 1, "stderr", 2.0, ["second"])])
            time.sleep(0.3)
            writer.commit(
                runs=[RunRecord(run_id="live-run", pipeline="demo", status=RunStatus.COMPLETED)],
                logs=[LogBatch("live-run", "s", 1, "stdout", 3.0, ["last"])],
            )
        finally:
            writer.close()

    thread = threading.Thread(target=later)
    thread.start()
    try:
        code, out = _cli(project, "logs", "live-run", "--follow")
    finally:
        thread.join()
        state.close()
    assert code == 0
    assert out.splitlines() == ["s stdout: first", "s stderr: second", "s stdout: last"]

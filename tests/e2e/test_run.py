"""``stepkit run`` end to end: caching decisions, failure and resume, on a tiny project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stepkit.cli import main
from stepkit.pipeline import RunProgress, RunResult
from stepkit.project import Project
from stepkit.state import RunStatus, SQLiteStateRepository, StageStatus


def run_json(
    capsys: pytest.CaptureFixture[str], root: Path, *args: str
) -> tuple[int, dict[str, object]]:
    try:
        main(["-p", str(root), "run", str(root / "dag.yaml"), "--json", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, _ = capsys.readouterr()
    return code, json.loads(out)


def statuses(result: dict[str, object]) -> dict[str, str]:
    stages = result["stages"]
    assert isinstance(stages, dict)
    return {name: stage["status"] for name, stage in stages.items()}


def test_first_run_makes_everything_then_all_cached(
    capsys: pytest.CaptureFixture[str], tiny_project: Path
) -> None:
    code, first = run_json(capsys, tiny_project)
    assert code == 0, first
    assert statuses(first) == {"Make": "completed", "Double": "completed", "Report": "completed"}
    outputs = first["outputs"]
    assert isinstance(outputs, dict)
    report = Path(outputs["Report"]["report"]) / "report.txt"
    assert report.read_text() == "sum=20"  # 2 * (0+1+2+3+4)
    assert "/runs/" in str(report)
    code, second = run_json(capsys, tiny_project)
    assert code == 0
    assert statuses(second) == {"Make": "cached", "Double": "cached", "Report": "cached"}


def test_changing_a_script_reruns_it_and_what_its_output_feeds(
    capsys: pytest.CaptureFixture[str], tiny_project: Path
) -> None:
    run_json(capsys, tiny_project)
    script = tiny_project / "steps/scripts/double.py"
    script.write_text(script.read_text().replace("int(n) * factor", "int(n) * factor + 1"))
    _, result = run_json(capsys, tiny_project)
    assert statuses(result) == {"Make": "cached", "Double": "completed", "Report": "completed"}


def test_a_change_that_leaves_the_output_alone_stops_at_that_step(
    capsys: pytest.CaptureFixture[str], tiny_project: Path
) -> None:
    run_json(capsys, tiny_project)
    script = tiny_project / "steps/scripts/double.py"
    script.write_text(script.read_text() + "\n# a comment changes the script, not what it writes\n")
    _, result = run_json(capsys, tiny_project)
    assert statuses(result) == {"Make": "cached", "Double": "completed", "Report": "cached"}


def test_changing_a_config_value_reruns_from_that_node(
    capsys: pytest.CaptureFixture[str], tiny_project: Path
) -> None:
    run_json(capsys, tiny_project)
    config = tiny_project / "config.yaml"
    config.write_text("nodes:\n  Make:\n    count: 6\n")
    _, result = run_json(capsys, tiny_project, "--config", str(config))
    assert statuses(result) == {"Make": "completed", "Double": "completed", "Report": "completed"}
    config.write_text("nodes:\n  Double:\n    factor: 3\n")
    _, result = run_json(capsys, tiny_project, "--config", str(config))
    assert statuses(result) == {"Make": "cached", "Double": "completed", "Report": "completed"}


def test_changing_input_data_reruns_the_consumer(
    capsys: pytest.CaptureFixture[str], tiny_project: Path
) -> None:
    """Make's output changes (new data), so Double's input digest changes."""
    run_json(capsys, tiny_project)
    script = tiny_project / "steps/scripts/make.py"
    script.write_text(script.read_text().replace("range(count)", "range(1, count + 1)"))
    _, result = run_json(capsys, tiny_project)
    assert statuses(result) == {"Make": "completed", "Double": "completed", "Report": "completed"}


def test_changing_a_contract_reruns_its_step(
    capsys: pytest.CaptureFixture[str], tiny_project: Path
) -> None:
    run_json(capsys, tiny_project)
    contract = tiny_project / "steps/contracts/report_contract.py"
    contract.write_text(
        contract.read_text().replace("optional_env_vars={}", 'optional_env_vars={"TITLE": "sum"}')
    )
    _, result = run_json(capsys, tiny_project)
    assert statuses(result) == {"Make": "cached", "Double": "cached", "Report": "completed"}


def test_no_cache_and_refresh_force_runs(
    capsys: pytest.CaptureFixture[str], tiny_project: Path
) -> None:
    run_json(capsys, tiny_project)
    _, result = run_json(capsys, tiny_project, "--refresh", "Double")
    assert statuses(result) == {"Make": "cached", "Double": "completed", "Report": "cached"}
    _, result = run_json(capsys, tiny_project, "--no-cache")
    assert set(statuses(result).values()) == {"completed"}


def test_failing_step_then_fixed_then_resumed(
    capsys: pytest.CaptureFixture[str], tiny_project: Path
) -> None:
    script = tiny_project / "steps/scripts/report.py"
    good = script.read_text()
    script.write_text(
        good.replace("values = [", "raise RuntimeError('report is broken')\n    values = [")
    )
    code, failed = run_json(capsys, tiny_project)
    assert code == 1
    assert statuses(failed) == {"Make": "completed", "Double": "completed", "Report": "failed"}
    stages = failed["stages"]
    assert isinstance(stages, dict)
    assert "RuntimeError" in str(stages["Report"]["error"]) and "report is broken" in str(
        stages["Report"]["error"]
    )
    script.write_text(good)
    code, resumed = run_json(capsys, tiny_project, "--resume", str(failed["run_id"]))
    assert code == 0
    assert resumed["run_id"] == failed["run_id"]
    assert statuses(resumed) == {"Make": "completed", "Double": "completed", "Report": "completed"}
    # the kept stages were not run again: the resume made only Report
    outputs = resumed["outputs"]
    assert isinstance(outputs, dict)
    assert (Path(outputs["Report"]["report"]) / "report.txt").read_text() == "sum=20"


def test_missing_output_fails_the_step_with_its_name(
    capsys: pytest.CaptureFixture[str], tiny_project: Path
) -> None:
    script = tiny_project / "steps/scripts/report.py"
    script.write_text(
        "def main(input_paths, output_paths, environ_vars, job_args):\n    return None\n"
    )
    code, result = run_json(capsys, tiny_project)
    assert code == 1
    stages = result["stages"]
    assert isinstance(stages, dict)
    assert "output 'report' is missing or empty" in str(stages["Report"]["error"])


def test_plan_errors_come_before_anything_runs(
    capsys: pytest.CaptureFixture[str], tiny_project: Path
) -> None:
    (tiny_project / "dag.yaml").write_text("nodes: [Make, Dubble]\nedges:\n  - Make -> Dubble\n")
    with pytest.raises(SystemExit) as exc:
        main(["-p", str(tiny_project), "run", str(tiny_project / "dag.yaml")])
    assert exc.value.code == 1
    _, err = capsys.readouterr()
    assert "Dubble: No step named 'Dubble'. Did you mean 'Double'?" in err
    assert not (tiny_project / ".stepkit/state.db").exists() or "runs" not in err


def failed_then_mended(capsys: pytest.CaptureFixture[str], root: Path) -> dict[str, object]:
    """A run whose last stage failed, and that stage's script mended since."""
    script = root / "steps/scripts/report.py"
    good = script.read_text()
    script.write_text(
        "def main(input_paths, output_paths, environ_vars, job_args):\n    raise SystemExit(4)\n"
    )
    code, failed = run_json(capsys, root)
    assert code == 1
    script.write_text(good)
    return failed


def test_run_resume_shows_the_kept_stages_as_they_ended(
    capsys: pytest.CaptureFixture[str], tiny_project: Path
) -> None:
    failed = failed_then_mended(capsys, tiny_project)
    dag = str(tiny_project / "dag.yaml")
    with pytest.raises(SystemExit) as exc:
        main(["-p", str(tiny_project), "run", dag, "--resume", str(failed["run_id"])])
    assert exc.value.code in (0, None)
    _, err = capsys.readouterr()
    assert "pending" not in err and {"Make", "Double", "Report"} <= set(err.split())


def test_runs_resume_replans_a_dag_run_and_report_is_written(
    capsys: pytest.CaptureFixture[str], tiny_project: Path, tmp_path: Path
) -> None:
    failed = failed_then_mended(capsys, tiny_project)
    with pytest.raises(SystemExit) as exc:
        main(["-p", str(tiny_project), "runs", "resume", "latest"])
    assert exc.value.code in (0, None)
    out, err = capsys.readouterr()
    assert f"run {failed['run_id']}: completed in " in out
    # the live view shows the stages kept from the first attempt as they ended
    assert "pending" not in err and {"Make", "Double", "Report"} <= set(err.split())
    page = tmp_path / "report.html"
    with pytest.raises(SystemExit):
        main(
            ["-p", str(tiny_project), "runs", "report", str(failed["run_id"])[:15], "-o", str(page)]
        )
    html = page.read_text()
    assert (
        "Report" in html and "<svg" in html and "http" not in html.replace("http://www.w3.org", "")
    )
    assert oct(page.stat().st_mode & 0o777) == "0o644"


def test_run_dag_is_the_whole_of_stepkit_run(tiny_project: Path) -> None:
    from stepkit import RunOptions, RunSettings, plan_dag, resume_run, run_dag

    plan = plan_dag(tiny_project, tiny_project / "dag.yaml")
    assert list(plan.nodes) == ["Make", "Double", "Report"]
    seen: list[RunProgress] = []
    result = run_dag(
        tiny_project,
        tiny_project / "dag.yaml",
        options=RunOptions(no_cache=True),
        settings=RunSettings(max_workers=2),
        progress=seen.append,
    )
    assert result.ok and seen[-1].status == RunStatus.COMPLETED
    assert {r.stage for event in seen for r in event.records} == {"Make", "Double", "Report"}
    again = resume_run(tiny_project, result.run_id)  # nothing left to do: all kept
    assert again.ok and again.run_id == result.run_id


def test_two_runs_of_one_dag_at_once_each_show_their_own_progress(tiny_project: Path) -> None:
    import threading

    from stepkit import RunOptions, run_dag

    events: dict[int, list[RunProgress]] = {0: [], 1: []}
    results: dict[int, RunResult] = {}
    go = threading.Barrier(2)

    def run(index: int) -> None:
        go.wait(timeout=30)
        results[index] = run_dag(
            tiny_project,
            tiny_project / "dag.yaml",
            options=RunOptions(no_cache=True),
            progress=events[index].append,
        )

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results[0].ok and results[1].ok and results[0].run_id != results[1].run_id
    for index in (0, 1):
        assert {event.run_id for event in events[index]} == {results[index].run_id}
        finished = {
            r.stage: r.status
            for event in events[index]
            for r in event.records
            if r.status != StageStatus.RUNNING
        }
        assert finished == {n: StageStatus.COMPLETED for n in ("Make", "Double", "Report")}


def test_resume_with_another_config_is_refused_naming_both(
    capsys: pytest.CaptureFixture[str], tiny_project: Path
) -> None:
    script = tiny_project / "steps/scripts/report.py"
    script.write_text(
        "def main(input_paths, output_paths, environ_vars, job_args):\n    raise SystemExit(4)\n"
    )
    config = tiny_project / "config.yaml"
    config.write_text("nodes:\n  Make:\n    count: 6\n")
    code, failed = run_json(capsys, tiny_project, "-c", str(config))
    assert code == 1
    other = tiny_project / "other.yaml"
    other.write_text("nodes:\n  Make:\n    count: 7\n")
    for given, named in ((["-c", str(other)], str(other)), ([], "no config")):
        with pytest.raises(SystemExit) as exc:
            dag = str(tiny_project / "dag.yaml")
            main(["-p", str(tiny_project), "run", dag, "--resume", str(failed["run_id"]), *given])
        assert exc.value.code == 1
        _, err = capsys.readouterr()
        assert err.startswith(
            f"error: Run {failed['run_id']!r} was made with config {config}, not {named}; "
        )
        assert f"stepkit runs resume {failed['run_id']}" in err


def test_the_printed_resume_command_resumes_with_the_recorded_config(
    capsys: pytest.CaptureFixture[str],
    tiny_project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = tiny_project / "steps/scripts/report.py"
    good = script.read_text()
    script.write_text(
        "def main(input_paths, output_paths, environ_vars, job_args):\n    raise SystemExit(4)\n"
    )
    config = tiny_project / "config.yaml"
    config.write_text("nodes:\n  Make:\n    count: 6\n")
    monkeypatch.chdir(tmp_path)  # outside the project: the command must name it
    with pytest.raises(SystemExit) as exc:
        main(["-p", str(tiny_project), "run", str(tiny_project / "dag.yaml"), "-c", str(config)])
    assert exc.value.code == 1
    out, _ = capsys.readouterr()
    hint = " ".join(out.split()).split("fix the failure, then: ", 1)[1]
    run_id = hint.split()[-1]
    assert hint == f"stepkit -p {tiny_project} runs resume {run_id}"
    script.write_text(good)
    with pytest.raises(SystemExit) as exc:
        main(hint.split()[1:])  # the printed command, as a user would paste it
    assert exc.value.code in (0, None)
    out, _ = capsys.readouterr()
    assert f"run {run_id}: completed in " in out
    state = SQLiteStateRepository.for_project(Project.load(tiny_project))
    try:
        run = state.get_run(run_id)
    finally:
        state.close()
    report = Path(run.outputs["Report"]["report"]["path"]) / "report.txt"
    assert report.read_text() == "sum=30"  # 2 * (0+…+5): the recorded config's count 6

"""Stages on a real Dask LocalCluster: plain pipelines, a killed worker, catalogued runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Executor
from pathlib import Path

import pytest
from e2e.conftest import write_tiny_project

from stepkit.cli import main
from stepkit.errors import ExecutorSpecError
from stepkit.pipeline.dask_executor import check_executor, dask_executor, lost_worker_policy
from stepkit.pipeline.pipeline import Pipeline
from stepkit.plan.execute import RunOptions
from stepkit.state.memory import MemoryStateRepository

from . import dask_stages


@pytest.fixture(scope="module")
def cluster() -> Iterator[Executor]:
    with dask_executor("dask-local", workers=2) as executor:
        yield executor


def test_stages_run_on_the_workers_and_pass_outputs(cluster: Executor) -> None:
    pipe = Pipeline("dask-plain")
    pipe.add("source", dask_stages.where_am_i, mode="distributed")
    pipe.add("twice", dask_stages.double, depends_on=["source"], mode="distributed")
    result = pipe.run(executor=cluster, state="memory://")
    assert result.ok, result
    assert result.stages["twice"].outputs["value"] == 42
    assert {result.stages[s].outputs["pid"] for s in ("source", "twice")}.isdisjoint({os.getpid()})


def test_a_killed_worker_means_a_retry_on_another_worker(cluster: Executor) -> None:
    state = MemoryStateRepository()
    pipe = Pipeline("dask-kill")
    pipe.add("fragile", dask_stages.dies_once, mode="distributed", retry=lost_worker_policy())
    result = pipe.run(executor=cluster, state=state)
    assert result.ok, result
    assert result.stages["fragile"].outputs["attempt"] == 2
    records = [(r.attempt, str(r.status), r.error_type) for r in state.stage_records(result.run_id)]
    assert records == [(1, "failed", "KilledWorker"), (2, "completed", None)]


def test_without_the_policy_a_killed_worker_fails_the_stage(cluster: Executor) -> None:
    pipe = Pipeline("dask-kill-no-retry")
    pipe.add("fragile", dask_stages.dies_once, mode="distributed")
    result = pipe.run(executor=cluster, state="memory://")
    assert not result.ok
    assert (result.stages["fragile"].attempts, result.stages["fragile"].error_type) == (
        1,
        "KilledWorker",
    )


def test_executor_names_are_checked_with_a_suggestion() -> None:
    assert check_executor("dask://scheduler.internal:8786") == "dask://scheduler.internal:8786"
    with pytest.raises(ExecutorSpecError) as caught:
        RunOptions(executor="dask-locl")
    assert str(caught.value) == (
        "Unknown executor 'dask-locl': use local, process, dask-local, dask://HOST:PORT. "
        "Did you mean 'dask-local'?"
    )
    with pytest.raises(ExecutorSpecError):
        check_executor("dask://no-port")


def test_a_catalogued_pipeline_runs_on_dask_local_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    root = write_tiny_project(tmp_path / "tiny")
    try:
        main(["-p", str(root), "run", str(root / "dag.yaml"), "--json", "-e", "dask-local"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    result = json.loads(capsys.readouterr().out)
    assert {n: s["status"] for n, s in result["stages"].items()} == dict.fromkeys(
        ("Make", "Double", "Report"), "completed"
    )
    assert (Path(result["outputs"]["Report"]["report"]) / "report.txt").read_text() == "sum=20"


def test_a_catalogued_pipeline_on_dask_with_an_s3_store_passes_artifacts_through_the_bucket(
    tmp_path: Path, s3_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from stepkit.artifacts.store import ArtifactStore
    from stepkit.project import Project

    root = write_tiny_project(tmp_path / "tiny")
    with (root / "stepkit.toml").open("a") as toml:
        toml.write(f'\n[artifacts]\nroot = "{s3_bucket}/store"\n')
    try:
        main(["-p", str(root), "run", str(root / "dag.yaml"), "--json", "-e", "dask-local"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "completed", result
    run_id = result["run_id"]
    assert result["outputs"]["Report"]["report"] == f"{s3_bucket}/store/runs/{run_id}/Report/report"
    with ArtifactStore.for_project(Project.load(root)) as store:
        (record,) = store.show(f"{run_id}/Report/report/report.txt")
        assert record.storage_uri.startswith(f"{s3_bucket}/store/cas/sha256/")
        with store.open(record.sha256) as handle:
            assert handle.read() == b"sum=20"  # Double read Make's numbers from the bucket
        assert len(list(store.blobs.iter_objects())) == 3

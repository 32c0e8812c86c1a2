"""One contract suite, run against every StateRepository backend."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from stepkit.errors import UnknownRunError
from stepkit.project import Project
from stepkit.state import (
    LogBatch,
    LogEvent,
    MemoryStateRepository,
    RunRecord,
    RunStatus,
    SQLiteStateRepository,
    StageRecord,
    StageStatus,
    StateRepository,
)
from stepkit.state.leases import interrupt, reap_expired


@pytest.fixture(params=["sqlite", "memory", "postgres"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateRepository]:
    store: StateRepository
    if request.param == "sqlite":
        store = SQLiteStateRepository(tmp_path / "state.db")
    elif request.param == "postgres":
        from stepkit.state.postgres import PostgresStateRepository

        store = PostgresStateRepository(request.getfixturevalue("postgres_url"))
    else:
        store = MemoryStateRepository()
    yield store
    store.close()


def _run(run_id: str = "r1", **changes: object) -> RunRecord:
    base = RunRecord(
        run_id=run_id,
        pipeline="demo",
        status=RunStatus.RUNNING,
        inputs={"n": 3, "names": ["a", "b"]},
        graph={"a": (), "b": ("a",)},
        created_at=100.0,
        started_at=100.0,
        host="host",
        pid=1,
        lease_expires_at=time.time() + 60,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _stage(stage: str = "a", attempt: int = 1, **changes: object) -> StageRecord:
    base = StageRecord(run_id="r1", stage=stage, attempt=attempt, status=StageStatus.RUNNING)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_repositories_satisfy_the_protocol(repo: StateRepository) -> None:
    assert isinstance(repo, StateRepository)


def test_a_committed_run_reads_back_equal(repo: StateRepository) -> None:
    run = _run(source="pkg.mod:make")
    repo.commit(runs=[run])
    assert repo.get_run("r1") == run


def test_an_unknown_run_is_a_lookup_error_with_close_ids(repo: StateRepository) -> None:
    repo.commit(runs=[_run("20260101-000000-abcd")])
    with pytest.raises(UnknownRunError) as caught:
        repo.get_run("20260101-000000-abce")
    assert str(caught.value) == (
        "No run '20260101-000000-abce' in the state store. Did you mean '20260101-000000-abcd'?"
    )
    assert isinstance(caught.value, LookupError)


def test_runs_are_upserted_and_keep_their_attempts(repo: StateRepository) -> None:
    repo.commit(runs=[_run()], stages=[_stage()])
    repo.commit(runs=[_run(status=RunStatus.COMPLETED, outputs={"b": {"x": 1}})])
    assert repo.get_run("r1").status == RunStatus.COMPLETED
    assert repo.get_run("r1").outputs == {"b": {"x": 1}}
    assert [s.stage for s in repo.stage_records("r1")] == ["a"]


def test_attempts_are_upserted_by_run_stage_attempt(repo: StateRepository) -> None:
    repo.commit(runs=[_run()], stages=[_stage("a", 1), _stage("b", 1)])
    done = _stage(
        "a",
        1,
        status=StageStatus.FAILED,
        error_type="ValueError",
        error_message="bad",
        traceback="Traceback…",
        duration=0.5,
        cpu_time=0.25,
        peak_rss=1024,
        inputs={"up": {"k": [1, 2]}},
    )
    repo.commit(stages=[done, _stage("a", 2, status=StageStatus.COMPLETED, outputs={"y": 2})])
    records = repo.stage_records("r1")
    assert [(r.stage, r.attempt, r.status) for r in records] == [
        ("a", 1, StageStatus.FAILED),
        ("b", 1, StageStatus.RUNNING),
        ("a", 2, StageStatus.COMPLETED),
    ]
    assert records[0] == done
    assert records[2].outputs == {"y": 2}


def test_list_runs_newest_first_with_filters(repo: StateRepository) -> None:
    repo.commit(
        runs=[
            _run("old", created_at=1.0, status=RunStatus.FAILED),
            _run("new", created_at=3.0, status=RunStatus.COMPLETED),
            _run("other", created_at=2.0, pipeline="etl", status=RunStatus.COMPLETED),
        ]
    )
    assert [r.run_id for r in repo.list_runs()] == ["new", "other", "old"]
    assert [r.run_id for r in repo.list_runs(status=RunStatus.COMPLETED)] == ["new", "other"]
    assert [r.run_id for r in repo.list_runs(pipeline="demo")] == ["new", "old"]
    assert [r.run_id for r in repo.list_runs(limit=1)] == ["new"]


def test_log_events_append_in_order_and_page_by_seq(repo: StateRepository) -> None:
    repo.commit(runs=[_run(), _run("r2")])
    events = [
        LogBatch("r1", "a" if i % 2 else "b", 1, "stdout", float(i), [f"line {i}"])
        for i in range(10)
    ]
    repo.commit(logs=events[:6])
    repo.commit(logs=[LogBatch("r2", "a", 1, "stderr", 0.5, ["elsewhere"]), *events[6:]])
    got = repo.logs("r1")
    assert [e.message for e in got] == [f"line {i}" for i in range(10)]
    assert [e.seq for e in got] == sorted(e.seq for e in got)
    assert [e.message for e in repo.logs("r1", stage="a")] == [f"line {i}" for i in range(1, 10, 2)]
    page = repo.logs("r1", after=got[3].seq, limit=2)
    assert [e.message for e in page] == ["line 4", "line 5"]
    assert repo.count_logs("r1") == 10
    assert repo.count_logs("r1", stage="b") == 5
    assert repo.logs("r2") == [LogEvent("r2", "a", 1, 0.5, "stderr", "elsewhere", got[5].seq + 1)]


def test_renew_lease_moves_only_a_running_runs_lease(repo: StateRepository) -> None:
    repo.commit(runs=[_run(), _run("done", status=RunStatus.COMPLETED, lease_expires_at=None)])
    assert repo.renew_lease("r1", expires_at=12345.0, now=12315.0) is True
    assert repo.get_run("r1").lease_expires_at == 12345.0
    assert repo.get_run("r1").last_heartbeat == 12315.0
    assert repo.get_run("r1").status == RunStatus.RUNNING
    assert repo.renew_lease("done", expires_at=1.0, now=0.5) is False
    assert repo.get_run("done").lease_expires_at is None
    assert repo.get_run("done").last_heartbeat is None


def test_a_reaped_run_keeps_its_last_heartbeat_and_its_interrupted_attempts_get_it(
    repo: StateRepository,
) -> None:
    repo.commit(
        runs=[_run(lease_expires_at=time.time() + 60)],
        stages=[_stage("a", 1, status=StageStatus.COMPLETED), _stage("b", 1)],
    )
    now = time.time()
    beat = now - 31  # its last heartbeat; the lease it set has expired since
    assert repo.renew_lease("r1", expires_at=beat + 30, now=beat) is True
    assert reap_expired(repo, now=now) == ["r1"]
    run = repo.get_run("r1")
    assert (run.status, run.lease_expires_at, run.last_heartbeat) == (
        RunStatus.INTERRUPTED,
        None,
        beat,
    )
    beats = {(r.stage, r.status, r.finished_at, r.last_heartbeat) for r in repo.stage_records("r1")}
    assert beats == {
        ("a", StageStatus.COMPLETED, None, None),
        ("b", StageStatus.INTERRUPTED, now, beat),  # reaped now, last seen alive 31 s before
    }
    # a resume's runner beats later: the run's heartbeat moves on, the attempt keeps its own
    assert repo.claim_run(_run(pid=2)) is True
    assert repo.renew_lease("r1", expires_at=now + 60, now=now + 1) is True
    assert repo.get_run("r1").last_heartbeat == now + 1
    interrupted = [r for r in repo.stage_records("r1") if r.stage == "b"]
    assert [r.last_heartbeat for r in interrupted] == [beat]


def test_writing_a_run_record_never_moves_its_last_heartbeat_back(repo: StateRepository) -> None:
    repo.commit(runs=[_run()])
    assert repo.renew_lease("r1", expires_at=time.time() + 60, now=250.0) is True
    repo.commit(runs=[_run(status=RunStatus.COMPLETED)])  # the runner's record: no heartbeat
    assert repo.get_run("r1").last_heartbeat == 250.0
    repo.commit(runs=[_run(last_heartbeat=150.0)])  # an older one
    assert repo.get_run("r1").last_heartbeat == 250.0
    repo.commit(runs=[_run(last_heartbeat=350.0)])
    assert repo.get_run("r1").last_heartbeat == 350.0


def test_an_expired_lease_is_reaped_and_its_running_stages_interrupted(
    repo: StateRepository,
) -> None:
    repo.commit(
        runs=[_run(lease_expires_at=time.time() - 1), _run("alive", host="elsewhere")],
        stages=[_stage("a", 1, status=StageStatus.COMPLETED), _stage("b", 1)],
    )
    assert reap_expired(repo) == ["r1"]
    run = repo.get_run("r1")
    assert run.status == RunStatus.INTERRUPTED
    assert run.error is not None and "lease lost" in run.error
    statuses = {(r.stage, r.status) for r in repo.stage_records("r1")}
    assert statuses == {("a", StageStatus.COMPLETED), ("b", StageStatus.INTERRUPTED)}
    assert repo.get_run("alive").status == RunStatus.RUNNING


def test_a_dead_runner_on_this_host_loses_its_lease_at_once(repo: StateRepository) -> None:
    import socket
    import subprocess
    import sys

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    repo.commit(runs=[_run(host=socket.gethostname(), pid=int(dead.stdout))])
    assert reap_expired(repo) == ["r1"]
    assert repo.get_run("r1").status == RunStatus.INTERRUPTED
    assert interrupt(repo, repo.get_run("r1")) is None  # not running: nothing to reap


def test_a_stale_reaper_never_overwrites_a_claim(repo: StateRepository) -> None:
    repo.commit(runs=[_run(lease_expires_at=time.time() - 1)])
    seen = repo.get_run("r1")  # two reapers both see the expired run
    assert repo.interrupt_run(seen, now=time.time(), reason="lease lost") is True
    claimed = _run(pid=2, lease_expires_at=time.time() + 60)
    assert repo.claim_run(claimed) is True  # the first one resumes it
    assert repo.interrupt_run(seen, now=time.time(), reason="lease lost") is False
    run = repo.get_run("r1")
    assert (run.status, run.pid) == (RunStatus.RUNNING, 2)


def test_a_renewed_lease_is_not_reaped(repo: StateRepository) -> None:
    repo.commit(runs=[_run(lease_expires_at=time.time() - 1)])
    seen = repo.get_run("r1")
    now = time.time()
    assert repo.renew_lease("r1", expires_at=now + 60, now=now) is True  # a slow runner lives
    assert repo.interrupt_run(seen, now=time.time(), reason="lease lost") is False
    assert repo.get_run("r1").status == RunStatus.RUNNING


def test_reaping_keeps_a_stage_that_completed_after_the_reaper_looked(
    repo: StateRepository,
) -> None:
    repo.commit(runs=[_run(lease_expires_at=time.time() - 1)], stages=[_stage("a"), _stage("b")])
    seen = repo.get_run("r1")
    repo.commit(stages=[_stage("a", status=StageStatus.COMPLETED)])  # its last commit
    assert repo.interrupt_run(seen, now=time.time(), reason="lease lost") is True
    statuses = {r.stage: r.status for r in repo.stage_records("r1")}
    assert statuses == {"a": StageStatus.COMPLETED, "b": StageStatus.INTERRUPTED}


def test_a_failed_commit_writes_nothing(repo: StateRepository) -> None:
    repo.commit(runs=[_run()])
    with pytest.raises(TypeError):
        repo.commit(stages=[_stage("a"), _stage("b", outputs={"bad": object()})])
    assert repo.stage_records("r1") == []


def test_sqlite_state_lives_in_the_project_state_dir(write_project) -> None:  # type: ignore[no-untyped-def]
    root = write_project(
        {
            "stepkit.toml": '[project]\nname = "demo"\n\n[[workspaces]]\nid = "shared"\n'
            'path = "steps"\n',
            "steps/.keep": "",
        }
    )
    project = Project.load(root)
    repo = SQLiteStateRepository.for_project(project)
    try:
        repo.commit(runs=[_run()])
        assert (project.state_dir / "state.db").is_file()
    finally:
        repo.close()
    reopened = SQLiteStateRepository(project.state_dir / "state.db")
    try:
        assert reopened.get_run("r1").inputs == {"n": 3, "names": ["a", "b"]}
    finally:
        reopened.close()


def test_claim_run_succeeds_only_when_the_run_is_not_running(repo: StateRepository) -> None:
    repo.commit(runs=[_run(status=RunStatus.INTERRUPTED)])
    mine = _run(pid=111)
    assert repo.claim_run(mine) is True
    assert repo.get_run("r1").pid == 111
    assert repo.claim_run(_run(pid=222)) is False  # running now: someone else holds it
    assert repo.get_run("r1").pid == 111
    assert repo.claim_run(_run("fresh")) is True  # a new run can always be claimed

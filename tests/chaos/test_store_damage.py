"""Every store file truncated, garbled, foreign or read-only, a full disk, and several
processes creating one store at once: each damage is a named error (the file, the store,
the way out), never an empty store in its place, and no record is lost."""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chaos.disks import make_read_only
from stepkit.artifacts import ArtifactStore, SQLiteCatalog
from stepkit.cli.app import main
from stepkit.errors import (
    RecordsUnreadableError,
    StoreDamagedError,
    StoreFullError,
    StorePermissionError,
)
from stepkit.plan.cache import StepCache
from stepkit.state import RunRecord, RunStatus, SQLiteStateRepository, StageRecord, StageStatus

Opener = Callable[[Path], Any]

#: Each SQLite store: its file name in the state folder, how to open it, its --reinit key.
STORES: dict[str, tuple[str, Opener, str]] = {
    "state store": ("state.db", SQLiteStateRepository, "state"),
    "artifact catalog": ("artifacts.sqlite", SQLiteCatalog, "artifacts"),
    "step cache": ("cache.sqlite", StepCache, "cache"),
}


def _run(run_id: str) -> RunRecord:
    return RunRecord(run_id=run_id, pipeline="p", status=RunStatus.COMPLETED, created_at=1.0)


def _stage(run_id: str, stage: str) -> StageRecord:
    return StageRecord(run_id=run_id, stage=stage, attempt=1, status=StageStatus.COMPLETED)


def _made(path: Path, opener: Opener) -> None:
    """A store with something in it, closed."""
    store = opener(path)
    if isinstance(store, SQLiteStateRepository):
        store.commit(runs=[_run("r1")], stages=[_stage("r1", "a")])
    store.close()


def _damage(path: Path, how: str) -> None:
    if how == "truncated":
        path.write_bytes(b"")
    elif how == "garbled":
        data = bytearray(path.read_bytes())
        data[:100] = b"\xa5" * 100  # the header: not a database any more
        path.write_bytes(bytes(data))
    else:  # "foreign": another program's database
        path.unlink()
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        conn.close()


@pytest.mark.parametrize("how", ["truncated", "garbled", "foreign"])
@pytest.mark.parametrize("name", list(STORES))
def test_a_damaged_store_file_is_a_named_error_never_a_new_store(
    tmp_path: Path, name: str, how: str
) -> None:
    filename, opener, key = STORES[name]
    path = tmp_path / filename
    _made(path, opener)
    _damage(path, how)
    before = path.read_bytes()
    with pytest.raises(StoreDamagedError) as caught:
        opener(path)
    message = str(caught.value)
    assert str(path) in message and name in message
    assert f"stepkit doctor --reinit {key}" in message and "backup" in message
    assert caught.value.path == path and caught.value.store == name
    assert path.read_bytes() == before  # no schema was written into it


def test_a_store_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _made(path, SQLiteStateRepository)
    with pytest.raises(StoreDamagedError, match="has no 'artifacts' table"):
        SQLiteCatalog(path)


def test_an_emptied_state_file_fails_runs_list_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path)
    state = project / ".stepkit" / "state.db"
    _made(state, SQLiteStateRepository)
    state.write_bytes(b"")
    code = _cli(project, "runs", "list")
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: The state store ") and str(state) in err
    assert "is empty (0 bytes)" in err and "stepkit doctor --reinit state" in err
    assert "No runs recorded" not in err
    assert state.read_bytes() == b""


def test_an_emptied_catalog_stops_verify_and_gc_and_keeps_every_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path)
    objects = _objects(project, count=3)
    catalog = project / ".stepkit" / "artifacts.sqlite"
    catalog.write_bytes(b"")
    assert _cli(project, "artifacts", "verify") == 1
    assert "The artifact catalog" in capsys.readouterr().err
    assert _cli(project, "artifacts", "gc", "--apply", "--grace", "0s") == 1
    err = capsys.readouterr().err
    assert str(catalog) in err and "is empty" in err
    assert all(p.exists() for p in objects)


def test_a_catalog_that_lost_its_records_makes_gc_refuse_until_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path)
    objects = _objects(project, count=3)
    conn = sqlite3.connect(project / ".stepkit" / "artifacts.sqlite")
    conn.execute("DELETE FROM artifacts")  # a bad restore: the schema, no rows
    conn.commit()
    conn.close()
    assert _cli(project, "artifacts", "verify") == 1
    out = capsys.readouterr().out
    assert "the catalog names no object while the store holds 3" in out
    assert out.count("orphan: ") == 3
    assert _cli(project, "artifacts", "gc", "--apply", "--grace", "0s") == 1
    err = capsys.readouterr().err
    assert "gc refused: the catalog knows no object while the store holds 3" in err
    assert "--force" in err
    assert all(p.exists() for p in objects)
    assert _cli(project, "artifacts", "gc", "--apply", "--grace", "0s", "--force") == 0
    assert not any(p.exists() for p in objects)


def test_doctor_reports_each_store_and_reinit_sets_the_damaged_one_aside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(tmp_path)
    _objects(project, count=1)
    state = project / ".stepkit" / "state.db"
    _made(state, SQLiteStateRepository)
    assert _cli(project, "doctor") == 0
    assert "All stores are healthy." in capsys.readouterr().out
    assert _cli(project, "doctor", "--reinit", "state") == 1
    assert "is healthy; nothing to re-initialise" in capsys.readouterr().err

    _damage(state, "garbled")
    assert _cli(project, "doctor") == 1
    out = capsys.readouterr().out
    assert "state store: damaged" in out and "artifact catalog: ok" in out
    assert "1 damaged store(s)" in out

    assert _cli(project, "doctor", "--reinit", "state") == 0
    aside = [
        p
        for p in state.parent.iterdir()
        if p.name.startswith("state.db.damaged-") and not p.name.endswith(("-wal", "-shm"))
    ]
    assert len(aside) == 1 and aside[0].read_bytes()[:16] == b"\xa5" * 16  # kept, not deleted
    assert SQLiteStateRepository(state).list_runs() == []
    assert _cli(project, "doctor") == 0


def test_doctor_finds_a_page_level_corruption_integrity_check_sees(tmp_path: Path) -> None:
    from stepkit.sqlite import diagnose
    from stepkit.state.sqlite import KIND

    path = tmp_path / "state.db"
    repo = SQLiteStateRepository(path)
    repo.commit(runs=[_run(f"r{i}") for i in range(300)])
    repo.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[2 * page + 40 : 2 * page + 400] = b"\x00\xff" * 180  # inside a b-tree page
    path.write_bytes(bytes(data))
    problems = diagnose(path, kind=KIND)
    assert problems, "integrity_check found nothing"


def test_stage_records_that_cannot_be_decoded_say_so(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    _made(path, SQLiteStateRepository)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE stage_attempts SET outputs = '{not json'")
    conn.commit()
    conn.close()
    repo = SQLiteStateRepository(path)
    with pytest.raises(RecordsUnreadableError) as caught:
        repo.stage_records("r1")
    assert "The stage records of run r1 in the state store" in str(caught.value)
    assert str(path) in str(caught.value) and "stepkit doctor" in str(caught.value)
    assert repo.get_run("r1").status == RunStatus.COMPLETED  # the run itself still reads
    repo.close()


# -- several processes creating one store at once ---------------------------------------------


def _create_and_commit(path: str, run_id: str, gate: str) -> str:
    Path(gate, f"ready-{run_id}").touch()
    while not Path(gate, "go").exists():  # line up at the gate: the opens happen together
        time.sleep(0.001)
    try:
        repo = SQLiteStateRepository(Path(path))
        repo.commit(runs=[_run(run_id)], stages=[_stage(run_id, "a")])
        repo.close()
    except Exception as exc:  # reported to the parent, which asserts there were none
        return f"{type(exc).__name__}: {exc}"
    return "ok"


@pytest.fixture(scope="module")
def eight_processes() -> Iterator[multiprocessing.pool.Pool]:
    """Eight worker processes, started once (spawned: each imports stepkit afresh)."""
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        yield pool


@pytest.mark.parametrize("trial", range(3))
def test_eight_processes_creating_one_state_file_at_once_all_succeed(
    tmp_path: Path, trial: int, eight_processes: multiprocessing.pool.Pool
) -> None:
    path, gate = tmp_path / "state.db", tmp_path / "gate"
    gate.mkdir()
    pending = eight_processes.starmap_async(
        _create_and_commit, [(str(path), f"r{i}", str(gate)) for i in range(8)], chunksize=1
    )
    deadline = time.monotonic() + 60
    while len(list(gate.iterdir())) < 8:  # each task waits in a worker of its own
        assert time.monotonic() < deadline and not pending.ready()
        time.sleep(0.005)
    (gate / "go").touch()
    assert pending.get(timeout=60) == ["ok"] * 8
    repo = SQLiteStateRepository(path)
    assert sorted(r.run_id for r in repo.list_runs()) == [f"r{i}" for i in range(8)]
    assert all(len(repo.stage_records(f"r{i}")) == 1 for i in range(8))
    repo.close()
    assert [p.name for p in tmp_path.iterdir() if ".new" in p.name] == []  # no temp left


# -- a read-only state folder ----------------------------------------------------------------


def test_read_only_commands_work_on_a_read_only_state_folder(
    remount_read_only: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = _project(remount_read_only)
    _objects(project, count=2)
    repo = SQLiteStateRepository(project / ".stepkit" / "state.db")
    repo.commit(runs=[_run("r1")], stages=[_stage("r1", "a")])
    repo.close()
    make_read_only(remount_read_only)

    assert _cli(project, "runs", "list") == 0
    assert "r1" in capsys.readouterr().out
    assert _cli(project, "runs", "show", "r1") == 0
    assert "a" in capsys.readouterr().out
    assert _cli(project, "runs", "logs", "r1") == 0
    capsys.readouterr()
    assert _cli(project, "artifacts", "stats") == 0
    assert "records: 2" in capsys.readouterr().out.replace("  ", "")
    assert _cli(project, "artifacts", "show", "a0") == 0
    capsys.readouterr()
    assert _cli(project, "artifacts", "verify") == 0
    assert "2 ok" in capsys.readouterr().out
    assert _cli(project, "doctor") == 0
    capsys.readouterr()

    # and a write says what is wrong, naming the file
    with pytest.raises(StorePermissionError) as caught:
        SQLiteStateRepository(project / ".stepkit" / "state.db").commit(runs=[_run("r2")])
    assert str(project / ".stepkit" / "state.db") in str(caught.value)


# -- a full disk -----------------------------------------------------------------------------


def test_a_full_disk_under_the_state_is_said_as_such_and_keeps_what_was_committed(
    small_disk: Path,
) -> None:
    path = small_disk / "state.db"
    repo = SQLiteStateRepository(path)
    repo.commit(runs=[_run("kept")], stages=[_stage("kept", "a")])
    big = "x" * 200_000
    with pytest.raises(StoreFullError) as caught:
        for i in range(40):
            stage = StageRecord(
                run_id=f"r{i}", stage="a", attempt=1, status=StageStatus.COMPLETED, traceback=big
            )
            repo.commit(runs=[_run(f"r{i}")], stages=[stage])
    assert str(path) in str(caught.value) and "full" in str(caught.value)
    assert caught.value.errno == 28
    repo.close()
    again = SQLiteStateRepository(path, read_only=True)
    assert again.get_run("kept").status == RunStatus.COMPLETED
    assert len(again.stage_records("kept")) == 1
    again.close()


def test_a_full_disk_when_creating_a_store_is_said_as_such(small_disk: Path) -> None:
    (small_disk / "filler").write_bytes(b"\0" * (2 * 1024 * 1024 - 4096 * 2))
    with pytest.raises(StoreFullError, match="is full"):
        SQLiteStateRepository(small_disk / "state.db")
    assert not (small_disk / "state.db").exists()  # no half-made store left behind


# -- helpers ---------------------------------------------------------------------------------


def _project(base: Path) -> Path:
    root = base / "project"
    (root / "steps").mkdir(parents=True)
    (root / "stepkit.toml").write_text(
        '[project]\nname = "p"\n[[workspaces]]\nid = "core"\npath = "steps"\n'
    )
    return root


def _objects(project: Path, *, count: int) -> list[Path]:
    """``count`` objects, each recorded, in the project's store; their object files."""
    state = project / ".stepkit"
    with ArtifactStore(
        root=state / "artifacts", catalog=SQLiteCatalog(state / "artifacts.sqlite")
    ) as store:
        done = [
            store.put_bytes(f"bytes {i}".encode(), artifact_id=f"a{i}", source="s", producer="p")
            for i in range(count)
        ]
        return [d.storage_path for d in done]


def _cli(project: Path, *args: str) -> int:
    try:
        main(["--project", str(project), *args])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0

"""A store file whose tables are not the ones stepkit made (another program's tables at a
stepkit schema version, a dropped table, a newer stepkit's schema) and a catalog index
damaged under its first page: every command names the file, the store and the way out —
never ``unexpected OperationalError``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from catalog.synth import Step, write_project

from chaos.disks import make_read_only
from stepkit.artifacts import ArtifactStore, SQLiteCatalog
from stepkit.cli.app import main
from stepkit.plan.cache import StepCache
from stepkit.state import RunRecord, RunStatus, SQLiteStateRepository, StageRecord, StageStatus


def _cli(project: Path, *args: str) -> int:
    try:
        main(["--project", str(project), *args])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with one step, one recorded run (``r1``), one artifact and a step cache."""
    root = write_project(tmp_path / "project", {"shared": [Step("Loader")]})
    state = root / ".stepkit"
    repo = SQLiteStateRepository(state / "state.db")
    run = RunRecord(run_id="r1", pipeline="p", status=RunStatus.COMPLETED, created_at=1.0)
    stage = StageRecord(run_id="r1", stage="a", attempt=1, status=StageStatus.COMPLETED)
    repo.commit(runs=[run], stages=[stage])
    repo.close()
    catalog = SQLiteCatalog(state / "artifacts.sqlite")
    with ArtifactStore(root=state / "artifacts", catalog=catalog) as store:
        store.put_bytes(b"bytes", artifact_id="a0", source="s", producer="p")
    StepCache(state / "cache.sqlite").close()
    return root


def _foreign_at_stepkit_version(path: Path, table: str) -> None:
    """Another program's database that happens to have a table of that name and a
    ``user_version`` of 1 (what a migration tool of its own would leave)."""
    path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    conn.execute("PRAGMA user_version = 1")
    conn.close()


def _sql(path: Path, statement: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(statement)
    conn.close()


@pytest.mark.parametrize(
    ("filename", "table", "store", "key", "command"),
    [
        ("state.db", "runs", "state store", "state", ("runs", "list")),
        ("artifacts.sqlite", "artifacts", "artifact catalog", "artifacts", ("artifacts", "verify")),
        ("cache.sqlite", "cache_entries", "step cache", "cache", ()),  # only a run reads it
    ],
)
def test_another_programs_tables_at_a_stepkit_version_are_named_with_the_way_out(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    filename: str,
    table: str,
    store: str,
    key: str,
    command: tuple[str, ...],
) -> None:
    path = project / ".stepkit" / filename
    _foreign_at_stepkit_version(path, table)
    if command:
        assert _cli(project, *command) == 1
        err = capsys.readouterr().err
        assert err.startswith(
            f"error: The {store} {path} lacks part of the schema stepkit made it with (no such "
        )
        assert f"`stepkit doctor --reinit {key}`" in err
        assert "OperationalError" not in err and err.count("\n") == 1

    conn = sqlite3.connect(path)
    columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    conn.close()
    assert columns == ["id", "name"]  # the failed upgrade left the other program's table be

    assert _cli(project, "doctor") == 1
    out = capsys.readouterr().out
    assert f"{store}: damaged" in out
    assert (
        f"{path} lacks part of the schema stepkit made it with (table {table!r} has no column"
        in out
    )


def test_a_state_store_that_lost_a_table_is_named_by_runs_show_and_doctor(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = project / ".stepkit" / "state.db"
    _sql(state, "DROP TABLE stage_attempts")
    assert _cli(project, "runs", "show", "r1") == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: The state store {state} lacks part of the schema stepkit made it with (no such "
        "table: stage_attempts): another program changed it, or it is not a stepkit file. "
        "Restore it from a backup, or set it aside and start an empty one with "
        "`stepkit doctor --reinit state`.\n"
    )
    assert _cli(project, "doctor") == 1
    assert "(no table 'stage_attempts')" in capsys.readouterr().out
    assert _cli(project, "doctor", "--reinit", "state") == 0  # the way out works
    capsys.readouterr()
    assert _cli(project, "runs", "list") == 0


def test_a_store_of_a_newer_stepkit_says_upgrade_and_doctor_does_not_call_it_healthy(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = project / ".stepkit" / "artifacts.sqlite"
    _sql(catalog, "PRAGMA user_version = 7")
    assert _cli(project, "artifacts", "verify") == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: The artifact catalog {catalog} is at schema version 7, newer than this "
        "stepkit knows (1); upgrade stepkit.\n"
    )
    before = catalog.read_bytes()
    assert _cli(project, "doctor") == 1
    out = capsys.readouterr().out
    assert f"artifact catalog: newer    {catalog}" in out
    assert out.endswith("1 store(s) of a newer stepkit: upgrade stepkit.\n")
    assert "damaged" not in out and "All stores are healthy" not in out
    # not damage: never set aside for an empty store an older stepkit would then fill
    assert _cli(project, "doctor", "--reinit", "artifacts") == 1
    assert "newer than this stepkit knows (1); upgrade stepkit." in capsys.readouterr().err
    assert catalog.read_bytes() == before
    assert not list(catalog.parent.glob("artifacts.sqlite.damaged-*"))


def _garble_all_but_the_first_page(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = int(conn.execute("PRAGMA page_size").fetchone()[0])
    conn.close()
    data = bytearray(path.read_bytes())
    assert len(data) > 3 * page
    data[page:] = b"\xff" * (len(data) - page)  # header and schema intact: it opens
    path.write_bytes(bytes(data))


def test_a_catalog_index_damaged_past_its_first_page_is_rebuilt_and_doctor_names_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(project, "catalog", "list") == 0
    capsys.readouterr()
    index = project / ".stepkit" / "catalog" / "index.sqlite"
    _garble_all_but_the_first_page(index)

    assert _cli(project, "doctor") == 1
    out = capsys.readouterr().out
    assert "catalog index: damaged" in out
    assert f"catalog index {index} cannot be used (database disk image is malformed)" in out

    assert _cli(project, "catalog", "list") == 0
    captured = capsys.readouterr()
    assert (
        f"catalog index {index} cannot be used" in captured.err and "rebuilding it" in captured.err
    )
    assert "Loader" in captured.out
    assert _cli(project, "doctor") == 0


def test_an_sqlite_error_no_store_mapped_still_reads_as_a_store_problem(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def locked(*_args: object, **_kwargs: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    # a path that forgot to map its error (the store's own mapping is tested above)
    monkeypatch.setattr(SQLiteStateRepository, "list_runs", locked)
    assert _cli(project, "runs", "list") == 1
    assert capsys.readouterr().err == (
        "error: a stepkit store (SQLite) failed: database is locked; `stepkit doctor` checks "
        "every store and names a damaged one (run with --debug for the traceback)\n"
    )


def test_writing_commands_on_a_read_only_state_folder_name_the_store_and_the_way_out(
    remount_read_only: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_project(remount_read_only / "project", {"shared": [Step("Loader")]})
    state = root / ".stepkit"
    catalog = SQLiteCatalog(state / "artifacts.sqlite")
    with ArtifactStore(root=state / "artifacts", catalog=catalog) as store:
        store.put_bytes(b"bytes", artifact_id="a0", source="s", producer="p")
    data = remount_read_only / "data.txt"
    data.write_text("new bytes")
    line = {"artifact_id": "m1", "source_url": "s3://b/k", "resolver": "s3", "path": str(data)}
    manifest = remount_read_only / "manifest.jsonl"
    manifest.write_text(json.dumps(line) + "\n")
    make_read_only(remount_read_only)

    # a manifest line the store cannot take is skipped with the reason; the rest goes on
    assert (
        _cli(root, "artifacts", "import-manifest", str(manifest), "--apply", "--hash-missing") == 0
    )
    out = capsys.readouterr().out
    assert (
        f"{manifest}:1: skipped: Cannot write to the artifact store {state / 'artifacts'}: its "
        "file system is read-only. To change it, remount it read-write"
    ) in out
    assert "OSError" not in out

    added = (
        "artifacts",
        "add",
        str(data),
        "--artifact-id",
        "x",
        "--source",
        "s",
        "--producer",
        "p",
    )
    assert _cli(root, *added) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Cannot ") and "its file system is read-only" in err, err
    assert str(state) in err and err.count("\n") == 1
    assert "OSError" not in err and "readonly database" not in err

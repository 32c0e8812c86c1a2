"""``stepkit artifacts …`` end to end: exit codes, dry runs, JSON, one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stepkit.cli.app import app
from stepkit.cli.artifacts import app as artifacts_app


@pytest.fixture
def project(write_project) -> Path:  # type: ignore[no-untyped-def]
    return write_project(  # type: ignore[no-any-return]
        {
            "stepkit.toml": """
            [project]
            name = "p"
            [[workspaces]]
            id = "core"
            path = "steps"
            """,
            "steps/.keep": "",
        }
    )


def run(project: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--project", str(project), "artifacts", *args])
    return result.exit_code, result.stdout, result.stderr


def test_every_command_has_help() -> None:
    for command in artifacts_app.registered_commands:
        assert command.callback is not None and command.callback.__doc__, command.name
    names = {c.name for c in artifacts_app.registered_commands}
    assert names == {
        "add", "show", "where", "stats", "dedup-report", "verify", "gc", "import-manifest",
    }  # fmt: skip


def test_add_show_where_stats_dedup(project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "a.csv").write_bytes(b"1,2\n")
    (folder / "b.csv").write_bytes(b"1,2\n")
    code, out, err = run(
        project, "add", str(folder), "--artifact-id", "tbl", "--source", "s", "--producer", "etl",
        "--run", "r1", "--json",
    )  # fmt: skip
    assert code == 0, err
    added = json.loads(out)
    assert [a["artifact_id"] for a in added] == ["tbl/a.csv", "tbl/b.csv"]
    assert [a["dedup_hit"] for a in added] == [False, True]
    assert not any(folder.iterdir())
    code, out, _ = run(project, "show", "tbl/a.csv", "--json")
    assert code == 0 and json.loads(out)[0]["run_id"] == "r1"
    code, out, _ = run(project, "where", added[0]["sha256"], "--json")
    assert code == 0 and len(json.loads(out)["records"]) == 2
    code, out, _ = run(project, "stats", "--json")
    stats = json.loads(out)
    assert (stats["records"], stats["objects"], stats["saved_bytes"]) == (2, 1, 4)
    code, out, _ = run(project, "dedup-report", "--json")
    assert json.loads(out)["producers"] == [
        {"producer": "etl", "records": 2, "logical_bytes": 8, "saved_bytes": 4, "dedup_records": 1}
    ]


def test_verify_exit_codes(project: Path, tmp_path: Path) -> None:
    code, out, _ = run(project, "verify")
    assert code == 0 and "0 objects checked" in out
    src = tmp_path / "f.txt"
    src.write_bytes(b"fine")
    run(project, "add", str(src), "--artifact-id", "f", "--source", "s", "--producer", "p")
    code, out, _ = run(project, "verify", "--json")
    assert code == 0 and json.loads(out)["ok"] == 1
    obj = next((project / ".stepkit/artifacts/cas").rglob("*/*/*"))
    os.chmod(obj, 0o644)
    obj.write_bytes(b"FINE")
    code, out, _ = run(project, "verify", "--json")
    assert code == 1 and json.loads(out)["mismatch"] == 1
    code, _, err = run(project, "verify", "--since", "yesterday")
    assert code == 2 and "'yesterday' is not a date" in err


def test_gc_is_a_dry_run_by_default(project: Path, tmp_path: Path) -> None:
    stale = project / ".stepkit/artifacts/tmp/1-old.tmp"
    run(project, "stats")
    stale.write_bytes(b"x" * 10)
    code, out, _ = run(project, "gc", "--grace", "0s")
    assert code == 0 and "would remove" in out and "dry run" in out
    assert stale.exists()
    code, out, _ = run(project, "gc", "--grace", "0s", "--apply")
    assert code == 0 and not stale.exists()
    code, _, err = run(project, "gc", "--older-than", "soon")
    assert code == 2 and "Invalid age 'soon'" in err


def test_import_manifest_reports_counts(project: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"broken": \n', encoding="utf-8")
    code, out, _ = run(project, "import-manifest", str(manifest))
    assert code == 0
    assert f"{manifest}:1: malformed: invalid JSON" in out
    assert "would import 0, already present 0, skipped 0, malformed 1" in out


def test_library_errors_are_one_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stepkit.cli import main

    with pytest.raises(SystemExit) as caught:
        main(["--project", str(project), "artifacts", "where", "../../etc/passwd"])
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert err == (
        "error: Invalid SHA-256 digest '../../etc/passwd': expected 64 lowercase hex characters.\n"
    )


def test_add_of_many_files_lists_a_few_then_sums_up(project: Path, tmp_path: Path) -> None:
    from stepkit.cli.artifacts import LISTED_FILES

    folder = tmp_path / "many"
    (folder / "sub").mkdir(parents=True)
    for i in range(LISTED_FILES + 5):
        (folder / "sub" / f"f{i:02d}.txt").write_bytes(b"%d" % (i % 3))
    code, out, err = run(
        project, "add", str(folder), "--artifact-id", "m", "--source", "s", "--producer", "p",
        "--copy",
    )  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].endswith("m/sub/f00.txt  (new, copied)")
    assert lines[1].strip().endswith("sources/local/m/many/sub/f00.txt")  # the folder's shape
    assert "… and 5 more (--json lists every file)" in out
    assert (
        lines[-1]
        == f"{LISTED_FILES + 5} files: 3 new objects (3 B), {LISTED_FILES + 2} already stored"
    )
    assert err == ""  # no progress bar when stderr is not a terminal
    code, out, _ = run(project, "stats", "--json")
    assert json.loads(out)["records"] == LISTED_FILES + 5


def test_add_of_a_missing_path_is_one_line(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from stepkit.cli import main

    with pytest.raises(SystemExit) as caught:
        main(
            ["--project", str(project), "artifacts", "add", str(tmp_path / "gone"),
             "--artifact-id", "g", "--source", "s", "--producer", "p"]
        )  # fmt: skip
    assert caught.value.code == 1
    assert (
        capsys.readouterr().err == f"error: {tmp_path / 'gone'}: no such file or folder to add.\n"
    )


def test_runs_show_gives_a_nodes_finalize_time() -> None:
    from stepkit.cli.runs import _finalize_note

    assert _finalize_note({"_node": {"finalize_seconds": 0.0123}, "model": {}}) == (
        " (finalize 0.012 s)"
    )
    assert _finalize_note({"value": 1}) == ""  # a plain stage: nothing to add
    assert _finalize_note(None) == ""


def test_a_mistyped_command_is_named_with_the_one_meant(project: Path) -> None:
    code, _, err = run(project, "ad", "x")
    assert code == 2
    assert "No such command 'ad'. Did you mean 'add'?" in err
    result = CliRunner().invoke(app, ["--project", str(project), "artifact", "add"])
    assert result.exit_code == 2
    assert "No such command 'artifact'. Did you mean 'artifacts'?" in result.stderr


def test_a_groups_help_lists_every_command_in_order(project: Path) -> None:
    code, out, _ = run(project, "--help")
    assert code == 0
    listed = [line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == [c.name for c in artifacts_app.registered_commands]

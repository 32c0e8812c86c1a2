"""The per-folder file table: rows made on demand, copies that share folders until one
changes, and the walk's folders compared whole."""

from __future__ import annotations

from array import array
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from stepkit.catalog.files import UNPARSED, FileTable, FolderRows
from stepkit.project import FolderScan, Project, scan_project

BIG_INODE = 2**64 - 5  # past 2**63: stored as its signed equal, given back as it was


def _scan(folder: str, names: list[str], start: int = 1) -> FolderScan:
    stats = array("q")
    for i, _ in enumerate(names):
        stats.extend((1000 + start + i, 10 * (i + 1), start + i))
    return FolderScan(folder, "ws", "spec", names, stats)


def test_rows_are_made_on_demand_and_round_trip_through_plain_data() -> None:
    table = FileTable({"/p/specs": FolderRows.unparsed(_scan("/p/specs", ["a.py", "b.py"]))})
    table.set_hash("/p/specs/b.py", 77)
    table.put("/p/configs/c.py", "ws", "config", (5, 6, BIG_INODE), 9)
    assert table.get("/p/specs/a.py") == ["ws", "spec", 1001, 10, 1, None]
    assert table.get("/p/specs/b.py") == ["ws", "spec", 1002, 20, 2, 77]
    assert table.get("/p/configs/c.py") == ["ws", "config", 5, 6, BIG_INODE, 9]
    assert table.hash_of("/p/specs/a.py") is None and table.hash_of("/p/specs/b.py") == 77
    assert "/p/specs/a.py" in table and "/p/specs/z.py" not in table and "/p" not in table
    assert len(table) == 3 and list(table) == ["/p/specs/a.py", "/p/specs/b.py", "/p/configs/c.py"]
    again = FileTable.from_plain(table.plain())
    assert list(again.items()) == list(table.items())


def test_put_keeps_names_sorted_and_remove_drops_empty_folders() -> None:
    table = FileTable()
    for name in ("m.py", "a.py", "z.py", "k.py"):
        table.put(f"/p/specs/{name}", "ws", "spec", (1, 2, 3), None)
    assert table.folders["/p/specs"].names == ["a.py", "k.py", "m.py", "z.py"]
    table.put("/p/specs/k.py", "ws", "spec", (4, 5, 6), UNPARSED)  # replaced in place
    assert table.get("/p/specs/k.py") == ["ws", "spec", 4, 5, 6, None]
    assert table.remove("/p/specs/k.py") and not table.remove("/p/specs/k.py")
    for name in ("a.py", "m.py", "z.py"):
        assert table.remove(f"/p/specs/{name}")
    assert table.folders == {} and not table and len(table) == 0


def test_a_copy_shares_folders_until_either_changes_one() -> None:
    table = FileTable({"/p/specs": FolderRows.unparsed(_scan("/p/specs", ["a.py", "b.py"]))})
    table.folders["/p/c"] = FolderRows.unparsed(_scan("/p/c", ["c.py"]))
    copy = table.copy()
    copy.put("/p/specs/new.py", "ws", "spec", (1, 1, 1), 5)
    copy.remove("/p/specs/a.py")
    table.set_hash("/p/specs/b.py", 3)
    assert list(table) == ["/p/specs/a.py", "/p/specs/b.py", "/p/c/c.py"]
    assert list(copy) == ["/p/specs/b.py", "/p/specs/new.py", "/p/c/c.py"]
    assert copy.hash_of("/p/specs/b.py") is None and table.hash_of("/p/specs/b.py") == 3
    assert copy.folders["/p/c"] is table.folders["/p/c"]  # untouched: still shared


def test_a_folder_matches_only_an_identical_walk() -> None:
    rows = FolderRows.unparsed(_scan("/p/specs", ["a.py", "b.py"]))
    assert rows.matches(_scan("/p/specs", ["a.py", "b.py"]))
    assert not rows.matches(_scan("/p/specs", ["a.py", "c.py"]))
    assert not rows.matches(_scan("/p/specs", ["a.py", "b.py"], start=2))
    other = _scan("/p/specs", ["a.py", "b.py"])
    other.component = "config"
    assert not rows.matches(other)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["put", "remove"]),
            st.sampled_from(["/p/a", "/p/b", "/q"]),
            st.sampled_from(["x.py", "y.py", "z.py", "w.py"]),
            st.integers(0, 2**64 - 1),
        ),
        max_size=30,
    )
)
def test_the_table_behaves_like_a_dict_of_rows(
    ops: list[tuple[str, str, str, int]],
) -> None:
    table, model = FileTable(), {}
    snapshot = table.copy()
    for op, folder, name, number in ops:
        path = f"{folder}/{name}"
        if op == "put":
            digest = None if number % 3 == 0 else number % 2**32
            table.put(path, "ws", "spec", (number % 1000, number % 7, number), digest)
            model[path] = ["ws", "spec", number % 1000, number % 7, number, digest]
        else:
            assert table.remove(path) == (model.pop(path, None) is not None)
    assert dict(table.items()) == model and len(table) == len(model)
    assert {p: table.get(p) for p in model} == model
    assert len(snapshot) == 0  # the copy taken first never saw a change


def test_the_walk_gives_sorted_python_files_per_folder(tmp_path: Path) -> None:
    steps = tmp_path / "steps"
    for rel in ("specs/b_spec.py", "specs/a_spec.py", "specs/__init__.py", "specs/notes.txt"):
        (steps / rel).parent.mkdir(parents=True, exist_ok=True)
        (steps / rel).write_text("x = 1\n")
    (steps / "specs" / "nested").mkdir()
    (steps / "specs" / "nested" / "c_spec.py").write_text("x = 1\n")
    (tmp_path / "stepkit.toml").write_text(
        '[project]\nname = "t"\n[[workspaces]]\nid = "core"\npath = "steps"\n'
    )
    walk = scan_project(Project.load(tmp_path))
    assert [(Path(s.folder).name, s.names) for s in walk.folders] == [
        ("specs", ["a_spec.py", "b_spec.py"]),
        ("nested", ["c_spec.py"]),
    ]
    (path, ws, component, mtime, size, inode) = next(walk.files())
    st_ = Path(path).stat()
    assert (ws, component) == ("core", "spec")
    assert (mtime, size, inode) == (st_.st_mtime_ns, st_.st_size, st_.st_ino)
    assert len(walk) == 3

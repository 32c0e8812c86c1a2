"""The artifact store on a full disk and on a read-only mount: each failure is said as such,
naming the store, and nothing of a failed finalize is recorded (no record, no readable path,
no temp file), while what was committed before stays whole and readable."""

from __future__ import annotations

import errno
import os
from datetime import timedelta
from pathlib import Path

import pytest

from chaos.disks import make_read_only
from stepkit.artifacts import ArtifactStore
from stepkit.artifacts.items import FinalizeItem
from stepkit.cli.app import main
from stepkit.errors import StoreFullError, StorePermissionError


def _store(root: Path) -> ArtifactStore:
    return ArtifactStore(root=root / "store")


def _readable_paths(store: ArtifactStore) -> set[str]:
    """Every readable path on disk (the files outside the objects, temp and lock)."""
    found = set()
    for path in store.root.rglob("*"):
        rel = path.relative_to(store.root).as_posix()
        if path.is_file() and not rel.startswith(("cas/", "tmp/", ".gc.lock", "artifacts.sqlite")):
            found.add(rel)
    return found


@pytest.mark.parametrize("mode", ["copy", "move"])
def test_a_file_larger_than_the_free_space_is_a_full_disk_naming_the_store(
    small_disk: Path, tmp_path: Path, mode: str
) -> None:
    store = _store(small_disk)
    kept = store.put_bytes(b"kept", artifact_id="kept", source="s", producer="p")
    big = tmp_path / "big.bin"  # another file system: a move copies it
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    with pytest.raises(StoreFullError) as caught:
        store.finalize(big, artifact_id="big", source="s", producer="p", mode=mode)  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"The disk holding the artifact store {store.root} is full; nothing of this write "
        "was kept. Free some space and try again."
    )
    assert caught.value.errno == errno.ENOSPC
    assert big.exists()  # a failed move leaves the source where it was
    assert [r.artifact_id for r in store.catalog.records()] == ["kept"]
    assert list(store.local.iter_temp()) == []
    with store.open(kept.record.sha256) as handle:
        assert handle.read() == b"kept"
    # and once there is room again, the same file goes in
    big.write_bytes(b"smaller now")
    assert store.finalize(big, artifact_id="big", source="s", producer="p").record.bytes == 11
    store.close()


def test_batches_until_the_disk_is_full_record_only_whole_batches(
    small_disk: Path, tmp_path: Path
) -> None:
    """Whatever write the disk refuses first (an object, a readable path, the catalog), the
    batch it belongs to leaves no record, no readable path and no temp file behind."""
    store = _store(small_disk)
    committed: list[str] = []
    with pytest.raises(StoreFullError) as caught:
        for batch in range(200):
            items = []
            for i in range(10):
                path = tmp_path / f"b{batch}-{i}.bin"
                path.write_bytes(os.urandom(3000))
                items.append(FinalizeItem(path, f"b{batch}/{i}", "s", "p", None, None, None))
            store.finalize_many(items, mode="copy")
            committed += [item.artifact_id for item in items]
    assert str(store.root) in str(caught.value) or "artifacts.sqlite" in str(caught.value)
    assert committed  # some batches fitted before the disk filled
    records = list(store.catalog.records())
    assert sorted(r.artifact_id for r in records) == sorted(committed)
    assert _readable_paths(store) == {r.layout_path for r in records if r.layout_path}
    assert list(store.local.iter_temp()) == []
    for record in records:
        with store.open(record.sha256) as handle:
            assert len(handle.read()) == 3000
    store.close()


def test_a_read_only_store_refuses_writes_by_name_and_still_serves_reads(
    remount_read_only: Path,
) -> None:
    store = _store(remount_read_only)
    kept = store.put_bytes(b"kept", artifact_id="kept", source="s", producer="p")
    store.close()
    make_read_only(remount_read_only)

    store = _store(remount_read_only)
    source = Path(os.environ.get("TMPDIR", "/tmp")) / f"stepkit-ro-{os.getpid()}.txt"
    source.write_text("new bytes")
    try:
        with pytest.raises(StorePermissionError) as caught:
            store.finalize(source, artifact_id="new", source="s", producer="p", mode="copy")
    finally:
        source.unlink()
    reason = "its file system is read-only" if os.geteuid() == 0 else "permission denied"
    assert str(caught.value).startswith(
        f"Cannot write to the artifact store {store.root}: {reason}."
    )
    assert [r.artifact_id for r in store.show("kept")] == ["kept"]
    with store.open(kept.record.sha256) as handle:
        assert handle.read() == b"kept"
    assert store.verify().ok == 1
    assert store.gc(apply=False).objects == []  # a dry run reads only
    with pytest.raises(StorePermissionError, match="Cannot lock the artifact store"):
        store.gc(apply=True, grace=timedelta(0))
    store.close()


def test_the_cli_says_a_full_disk_in_one_line(
    small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = small_disk / "project"
    (project / "steps").mkdir(parents=True)
    (project / "stepkit.toml").write_text(
        '[project]\nname = "p"\n[[workspaces]]\nid = "core"\npath = "steps"\n'
    )
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    with pytest.raises(SystemExit) as exited:
        main(
            [
                *("--project", str(project), "artifacts", "add", str(big)),
                *("--artifact-id", "big", "--source", "s", "--producer", "p"),
            ]
        )
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: The disk holding the artifact store ")
    assert "is full; nothing of this write was kept" in err and len(err.splitlines()) == 1

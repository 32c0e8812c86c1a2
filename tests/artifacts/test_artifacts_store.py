"""Finalize: move by hardlink, copy, dedup, versions, readable paths, batches."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from stepkit.artifacts import ArtifactStore, FinalizeItem
from stepkit.errors import ArtifactNotFoundError, ArtifactStoreError, PathEscapeError

MakeFile = Callable[[str, bytes], Path]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_move_publishes_the_same_inode_and_removes_the_source(
    store: ArtifactStore, make_file: MakeFile
) -> None:
    src = make_file("model.bin", b"weights")
    inode = src.stat().st_ino
    done = store.finalize(src, artifact_id="m", source="https://h.org/model.bin", producer="train")
    assert not src.exists()
    obj = store.path(sha(b"weights"))
    assert done.storage_path == obj
    assert obj == store.root / "cas" / "sha256" / sha(b"weights")[:2] / sha(b"weights")[2:]
    assert obj.stat().st_ino == inode  # no byte copied
    assert done.layout_path is not None and done.layout_path.stat().st_ino == inode
    assert done.layout_path == store.root / "sources/h.org/m/model.bin"
    assert (done.sha256, done.bytes, done.status, done.copied) == (sha(b"weights"), 7, "new", False)
    assert stat.S_IMODE(obj.stat().st_mode) & 0o222 == 0  # read-only
    assert obj.read_bytes() == b"weights"


def test_move_keep_leaves_a_read_only_link(store: ArtifactStore, make_file: MakeFile) -> None:
    src = make_file("a.txt", b"same")
    store.finalize(src, artifact_id="a", source="s", producer="p", keep=True)
    assert src.stat().st_ino == store.path(sha(b"same")).stat().st_ino
    assert stat.S_IMODE(src.stat().st_mode) & 0o222 == 0


def test_dedup_hit_drops_new_bytes_and_keeps_one_inode(
    store: ArtifactStore, make_file: MakeFile
) -> None:
    first = store.finalize(make_file("a.txt", b"dup"), artifact_id="a", source="s", producer="p")
    kept = make_file("b.txt", b"dup")
    second = store.finalize(kept, artifact_id="b", source="s", producer="q", keep=True)
    assert (first.dedup_hit, second.dedup_hit) == (False, True)
    obj = store.path(sha(b"dup"))
    assert obj.stat().st_nlink == 4  # object + two readable paths + the kept source
    assert kept.stat().st_ino == obj.stat().st_ino  # the kept file became a link
    assert second.layout_path is not None
    assert second.layout_path.stat().st_ino == first.storage_path.stat().st_ino
    assert [o.sha256 for o in store.blobs.iter_objects()] == [sha(b"dup")]


def test_copy_streams_into_the_store_and_leaves_the_source(
    store: ArtifactStore, make_file: MakeFile
) -> None:
    src = make_file("c.txt", b"copied")
    done = store.finalize(src, artifact_id="c", source="s", producer="p", mode="copy")
    assert src.read_bytes() == b"copied"
    assert src.stat().st_ino != done.storage_path.stat().st_ino
    assert done.copied and done.storage_path.read_bytes() == b"copied"
    assert list(store.blobs.iter_temp()) == []


def test_put_bytes_open_exists(store: ArtifactStore) -> None:
    done = store.put_bytes(b"payload", artifact_id="x", source="mem", producer="p")
    assert store.exists(done.sha256)
    with store.open(done.sha256) as handle:
        assert handle.read() == b"payload"
    missing = sha(b"nothing")
    assert not store.exists(missing)
    with pytest.raises(ArtifactNotFoundError):
        store.open(missing)


def test_stream_finalize(store: ArtifactStore) -> None:
    done = store.finalize(io.BytesIO(b"stream"), artifact_id="s", source="s", producer="p")
    assert done.copied and store.path(done.sha256).read_bytes() == b"stream"


def test_same_key_same_content_is_present_different_content_is_a_new_version(
    store: ArtifactStore,
) -> None:
    one = store.put_bytes(b"v1", artifact_id="r", source="s", producer="p")
    again = store.put_bytes(b"v1", artifact_id="r", source="s", producer="p")
    two = store.put_bytes(b"v2", artifact_id="r", source="s", producer="p")
    assert (one.status, again.status, two.status) == ("new", "present", "new_version")
    assert again.record == one.record
    records = store.show("r")
    assert [(r.version, r.sha256) for r in records] == [(1, sha(b"v1")), (2, sha(b"v2"))]
    assert store.path(sha(b"v1")).read_bytes() == b"v1"  # the old version is kept


def test_colliding_readable_names_keep_both_contents(
    store: ArtifactStore, make_file: MakeFile
) -> None:
    a = make_file("x/report.pdf", b"first report")
    b = make_file("y/report.pdf", b"second report")
    ra = store.finalize(
        a, artifact_id="w", source="https://h/report.pdf", producer="p", layout="docs/report.pdf"
    )
    rb = store.finalize(
        b, artifact_id="w2", source="https://h/report.pdf", producer="p", layout="docs/report.pdf"
    )
    assert ra.layout_path == store.root / "docs/report.pdf"
    assert rb.layout_path == store.root / f"docs/report~{rb.sha256[:12]}.pdf"
    assert ra.layout_path.read_bytes() == b"first report"
    assert rb.layout_path.read_bytes() == b"second report"
    assert rb.record.layout_path == f"docs/report~{rb.sha256[:12]}.pdf"  # recorded


def test_a_foreign_file_at_the_readable_path_is_not_overwritten(
    store: ArtifactStore, make_file: MakeFile
) -> None:
    squatter = store.root / "docs" / "a.txt"
    squatter.parent.mkdir(parents=True)
    squatter.write_bytes(b"not ours")
    done = store.finalize(
        make_file("a.txt", b"ours"), artifact_id="a", source="s", producer="p", layout="docs/a.txt"
    )
    assert squatter.read_bytes() == b"not ours"
    assert done.layout_path is not None and done.layout_path.read_bytes() == b"ours"


@pytest.mark.parametrize(
    "layout", ["../escape.txt", "/abs/path", "cas/sha256/x", "tmp/x", "a/../../b", ""]
)
def test_readable_paths_cannot_escape_or_shadow_the_store(
    store: ArtifactStore, make_file: MakeFile, layout: str
) -> None:
    with pytest.raises(PathEscapeError):
        store.finalize(
            make_file("a.txt", b"a"), artifact_id="a", source="s", producer="p", layout=layout
        )
    assert store.catalog.stats()["records"] == 0


def test_relative_root_is_resolved_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with ArtifactStore(root="rel-store") as s:
        assert s.root == tmp_path / "rel-store"
        done = s.put_bytes(b"r", artifact_id="r", source="s", producer="p")
        monkeypatch.chdir("/")
        assert s.exists(done.sha256)


def test_finalize_folder_batches_a_stage_output(store: ArtifactStore, make_file: MakeFile) -> None:
    make_file("out/metrics.json", b"{}")
    make_file("out/part/0.csv", b"a,b\n")
    folder = make_file("out/part/1.csv", b"a,b\n").parents[1]
    results = store.finalize_folder(folder, run_id="r1", stage="Train", output="model")
    assert [r.record.artifact_id for r in results] == [
        "r1/Train/model/metrics.json",
        "r1/Train/model/part/0.csv",
        "r1/Train/model/part/1.csv",
    ]
    assert (store.root / "runs/r1/Train/model/part/1.csv").read_bytes() == b"a,b\n"
    assert sum(1 for r in results if r.dedup_hit) == 1
    assert not any(p.is_file() for p in folder.rglob("*"))


def test_batch_dedups_within_itself(store: ArtifactStore, make_file: MakeFile) -> None:
    items = [
        FinalizeItem(make_file(f"f{i}", b"same" if i % 2 else bytes([i])), f"a{i}", "s", "p")
        for i in range(100)
    ]
    results = store.finalize_many(items)
    assert len(results) == 100
    assert len(list(store.blobs.iter_objects())) == 51
    assert sum(r.dedup_hit for r in results) == 49


def test_moving_a_file_from_inside_the_store_is_refused(store: ArtifactStore) -> None:
    done = store.put_bytes(b"x", artifact_id="x", source="s", producer="p")
    assert done.layout_path is not None
    with pytest.raises(ArtifactStoreError, match="inside the store"):
        store.finalize(done.layout_path, artifact_id="y", source="s", producer="p")


def test_unknown_artifact_suggests_close_ids(store: ArtifactStore) -> None:
    store.put_bytes(b"x", artifact_id="churn-model", source="s", producer="p")
    with pytest.raises(ArtifactNotFoundError) as caught:
        store.show("churn-modle")
    assert (
        str(caught.value) == "No artifact 'churn-modle' in the store. Did you mean 'churn-model'?"
    )


def test_cross_device_move_falls_back_to_copy(
    store: ArtifactStore, make_file: MakeFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store.blobs, "device", -1)  # as if the source were elsewhere
    src = make_file("far.bin", b"far away")
    done = store.finalize(src, artifact_id="f", source="s", producer="p")
    assert done.copied and not src.exists()
    assert done.storage_path.read_bytes() == b"far away"


def test_for_project(tmp_path: Path, write_project) -> None:  # type: ignore[no-untyped-def]
    from stepkit.project import Project

    root = write_project(
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
    project = Project.load(root)
    with ArtifactStore.for_project(project) as s:
        assert s.root == project.artifacts_root
        s.put_bytes(b"x", artifact_id="x", source="s", producer="p")
    assert (project.state_dir / "artifacts.sqlite").is_file()


def test_missing_file_and_folder_are_one_line_errors(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactStoreError) as caught:
        store.finalize(tmp_path / "nope.bin", artifact_id="n", source="s", producer="p")
    assert str(caught.value) == f"{tmp_path / 'nope.bin'}: no such file to finalize."
    with pytest.raises(ArtifactStoreError, match="is a folder"):
        store.finalize(tmp_path, artifact_id="n", source="s", producer="p")


def test_catalog_failure_keeps_the_source_and_a_retry_works(
    store: ArtifactStore, make_file: MakeFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_file("keep-me.bin", b"precious")

    def broken(registrations: object) -> object:
        raise RuntimeError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(store.catalog, "register_many", broken)
        with pytest.raises(RuntimeError, match="disk full"):
            store.finalize(src, artifact_id="k", source="s", producer="p")
    assert src.read_bytes() == b"precious"  # removed only after the commit
    assert store.catalog.stats()["records"] == 0
    done = store.finalize(src, artifact_id="k", source="s", producer="p")
    assert done.dedup_hit and not src.exists()
    assert store.verify().problems == []


def test_readable_path_falls_back_to_a_checked_copy(
    store: ArtifactStore, make_file: MakeFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    real_link = os.link

    def no_links_in_docs(src: str, dst: str, **kwargs: bool) -> None:
        if "/docs/" in str(dst):
            raise OSError(errno.EMLINK, "Too many links")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", no_links_in_docs)
    done = store.finalize(make_file("a.txt", b"linked?"), artifact_id="a", source="s",
                          producer="p", layout="docs/a.txt")  # fmt: skip
    monkeypatch.undo()
    assert done.layout_copied and done.layout_path is not None
    assert done.layout_path.read_bytes() == b"linked?"
    assert done.layout_path.stat().st_ino != done.storage_path.stat().st_ino
    assert store.verify().problems == []
    os.chmod(done.layout_path, 0o644)
    done.layout_path.write_bytes(b"changed")
    assert [p.kind for p in store.verify().problems] == ["mismatch"]


def test_a_recorded_readable_path_is_not_reused_for_other_bytes(store: ArtifactStore) -> None:
    first = store.put_bytes(b"first", artifact_id="a", source="s", producer="p", layout="d/x")
    assert first.layout_path is not None
    first.layout_path.unlink()  # gone from disk, still recorded for the first digest
    second = store.put_bytes(b"second", artifact_id="b", source="s", producer="p", layout="d/x")
    assert second.record.layout_path == f"d/x~{second.sha256[:12]}"
    assert [p.kind for p in store.verify().problems] == ["missing"]  # the first one's path


def test_copy_of_duplicates_writes_no_temp_file(
    store: ArtifactStore, make_file: MakeFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = store.finalize(make_file("old.txt", b"old"), artifact_id="o", source="s", producer="p")
    files = [make_file(f"d{i}.txt", b"dup") for i in range(3)] + [make_file("o.txt", b"old")]
    temps: list[Path] = []
    new_temp = store.local.new_temp

    def counting() -> tuple[int, Path]:
        fd, path = new_temp()
        temps.append(path)
        return fd, path

    monkeypatch.setattr(store.local, "new_temp", counting)
    done = store.finalize_many([FinalizeItem(f, f.name, "s", "p") for f in files], mode="copy")
    assert len(temps) == 1  # the first "dup" only: its twins and "old" were stored already
    assert [d.dedup_hit for d in done] == [False, True, True, True]
    assert [d.copied for d in done] == [True, False, False, False]
    assert {d.sha256 for d in done} == {sha(b"dup"), stored.sha256}
    assert all(f.exists() for f in files)  # copy leaves the sources
    assert store.path(sha(b"dup")).read_bytes() == b"dup"
    assert not any(store.local.tmp.iterdir())


@pytest.mark.parametrize("kernel_copy", [True, False])
def test_copy_of_a_large_file_is_hashed_while_the_kernel_copies_it(
    store: ArtifactStore,
    make_file: MakeFile,
    monkeypatch: pytest.MonkeyPatch,
    kernel_copy: bool,
) -> None:
    from stepkit.artifacts import digest

    monkeypatch.setattr(digest, "COPY_STEP", 3 * 1024 * 1024 + 5)  # several uneven steps
    if not kernel_copy:  # a file system without copy_file_range between these files

        def refuse(*args: object) -> int:
            raise OSError(18, "Invalid cross-device link")

        monkeypatch.setattr(os, "copy_file_range", refuse)
    data = os.urandom(digest.KERNEL_COPY_FROM + 12_345)
    src = make_file("big.bin", data)
    done = store.finalize(src, artifact_id="big", source="s", producer="p", mode="copy")
    assert (done.sha256, done.bytes, done.copied) == (sha(data), len(data), True)
    assert done.storage_path.read_bytes() == data
    assert src.read_bytes() == data
    assert not any(store.local.tmp.iterdir())


def test_a_file_changed_while_copied_is_refused(
    store: ArtifactStore, make_file: MakeFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stepkit.artifacts import blobs, digest

    src = make_file("big.bin", b"x" * digest.KERNEL_COPY_FROM)
    copy = digest.copy_file_hashing

    def copy_then_append(source: int, target: int) -> tuple[str, int]:
        result = copy(source, target)
        with open(src, "ab") as handle:
            handle.write(b"more")
        return result

    monkeypatch.setattr(blobs, "copy_file_hashing", copy_then_append)
    with pytest.raises(ArtifactStoreError, match="changed while it was being hashed"):
        store.finalize(src, artifact_id="big", source="s", producer="p", mode="copy")
    assert not any(store.local.tmp.iterdir())
    assert not store.exists(sha(b"x" * digest.KERNEL_COPY_FROM))


def test_add_keeps_a_folders_structure_and_skips_links(
    store: ArtifactStore, make_file: MakeFile
) -> None:
    make_file("out/a.csv", b"a")
    make_file("out/sub/b.csv", b"b")
    folder = make_file("single.txt", b"one").parent / "out"
    (folder / "link.csv").symlink_to(folder / "a.csv")
    done = store.add([folder], artifact_id="tbl", source="s", producer="etl", run_id="r1")
    assert [d.record.artifact_id for d in done] == ["tbl/a.csv", "tbl/sub/b.csv"]
    assert [d.record.layout_path for d in done] == [
        "runs/r1/etl/out/a.csv",
        "runs/r1/etl/out/sub/b.csv",
    ]
    assert (folder / "link.csv").is_symlink()  # not content: left alone
    with pytest.raises(ArtifactStoreError, match="nope: no such file or folder to add"):
        store.add([folder / "nope"], artifact_id="x", source="s", producer="p")


def test_add_splits_a_large_folder_into_batches(
    store: ArtifactStore, make_file: MakeFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stepkit.artifacts import store as store_module

    for i in range(5):
        make_file(f"many/f{i}.txt", b"%d" % (i % 2))
    monkeypatch.setattr(store_module, "ADD_BATCH", 2)
    batches: list[int] = []
    finalize_many = store.finalize_many

    def spy(items: list[FinalizeItem], **options: object) -> object:
        batches.append(len(items))
        return finalize_many(items, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "finalize_many", spy)
    progress: list[int] = []
    done = store.add(
        [make_file("x", b"").parent / "many"], artifact_id="m", source="s", producer="p",
        on_progress=progress.append,
    )  # fmt: skip
    assert batches == [2, 2, 1] and sum(progress) == 5
    assert [d.dedup_hit for d in done] == [False, False, True, True, True]


def test_bytes_then_every_new_name_are_synced_before_the_commit(
    store: ArtifactStore, make_file: MakeFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stepkit.artifacts import store as store_module
    from stepkit.artifacts.blobs import make_durable as durable

    events: list[tuple[str, set[str], set[str]]] = []

    def spy(files: object, folders: object, **options: object) -> None:
        files, folders = {str(f) for f in files}, {str(f) for f in folders}  # type: ignore[attr-defined]
        events.append(("sync", files, folders))
        durable(files, folders, **options)  # type: ignore[arg-type]

    register = store.catalog.register_many

    def commit(registrations: object) -> object:
        events.append(("commit", set(), set()))
        return register(registrations)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "make_durable", spy)
    monkeypatch.setattr(store.catalog, "register_many", commit)
    src = make_file("m.bin", b"model")
    done = store.finalize_folder(src.parent, run_id="r1", stage="Train", output="model")
    obj = str(done[0].storage_path)
    assert [e[0] for e in events] == ["sync", "sync", "commit"]
    assert events[0][1] == {obj} and not events[0][2]  # the bytes, before any folder
    names = events[1][2]
    assert os.path.dirname(obj) in names  # the object's name
    assert str(store.local.objects) in names  # its new fan-out folder's name
    layout = store.root / "runs/r1/Train/model"
    assert {str(layout), str(layout.parent), str(store.root / "runs"), str(store.root)} <= names


def test_the_catalog_commit_is_synced(store: ArtifactStore) -> None:
    from stepkit.artifacts import SQLiteCatalog

    assert isinstance(store.catalog, SQLiteCatalog)
    # 2 = FULL: in WAL mode, every commit fsyncs the log (NORMAL would wait for a checkpoint,
    # and a power cut could take back records whose objects are already durable)
    assert store.catalog._conn.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_a_nodes_outputs_are_one_batch_described_by_the_stores_digests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stepkit.errors import StepOutputMissingError
    from stepkit.plan.cachekey import folder_digest
    from stepkit.plan.node import NodeTask

    outputs = {name: tmp_path / "out" / name for name in ("model", "metrics")}
    (outputs["model"] / "sub").mkdir(parents=True)
    (outputs["model"] / "sub" / "m.pkl").write_bytes(b"weights")
    (outputs["model"] / "card.txt").write_bytes(b"card")
    outputs["metrics"].mkdir()
    (outputs["metrics"] / "auc.json").write_bytes(b"card")  # the same bytes as card.txt
    expected = {name: folder_digest(path) for name, path in outputs.items()}
    root = tmp_path / "store"
    task = NodeTask(
        node="Train", how="script", files={}, config_class="", builder_class=None, config={},
        environment={}, arguments={}, inputs={}, outputs=("model", "metrics"),
        store_root=str(root), catalog_path=str(tmp_path / "catalog.sqlite"),
        cache_path=str(tmp_path / "cache.sqlite"),
    )  # fmt: skip
    batches: list[int] = []
    finalize_many = ArtifactStore.finalize_many

    def spy(self: ArtifactStore, items: list[FinalizeItem], **options: object) -> object:
        batches.append(len(items))
        return finalize_many(self, items, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(ArtifactStore, "finalize_many", spy)
    refs = task._finalize({n: str(p) for n, p in outputs.items()}, run_id="r1")
    assert batches == [3]  # every output in one batch: one sync pass, one transaction
    assert {n: r["digest"] for n, r in refs.items()} == expected
    assert refs["model"] == {
        "path": str(root / "runs/r1/Train/model"),
        "digest": expected["model"],
        "files": 2,
        "bytes": 11,
        "dedup_hits": 0,
    }
    assert refs["metrics"]["dedup_hits"] == 1
    assert (root / "runs/r1/Train/model/sub/m.pkl").read_bytes() == b"weights"
    (tmp_path / "empty").mkdir()
    with pytest.raises(StepOutputMissingError):
        task._finalize({"model": str(tmp_path / "empty")}, run_id="r2")

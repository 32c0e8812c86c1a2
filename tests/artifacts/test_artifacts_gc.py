"""gc: orphans by digest, grace period, retention, dry run, and safety against finalize."""

from __future__ import annotations

import tempfile
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepkit.artifacts import ArtifactStore


def test_dry_run_lists_orphans_and_deletes_nothing(store: ArtifactStore) -> None:
    keep = store.put_bytes(b"keep", artifact_id="k", source="s", producer="p")
    drop = store.put_bytes(b"drop", artifact_id="d", source="s", producer="p")
    store.forget(drop.record.id)
    report = store.gc()
    assert [(d.sha256, d.bytes) for d in report.objects] == [(drop.sha256, 4)]
    assert drop.storage_path.exists()
    applied = store.gc(apply=True)
    assert applied.applied and not drop.storage_path.exists()
    assert keep.storage_path.read_bytes() == b"keep"
    assert store.verify().problems == []


def test_forget_removes_the_readable_path_only_when_unused(store: ArtifactStore) -> None:
    a = store.put_bytes(b"same", artifact_id="a", source="s", producer="p", layout="x/same")
    b = store.put_bytes(b"same", artifact_id="b", source="s", producer="p", layout="x/same")
    assert a.layout_path == b.layout_path
    store.forget(a.record.id)
    assert (store.root / "x/same").exists()
    store.forget(b.record.id)
    assert not (store.root / "x/same").exists()


def test_relative_root_does_not_make_live_objects_orphans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with ArtifactStore(root="./store/../store", grace=timedelta(0)) as s:
        for i in range(5):
            s.put_bytes(bytes([i]) * 10, artifact_id=f"a{i}", source="s", producer="p")
        report = s.gc(apply=True)
        assert report.objects == []
        assert s.verify().problems == []


def test_grace_period_protects_fresh_objects(tmp_path: Path) -> None:
    with ArtifactStore(root=tmp_path / "s", grace=timedelta(hours=1)) as s:
        done = s.put_bytes(b"fresh", artifact_id="f", source="s", producer="p")
        s.forget(done.record.id)
        report = s.gc(apply=True)
        assert report.objects == [] and report.kept_in_grace == 1
        assert done.storage_path.exists()


def test_retention_keeps_the_last_versions(store: ArtifactStore) -> None:
    versions = [
        store.put_bytes(f"v{i}".encode(), artifact_id="a", source="s", producer="p")
        for i in range(4)
    ]
    report = store.gc(apply=True, older_than=timedelta(0), keep_last=2)
    assert [r.version for r in report.records] == [1, 2]
    assert {d.sha256 for d in report.objects} == {versions[0].sha256, versions[1].sha256}
    assert [r.version for r in store.show("a")] == [3, 4]
    assert store.verify().problems == []


def test_retention_ignores_young_records(store: ArtifactStore) -> None:
    for i in range(3):
        store.put_bytes(f"v{i}".encode(), artifact_id="a", source="s", producer="p")
    assert store.gc(apply=True, older_than=timedelta(days=30), keep_last=1).records == []


def test_gc_cleans_stale_temp_files(store: ArtifactStore) -> None:
    stale = store.local.tmp / "123-dead.tmp"
    stale.write_bytes(b"half written")
    report = store.gc(apply=True)
    assert [d.path for d in report.temp_files] == [stale]
    assert not stale.exists()


def test_foreign_files_in_cas_are_left_alone(store: ArtifactStore) -> None:
    odd = store.local.objects / "zz" / "not-a-digest"
    odd.parent.mkdir()
    odd.write_bytes(b"?")
    store.gc(apply=True)
    assert odd.exists()


def test_gc_racing_finalize_in_threads(store: ArtifactStore) -> None:
    """A finalize that dedups onto an orphan must never lose it to a concurrent gc."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def collector() -> None:
        while not stop.is_set():
            try:
                store.gc(apply=True, grace=timedelta(0))
            except BaseException as exc:  # reported to the test thread below
                errors.append(exc)
                return

    thread = threading.Thread(target=collector)
    thread.start()
    try:
        for i in range(60):
            done = store.put_bytes(b"contended", artifact_id=f"a{i}", source="s", producer="p")
            store.forget(done.record.id)  # orphan it at once: gc wants it
            store.put_bytes(b"contended", artifact_id=f"b{i}", source="s", producer="p")
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert store.verify().problems == []


Op = tuple[str, int]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("finalize"), st.integers(0, 4)),
        st.tuples(st.just("copy"), st.integers(0, 4)),
        st.tuples(st.just("forget"), st.integers(0, 20)),
        st.tuples(st.just("gc"), st.integers(0, 1)),
        st.tuples(st.just("retain"), st.integers(0, 2)),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_random_finalize_forget_gc_sequences_end_clean(sequence: list[Op]) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        ArtifactStore(root=Path(tmp) / "store", grace=timedelta(0)) as store,
    ):
        inputs = Path(tmp) / "in"
        inputs.mkdir()
        for step, (op, arg) in enumerate(sequence):
            if op in ("finalize", "copy"):
                src = inputs / f"f{step}.bin"
                src.write_bytes(b"content-%d" % arg)
                store.finalize(
                    src,
                    artifact_id=f"a{arg % 3}",
                    source="s",
                    producer="p",
                    mode="move" if op == "finalize" else "copy",
                    layout=f"out/{arg % 2}.bin",
                )
            elif op == "forget":
                records = list(store.catalog.records())
                if records:
                    store.forget(records[arg % len(records)].id)
            elif op == "gc":
                # force: forgetting every record and collecting is what this sequence does
                store.gc(apply=bool(arg), force=True)
            else:
                store.gc(apply=True, older_than=timedelta(0), keep_last=arg, force=True)
        report = store.verify()
        assert report.problems == []
        live = {r.sha256 for r in store.catalog.records()}
        assert all(store.exists(s) for s in live)
        for record in store.catalog.records():
            with store.open(record.sha256) as handle:
                assert handle.read().startswith(b"content-")
        store.gc(apply=True, force=True)
        assert {o.sha256 for o in store.blobs.iter_objects()} == live

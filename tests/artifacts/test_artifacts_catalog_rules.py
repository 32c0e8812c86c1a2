"""The artifact catalog's rules under misuse and re-imports: a manifest read twice adds
nothing, a size that disagrees is a rejected line, readable paths stay in the store, gc
waits a bounded time for the lock, empty ids and wrong arguments are clear errors."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from stepkit.artifacts import ArtifactStore
from stepkit.artifacts.gc import collect
from stepkit.artifacts.lock import store_lock
from stepkit.errors import InvalidRegistrationError, StoreLockTimeoutError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def row(path: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {
        "artifact_id": "paper",
        "source_url": "https://h.org/paper",
        "resolver": "r",
        "path": path,
        "sha256": sha(data),
        "bytes": len(data),
    } | extra


def test_a_manifest_with_two_versions_of_an_artifact_imports_once(
    store: ArtifactStore, tmp_path: Path
) -> None:
    (tmp_path / "v1.pdf").write_bytes(b"first")
    (tmp_path / "v2.pdf").write_bytes(b"second")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        "\n".join(json.dumps(r) for r in (row("v1.pdf", b"first"), row("v2.pdf", b"second")))
    )
    first = store.import_manifest(manifest, apply=True)
    assert (first.imported, first.already_present) == (2, 0)
    for _ in range(2):
        again = store.import_manifest(manifest, apply=True)
        assert (again.imported, again.already_present) == (0, 2)
        dry = store.import_manifest(manifest)
        assert (dry.imported, dry.already_present) == (0, 2)
    assert [(r.version, r.sha256) for r in store.show("paper")] == [
        (1, sha(b"first")),
        (2, sha(b"second")),
    ]


def test_a_content_length_disagreeing_with_the_stored_object_is_a_rejected_line(
    store: ArtifactStore, tmp_path: Path
) -> None:
    store.put_bytes(b"12345", artifact_id="other", source="s", producer="p")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        json.dumps(
            {
                "record_type": "manifest",
                "work_id": "W1",
                "url": "https://pub.org/w1",
                "classification": "pdf",
                "resolver": "r",
                "path": "gone.pdf",  # not on disk: the stored object is what is checked
                "sha256": sha(b"12345"),
                "content_length": 999,
            }
        )
    )
    report = store.import_manifest(manifest, apply=True)
    assert report.imported == 0
    assert report.skipped == [
        (1, f"the stored object {sha(b'12345')} has 5 bytes, the manifest says 999")
    ]
    assert store.show("other")[0].bytes == 5 and len(list(store.catalog.records())) == 1


def test_verify_never_reads_through_a_readable_path_outside_the_store(
    store: ArtifactStore, tmp_path: Path
) -> None:
    done = store.put_bytes(b"inside", artifact_id="a", source="s", producer="p", layout="a.bin")
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"not the store's")
    os.chmod(secret, 0)  # read it and verify would say "unreadable", not "unsafe"
    conn = sqlite3.connect(store.root / "artifacts.sqlite")
    conn.execute("UPDATE artifacts SET layout_path = ?", (f"../{secret.name}",))
    conn.commit()
    conn.close()
    report = store.verify()
    assert [(p.kind, p.detail) for p in report.problems] == [
        ("unsafe", "readable path is outside the store")
    ]
    assert report.problems[0].sha256 == done.sha256


def test_verify_never_follows_a_readable_path_linking_outside(
    store: ArtifactStore, tmp_path: Path
) -> None:
    store.put_bytes(b"inside", artifact_id="a", source="s", producer="p", layout="a.bin")
    (store.root / "a.bin").unlink()
    (store.root / "a.bin").symlink_to(tmp_path / "elsewhere")
    report = store.verify()
    assert [(p.kind, p.detail) for p in report.problems] == [
        ("unsafe", "readable path links outside the store")
    ]


def test_verify_lists_objects_no_record_names(store: ArtifactStore) -> None:
    kept = store.put_bytes(b"kept", artifact_id="k", source="s", producer="p")
    lost = store.put_bytes(b"lost", artifact_id="l", source="s", producer="p")
    store.forget(lost.record.id)
    report = store.verify()
    assert report.problems == []  # an orphan is gc's to collect, not damage
    assert [o.sha256 for o in report.orphans] == [lost.sha256]
    assert report.ok == 1 and kept.storage_path.exists()


def test_gc_scans_beside_finalizes_and_waits_boundedly_to_delete(store: ArtifactStore) -> None:
    doomed = store.put_bytes(b"doomed", artifact_id="d", source="s", producer="p")
    store.put_bytes(b"live", artifact_id="l", source="s", producer="p")
    store.forget(doomed.record.id)
    with store_lock(store.root, exclusive=False):  # a finalize in flight
        dry = collect(store, grace=timedelta(0))  # the scan runs beside it
        assert [d.sha256 for d in dry.objects] == [doomed.sha256]
        with pytest.raises(StoreLockTimeoutError) as caught:
            collect(store, apply=True, grace=timedelta(0), lock_timeout=0.2)
    assert "stayed taken for 0.2 s" in str(caught.value) and "nothing was deleted" in str(
        caught.value
    )
    assert doomed.storage_path.exists()
    report = collect(store, apply=True, grace=timedelta(0), lock_timeout=5)
    assert [d.sha256 for d in report.objects] == [doomed.sha256]
    assert not doomed.storage_path.exists()


def test_an_object_recorded_again_between_scan_and_delete_is_kept(store: ArtifactStore) -> None:
    doomed = store.put_bytes(b"again", artifact_id="d", source="s", producer="p")
    store.forget(doomed.record.id)
    from stepkit.artifacts import gc as gc_module

    scan = gc_module._scan

    def scan_then_finalize(*args: Any, **kwargs: Any) -> Any:
        found = scan(*args, **kwargs)
        store.put_bytes(b"again", artifact_id="d2", source="s", producer="p")  # beside gc
        return found

    gc_module._scan = scan_then_finalize
    try:
        report = collect(store, apply=True, grace=timedelta(0), force=True)
    finally:
        gc_module._scan = scan
    assert report.objects == [] and doomed.storage_path.exists()
    assert store.verify().problems == []


@pytest.mark.parametrize("field", ["artifact_id", "source", "producer"])
def test_an_empty_id_is_refused(store: ArtifactStore, field: str) -> None:
    fields = {"artifact_id": "a", "source": "s", "producer": "p"} | {field: " "}
    with pytest.raises(InvalidRegistrationError, match=f"Invalid {field} ' '"):
        store.put_bytes(b"x", **fields)
    assert list(store.catalog.records()) == []


def test_gc_misuse_is_a_clear_type_error(store: ArtifactStore) -> None:
    with pytest.raises(TypeError, match=r"grace must be a datetime\.timedelta, got 0"):
        store.gc(grace=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"older_than must be a datetime\.timedelta"):
        store.gc(older_than="30d")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="keep_last must be an int"):
        store.gc(keep_last=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="grace must not be negative"):
        store.gc(grace=timedelta(seconds=-1))

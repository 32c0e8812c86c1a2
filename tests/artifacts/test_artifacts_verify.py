"""verify re-hashes for real: corruption, missing objects and readable paths are caught."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stepkit.artifacts import ArtifactStore


def _scribble(path: Path, data: bytes) -> None:
    """Modify a stored file in place, as root could despite the read-only bits."""
    os.chmod(path, 0o644)
    with open(path, "r+b") as handle:
        handle.write(data)


def test_empty_catalog_verifies_clean(store: ArtifactStore) -> None:
    report = store.verify()
    assert (report.checked_objects, report.problems) == (0, [])
    assert store.catalog.get_meta("last_verify") == report.verified_at


def test_modified_in_place_is_a_mismatch(store: ArtifactStore) -> None:
    done = store.put_bytes(b"original bytes", artifact_id="a", source="s", producer="p")
    _scribble(done.storage_path, b"ORIGINAL")
    report = store.verify()
    assert [(p.kind, p.sha256, p.path) for p in report.problems] == [
        ("mismatch", done.sha256, done.storage_path)
    ]
    assert report.problems[0].record_ids == (done.record.id,)
    assert store.catalog.by_id(done.record.id).verified_at is None  # type: ignore[union-attr]


def test_missing_object_and_missing_readable_path(store: ArtifactStore) -> None:
    gone = store.put_bytes(b"gone", artifact_id="g", source="s", producer="p")
    unlinked = store.put_bytes(b"layout gone", artifact_id="l", source="s", producer="p")
    fine = store.put_bytes(b"fine", artifact_id="f", source="s", producer="p")
    gone.storage_path.unlink()
    assert unlinked.layout_path is not None
    unlinked.layout_path.unlink()
    report = store.verify()
    kinds = sorted((p.kind, p.sha256, p.detail) for p in report.problems)
    assert kinds == sorted(
        [
            ("missing", gone.sha256, "object file is missing"),
            ("missing", unlinked.sha256, "readable path is missing"),
        ]
    )
    assert report.ok == 1
    assert store.catalog.by_id(fine.record.id).verified_at == report.verified_at  # type: ignore[union-attr]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_object(store: ArtifactStore) -> None:
    done = store.put_bytes(b"secret", artifact_id="u", source="s", producer="p")
    os.chmod(done.storage_path, 0)
    try:
        report = store.verify()
    finally:
        os.chmod(done.storage_path, 0o444)
    assert [p.kind for p in report.problems] == ["unreadable"]


def test_sample_checks_that_many_objects(store: ArtifactStore) -> None:
    for i in range(10):
        store.put_bytes(bytes([i]), artifact_id=f"a{i}", source="s", producer="p")
    assert store.verify(sample=3).checked_objects == 3


def test_since_limits_to_recent_records(store: ArtifactStore) -> None:
    store.put_bytes(b"old", artifact_id="old", source="s", producer="p")
    later = store.put_bytes(b"new", artifact_id="new", source="s", producer="p")
    report = store.verify(since=later.record.created_at)
    assert (report.checked_objects, report.checked_records) == (1, 1)


def test_verify_never_deletes_it_moves_a_corrupt_object_to_quarantine(
    store: ArtifactStore,
) -> None:
    done = store.put_bytes(b"keep me", artifact_id="k", source="s", producer="p")
    _scribble(done.storage_path, b"X")
    report = store.verify()
    assert not done.storage_path.exists()  # nothing serves the bad bytes any more
    (kept,) = (store.root / "quarantine").iterdir()
    assert kept.read_bytes() == b"Xeep me" and kept.name.startswith(done.sha256)
    assert report.problems[0].detail.endswith(f"moved to quarantine/{kept.name}")
    assert store.catalog.stats()["records"] == 1
    again = store.put_bytes(b"keep me", artifact_id="k2", source="s", producer="p")
    assert not again.dedup_hit and again.storage_path.read_bytes() == b"keep me"
    # the first record's readable path was a link of the bad bytes: gone with them
    assert [(p.kind, p.record_ids, p.detail) for p in store.verify().problems] == [
        ("missing", (done.record.id,), "readable path is missing")
    ]

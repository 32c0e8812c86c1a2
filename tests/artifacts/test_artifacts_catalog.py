"""The catalog contract, against SQLite and a real PostgreSQL: idempotent keys, versions,
batches, constraint errors surface, lookups, reports."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from stepkit.artifacts import Registration, SQLiteCatalog
from stepkit.artifacts.catalog import ArtifactCatalog
from stepkit.errors import InvalidDigestError, StateStoreError


def reg(aid: str, data: bytes, **extra: object) -> Registration:
    fields: dict[str, object] = {
        "artifact_id": aid,
        "source": "https://h/x",
        "producer": "p",
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "storage_uri": "file:///x",
    }
    fields |= extra
    return Registration(**fields)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "postgres"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactCatalog]:
    store: ArtifactCatalog
    if request.param == "postgres":
        from stepkit.artifacts.pg_catalog import PostgresCatalog

        store = PostgresCatalog(request.getfixturevalue("postgres_url"))
    else:
        store = SQLiteCatalog(tmp_path / "c.sqlite")
    yield store
    store.close()


#: How each backend words a violated CHECK constraint.
CHECK_FAILED = r"registration failed: (CHECK constraint failed|.*violates check constraint)"


def test_batch_statuses_in_order(catalog: ArtifactCatalog) -> None:
    out = catalog.register_many([reg("a", b"1"), reg("a", b"1"), reg("a", b"2"), reg("b", b"1")])
    assert [o.status for o in out] == ["new", "present", "new_version", "new"]
    assert [o.record.version for o in out] == [1, 1, 2, 1]
    assert len(list(catalog.records())) == 3


def test_bulk_has_the_same_rules(catalog: ArtifactCatalog) -> None:
    first = catalog.register_bulk([reg("a", b"1"), reg("b", b"1")])
    second = catalog.register_bulk([reg("a", b"1"), reg("b", b"2"), reg("b", b"3")])
    assert first == {"new": 2, "present": 0, "new_version": 0}
    assert second == {"new": 0, "present": 1, "new_version": 2}
    assert [r.version for r in catalog.by_artifact_id("b")] == [1, 2, 3]


def test_constraint_errors_are_raised_and_roll_back(catalog: ArtifactCatalog) -> None:
    with pytest.raises(StateStoreError, match=CHECK_FAILED):
        catalog.register_many([reg("ok", b"1"), reg("bad", b"2", bytes=-1)])
    with pytest.raises(StateStoreError, match=CHECK_FAILED):
        catalog.register_bulk([reg("ok", b"1"), reg("bad", b"2", bytes=-5)])
    assert list(catalog.records()) == []  # the whole batch rolled back


def test_timestamps_are_utc_sub_second(catalog: ArtifactCatalog) -> None:
    record = catalog.register_many([reg("a", b"1")])[0].record
    assert record.created_at.endswith("+00:00") and "." in record.created_at
    assert record.created_at == record.updated_at


def test_reopening_keeps_records_and_schema(tmp_path: Path) -> None:
    SQLiteCatalog(tmp_path / "c.sqlite").register_many([reg("a", b"1")])
    again = SQLiteCatalog(tmp_path / "c.sqlite")
    assert [r.artifact_id for r in again.records()] == ["a"]


def test_the_catalog_refuses_a_digest_that_is_not_hex(catalog: ArtifactCatalog) -> None:
    bad = "../" + "a" * 61
    for register in (catalog.register_many, catalog.register_bulk):
        with pytest.raises(InvalidDigestError) as caught:
            register([reg("ok", b"1"), reg("a", b"1", sha256=bad)])
        assert caught.value.value == bad
    assert list(catalog.records()) == []


def test_lookups_by_id_digest_and_layout(catalog: ArtifactCatalog) -> None:
    out = catalog.register_many(
        [reg("a", b"1", layout_path="runs/r/a"), reg("b", b"1"), reg("c", b"2", run_id="r")]
    )
    first = out[0].record
    assert catalog.by_id(first.id) == first
    assert catalog.by_id(10_000) is None
    assert [r.artifact_id for r in catalog.by_sha256(first.sha256)] == ["a", "b"]
    assert catalog.layout_owner("runs/r/a") == first.sha256
    assert catalog.layout_owner("runs/r/none") is None
    assert sorted(catalog.artifact_ids()) == ["a", "b", "c"]
    assert catalog.layout_owners(["runs/r/a", "runs/r/none"]) == {"runs/r/a": first.sha256}
    assert catalog.latest([("a", "https://h/x", "p"), ("zz", "s", "p")]) == {first.key: first}


def test_records_since_and_mark_verified(catalog: ArtifactCatalog) -> None:
    out = catalog.register_many([reg("a", b"1"), reg("b", b"2")])
    catalog.mark_verified([out[0].record.sha256], at="2030-01-01T00:00:00+00:00")
    records = list(catalog.records())
    assert [r.verified_at for r in records] == ["2030-01-01T00:00:00+00:00", None]
    assert list(catalog.records(since="2999-01-01")) == []
    assert len(list(catalog.records(since=out[0].record.created_at))) == 2


def test_delete_returns_what_it_deleted(catalog: ArtifactCatalog) -> None:
    out = catalog.register_many([reg("a", b"1"), reg("b", b"2")])
    deleted = catalog.delete_records([out[1].record.id, 999_999])
    assert deleted == [out[1].record]
    assert [r.artifact_id for r in catalog.records()] == ["a"]


def test_meta_stats_and_dedup_report(catalog: ArtifactCatalog) -> None:
    assert catalog.get_meta("gc") is None
    catalog.set_meta("gc", "1")
    catalog.set_meta("gc", "2")
    assert catalog.get_meta("gc") == "2"
    catalog.register_many(
        [reg("a", b"12", producer="p1"), reg("b", b"12", producer="p2"), reg("c", b"3")]
    )
    assert catalog.stats() == {
        "records": 3,
        "artifacts": 3,
        "producers": 3,
        "objects": 2,
        "logical_bytes": 5,
        "stored_bytes": 3,
        "saved_bytes": 2,
    }
    report = catalog.dedup_by_producer()
    assert report[0] == {
        "producer": "p2",
        "records": 1,
        "logical_bytes": 2,
        "saved_bytes": 2,
        "dedup_records": 1,
    }
    assert {r["producer"] for r in report} == {"p", "p1", "p2"}

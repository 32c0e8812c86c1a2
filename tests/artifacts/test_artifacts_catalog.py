"""The SQLite catalog: idempotent keys, versions, batches, constraint errors surface."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from stepkit.artifacts import Registration, SQLiteCatalog
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


@pytest.fixture
def catalog(tmp_path: Path) -> SQLiteCatalog:
    return SQLiteCatalog(tmp_path / "c.sqlite")


def test_batch_statuses_in_order(catalog: SQLiteCatalog) -> None:
    out = catalog.register_many([reg("a", b"1"), reg("a", b"1"), reg("a", b"2"), reg("b", b"1")])
    assert [o.status for o in out] == ["new", "present", "new_version", "new"]
    assert [o.record.version for o in out] == [1, 1, 2, 1]
    assert len(list(catalog.records())) == 3


def test_bulk_has_the_same_rules(catalog: SQLiteCatalog) -> None:
    first = catalog.register_bulk([reg("a", b"1"), reg("b", b"1")])
    second = catalog.register_bulk([reg("a", b"1"), reg("b", b"2"), reg("b", b"3")])
    assert first == {"new": 2, "present": 0, "new_version": 0}
    assert second == {"new": 0, "present": 1, "new_version": 2}
    assert [r.version for r in catalog.by_artifact_id("b")] == [1, 2, 3]


def test_constraint_errors_are_raised_and_roll_back(catalog: SQLiteCatalog) -> None:
    with pytest.raises(StateStoreError, match="CHECK constraint failed"):
        catalog.register_many([reg("ok", b"1"), reg("bad", b"2", bytes=-1)])
    with pytest.raises(StateStoreError, match="CHECK constraint failed"):
        catalog.register_bulk([reg("ok", b"1"), reg("bad", b"2", bytes=-5)])
    assert list(catalog.records()) == []  # the whole batch rolled back


def test_timestamps_are_utc_sub_second(catalog: SQLiteCatalog) -> None:
    record = catalog.register_many([reg("a", b"1")])[0].record
    assert record.created_at.endswith("+00:00") and "." in record.created_at
    assert record.created_at == record.updated_at


def test_reopening_keeps_records_and_schema(tmp_path: Path) -> None:
    SQLiteCatalog(tmp_path / "c.sqlite").register_many([reg("a", b"1")])
    again = SQLiteCatalog(tmp_path / "c.sqlite")
    assert [r.artifact_id for r in again.records()] == ["a"]


def test_the_catalog_refuses_a_digest_that_is_not_hex(catalog: SQLiteCatalog) -> None:
    bad = "../" + "a" * 61
    for register in (catalog.register_many, catalog.register_bulk):
        with pytest.raises(InvalidDigestError) as caught:
            register([reg("ok", b"1"), reg("a", b"1", sha256=bad)])
        assert caught.value.value == bad
    assert list(catalog.records()) == []

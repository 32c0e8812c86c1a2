"""The step cache contract, against SQLite and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stepkit.plan.cache import CacheStore
from stepkit.plan.cache_backends import open_cache


@pytest.fixture(params=["sqlite", "postgres"])
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CacheStore]:
    location = (
        request.getfixturevalue("postgres_url")
        if request.param == "postgres"
        else str(tmp_path / "cache.sqlite")
    )
    store = open_cache(location)
    yield store
    store.close()


def test_an_entry_round_trips_and_is_replaced_by_key(cache: CacheStore) -> None:
    assert cache.get("k") is None
    cache.put("k", node="A", run_id="r1", outputs={"out": {"digest": "d"}}, parts={"cfg": 1})
    entry = cache.get("k")
    assert entry is not None
    assert (entry.node, entry.run_id, entry.outputs, entry.parts) == (
        "A",
        "r1",
        {"out": {"digest": "d"}},
        {"cfg": 1},
    )
    cache.put("k", node="A", run_id="r2", outputs={"out": {"digest": "e"}}, parts={})
    again = cache.get("k")
    assert again is not None and again.run_id == "r2" and again.outputs == {"out": {"digest": "e"}}


def test_latest_for_is_the_newest_entry_of_a_node(cache: CacheStore) -> None:
    cache.put("k1", node="A", run_id="r1", outputs={}, parts={})
    cache.put("k2", node="A", run_id="r2", outputs={}, parts={})
    cache.put("k3", node="B", run_id="r3", outputs={}, parts={})
    newest = cache.latest_for("A")
    assert newest is not None and newest.cache_key == "k2"
    assert cache.latest_for("C") is None


def test_forget_removes_only_that_key(cache: CacheStore) -> None:
    cache.put("k1", node="A", run_id="r1", outputs={}, parts={})
    cache.put("k2", node="A", run_id="r2", outputs={}, parts={})
    cache.forget("k1")
    assert cache.get("k1") is None
    assert cache.get("k2") is not None


def test_a_worker_opening_the_same_location_sees_the_entry(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Workers get the cache as a string (a path or a URL) and open it themselves."""
    for location in (str(tmp_path / "c.sqlite"), request.getfixturevalue("postgres_url")):
        writer, reader = open_cache(location), open_cache(location)
        try:
            writer.put("k", node="A", run_id="r", outputs={"o": 1}, parts={})
            entry = reader.get("k")
            assert entry is not None and entry.outputs == {"o": 1}
        finally:
            writer.close()
            reader.close()

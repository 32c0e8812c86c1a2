from __future__ import annotations

from pathlib import Path

from stepkit.plan.cache import StepCache


def test_cache_round_trip(tmp_path: Path) -> None:
    cache = StepCache(tmp_path / "cache.db")
    assert cache.get("k") is None
    cache.put("k", node="A", run_id="r1", outputs={"out": {"digest": "d"}}, parts={"config": {}})
    entry = cache.get("k")
    assert entry is not None and entry.outputs == {"out": {"digest": "d"}} and entry.run_id == "r1"
    cache.put("k", node="A", run_id="r2", outputs={"out": {"digest": "d"}}, parts={})
    assert cache.latest_for("A").run_id == "r2"  # type: ignore[union-attr]
    cache.forget("k")
    assert cache.get("k") is None
    cache.close()

"""Cache hits resolve through the project's own store by digest: a copied or moved project
reuses its cache and never reads another project's files; an object that is gone, cut
short or found corrupt by verify is a miss, never a hit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from stepkit.artifacts import ArtifactStore, SQLiteCatalog
from stepkit.plan.cache_backends import open_cache
from stepkit.plan.cachekey import CacheKey, tree_digest
from stepkit.plan.node import NODE_INFO, lookup, record

KEY = CacheKey(digest="k" * 64, parts={"config": {}})


def _finalized(project: Path, run_id: str = "r1") -> dict[str, Any]:
    """What a node's finalize hands back for one output folder of two files."""
    out = project / "work" / "out"
    out.mkdir(parents=True)
    (out / "model.bin").write_bytes(b"weights " * 100)
    (out / "sub").mkdir()
    (out / "sub" / "metrics.json").write_text('{"auc": 0.9}')
    with _store(project) as store:
        done = store.finalize_folder(
            out, run_id=run_id, stage="Train", output="model", producer="T"
        )
        objects = {f.record.artifact_id.split("/model/", 1)[1]: f.sha256 for f in done}
        return {
            "model": {
                "path": str(store.root / "runs" / run_id / "Train" / "model"),
                "digest": tree_digest(objects),
                "files": len(done),
                "bytes": sum(f.bytes for f in done),
                "dedup_hits": 0,
            },
            NODE_INFO: {"cache_key": KEY.digest},
        }


def _store(project: Path) -> ArtifactStore:
    state = project / ".stepkit"
    return ArtifactStore(
        root=state / "artifacts", catalog=SQLiteCatalog(state / "artifacts.sqlite")
    )


def _record(project: Path, outputs: dict[str, Any]) -> None:
    state = project / ".stepkit"
    record(
        str(state / "cache.sqlite"),
        KEY,
        node="Train",
        run_id="r1",
        outputs=outputs,
        store_root=str(state / "artifacts"),
        catalog_path=str(state / "artifacts.sqlite"),
    )


def _lookup(project: Path) -> dict[str, Any] | None:
    state = project / ".stepkit"
    return lookup(str(state / "cache.sqlite"), KEY.digest, store_root=str(state / "artifacts"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "a"
    _record(root, _finalized(root))
    return root


def test_an_entry_holds_no_absolute_path(project: Path) -> None:
    cache = open_cache(str(project / ".stepkit" / "cache.sqlite"))
    entry = cache.get(KEY.digest)
    cache.close()
    assert entry is not None
    assert str(project) not in json.dumps(entry.outputs)
    ref = entry.outputs["model"]
    assert ref["layout"] == "runs/r1/Train/model"
    assert set(ref["contents"]) == {"model.bin", "sub/metrics.json"}


def test_a_hit_resolves_in_the_project_it_is_looked_up_in(project: Path) -> None:
    hit = _lookup(project)
    assert hit is not None
    folder = Path(hit["model"]["path"])
    assert folder == (project / ".stepkit" / "artifacts" / "runs/r1/Train/model").resolve()
    assert (folder / "model.bin").read_bytes() == b"weights " * 100


@pytest.mark.parametrize("how", ["copied", "moved"])
def test_a_copied_or_moved_project_reuses_its_cache_in_its_own_store(
    project: Path, tmp_path: Path, how: str
) -> None:
    other = tmp_path / "b"
    if how == "copied":
        shutil.copytree(project, other)  # plain copies: no hard link survives
    else:
        project.rename(other)
    if project.exists():
        shutil.rmtree(project)  # nothing of the original may be needed
    hit = _lookup(other)
    assert hit is not None
    folder = Path(hit["model"]["path"])
    assert folder.is_relative_to(other.resolve())
    assert (folder / "sub" / "metrics.json").read_text() == '{"auc": 0.9}'


def test_a_missing_or_cut_short_object_is_a_miss(project: Path) -> None:
    with _store(project) as store:
        records = list(store.catalog.records())
        big = next(r for r in records if r.artifact_id.endswith("model.bin"))
        path = store.path(big.sha256)
    path.chmod(0o644)
    path.write_bytes(b"weights")  # cut short: the cheap size check sees it
    assert _lookup(project) is None
    path.unlink()
    assert _lookup(project) is None


def test_an_object_verify_found_corrupt_is_never_a_hit(project: Path, tmp_path: Path) -> None:
    copy = tmp_path / "c"
    shutil.copytree(project, copy)
    with _store(copy) as store:
        big = next(r for r in store.catalog.records() if r.artifact_id.endswith("model.bin"))
        path = store.path(big.sha256)
        path.chmod(0o644)
        path.write_bytes(b"WEIGHTS " * 100)  # same size: only re-hashing can tell
        assert _lookup(copy) is not None  # the cheap check cannot see this one...
        report = store.verify()
    assert [p.kind for p in report.problems] == ["mismatch"]
    assert _lookup(copy) is None  # ...and once verify has, it is never a hit
    assert _lookup(project) is not None  # the original project's store is sound


def test_an_entry_from_before_outputs_were_kept_by_digest_is_a_miss(tmp_path: Path) -> None:
    cache = open_cache(str(tmp_path / "cache.sqlite"))
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    cache.put(
        KEY.digest,
        node="Train",
        run_id="r0",
        outputs={"model": {"path": str(folder), "digest": "d", "files": 0, "bytes": 0}},
        parts={},
    )
    cache.close()
    found = lookup(str(tmp_path / "cache.sqlite"), KEY.digest, store_root=str(tmp_path / "s"))
    assert found is None

"""Faults across processes: concurrent finalize of the same content, a crash mid-finalize."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

from stepkit.artifacts import ArtifactStore

FINALIZE_WHEN_TOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from stepkit.artifacts import ArtifactStore

    root, src, go, name = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    store = ArtifactStore(root=root)
    while not go.exists():
        time.sleep(0.001)
    done = store.finalize(src, artifact_id=name, source="s", producer=name, mode="copy")
    print(done.status, done.dedup_hit)
    """
)

CRASH_BEFORE_PUBLISH = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from stepkit.artifacts import ArtifactStore
    from stepkit.artifacts.blobs import LocalBlobs

    def die(self, temp, sha256):
        os._exit(3)  # the power goes out: temp written and fsynced, nothing published

    LocalBlobs.publish_temp = die
    store = ArtifactStore(root=Path(sys.argv[1]))
    store.put_bytes(b"x" * 3_000_000, artifact_id="a", source="s", producer="p")
    """
)


def test_two_processes_finalize_the_same_content_at_once(tmp_path: Path) -> None:
    root, go = tmp_path / "store", tmp_path / "go"
    ArtifactStore(root=root).close()  # migrations done once, before the race
    data = b"shared content " * 100_000
    procs = []
    for name in ("one", "two"):
        src = tmp_path / f"{name}.bin"
        src.write_bytes(data)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", FINALIZE_WHEN_TOLD, str(root), str(src), str(go), name],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    go.touch()
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sorted(out.split()[1] for out, _ in outputs) == ["False", "True"]  # one dedup hit
    with ArtifactStore(root=root) as store:
        objects = list(store.blobs.iter_objects())
        assert len(objects) == 1 and Path(objects[0].path).read_bytes() == data
        assert sorted(r.artifact_id for r in store.catalog.records()) == ["one", "two"]
        assert list(store.blobs.iter_temp()) == []
        assert store.verify().problems == []


def test_crash_between_temp_write_and_publish(tmp_path: Path) -> None:
    root = tmp_path / "store"
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_BEFORE_PUBLISH, str(root)], capture_output=True, timeout=60
    )
    assert proc.returncode == 3, proc.stderr
    with ArtifactStore(root=root, grace=timedelta(0)) as store:
        assert list(store.blobs.iter_objects()) == []  # no partial object is ever visible
        assert list(store.catalog.records()) == []
        temps = list(store.blobs.iter_temp())
        assert len(temps) == 1 and temps[0].bytes == 3_000_000
        report = store.gc(apply=True)
        assert [d.path for d in report.temp_files] == [temps[0].path]
        assert list(store.blobs.iter_temp()) == []
        assert store.verify().problems == []

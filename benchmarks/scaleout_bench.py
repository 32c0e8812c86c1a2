"""Scale-out overheads, each compared with the engine's own API in the same run.

1. 200 no-op stages on a 2-worker Dask LocalCluster through stepkit (``Pipeline`` in
   ``distributed`` mode, state in SQLite) vs ``client.submit`` of the same function.
2. 100 × 1 MiB files finalized into the S3-compatible server vs s3fs ``put`` of the same
   files (needs STEPKIT_TEST_S3_ENDPOINT; skipped with a note otherwise).

Prints one JSON object of medians. The machine is shared: compare ratios, not seconds.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

STAGES = 200
FILES = 100
MIB = 1024 * 1024
ROUNDS = 3


def noop(context: Any) -> None:
    return None


def dask_overhead() -> dict[str, Any]:
    import scaleout_bench  # the workers import the stage function from this module
    from distributed import wait

    from stepkit.pipeline.dask_executor import dask_executor
    from stepkit.pipeline.pipeline import Pipeline
    from stepkit.state.sqlite import SQLiteStateRepository

    stepkit_s, dask_s = [], []
    with tempfile.TemporaryDirectory() as tmp, dask_executor("dask-local") as executor:
        client = executor._client  # type: ignore[attr-defined]  # ClientExecutor keeps it
        client.submit(scaleout_bench.noop, None, pure=False).result()  # warm the workers
        for _ in range(ROUNDS):
            pipe = Pipeline("bench")
            for i in range(STAGES):
                pipe.add(f"s{i}", scaleout_bench.noop, mode="distributed")
            state = SQLiteStateRepository(Path(tmp) / f"{secrets.token_hex(4)}.db")
            started = time.perf_counter()
            result = pipe.run(executor=executor, state=state, max_workers=2)
            stepkit_s.append(time.perf_counter() - started)
            assert result.ok
            state.close()
            started = time.perf_counter()
            futures = [client.submit(scaleout_bench.noop, None, pure=False) for _ in range(STAGES)]
            wait(futures)  # type: ignore[no-untyped-call]  # distributed.wait is unannotated
            dask_s.append(time.perf_counter() - started)
    ours = statistics.median(stepkit_s) / STAGES * 1000
    theirs = statistics.median(dask_s) / STAGES * 1000
    return {
        "stages": STAGES,
        "workers": 2,
        "stepkit_ms_per_stage": round(ours, 3),
        "dask_submit_ms_per_stage": round(theirs, 3),
        "ratio": round(ours / theirs, 2),
    }


def s3_overhead() -> dict[str, Any]:
    endpoint = os.environ.get("STEPKIT_TEST_S3_ENDPOINT")
    if not endpoint:
        return {"skipped": 'STEPKIT_TEST_S3_ENDPOINT is not set: eval "$(make -s services)"'}
    os.environ.setdefault("AWS_ENDPOINT_URL", endpoint)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    import s3fs  # type: ignore[import-untyped]  # s3fs ships no type hints

    from stepkit.artifacts.store import ArtifactStore, FinalizeItem

    fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)
    ours_s, theirs_s = [], []
    for _ in range(ROUNDS):
        bucket = f"stepkit-bench-{secrets.token_hex(4)}"
        fs.mkdir(bucket)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                files = []
                for i in range(FILES):
                    path = Path(tmp) / f"f{i}.bin"
                    path.write_bytes(os.urandom(MIB))
                    files.append(path)
                started = time.perf_counter()
                for path in files:
                    fs.put_file(str(path), f"{bucket}/plain/{path.name}")
                theirs_s.append(time.perf_counter() - started)
                store = ArtifactStore(root=f"s3://{bucket}/store", catalog_path=Path(tmp) / "c.db")
                items = [FinalizeItem(p, p.name, "bench", "bench") for p in files]
                started = time.perf_counter()
                done = store.finalize_many(items, mode="copy")
                ours_s.append(time.perf_counter() - started)
                assert not any(f.dedup_hit for f in done)
                store.close()
        finally:
            fs.rm(bucket, recursive=True)
    ours, theirs = statistics.median(ours_s), statistics.median(theirs_s)
    return {
        "files": FILES,
        "file_bytes": MIB,
        "stepkit_finalize_s": round(ours, 3),
        "s3fs_put_s": round(theirs, 3),
        "ratio": round(ours / theirs, 2),
    }


def main() -> None:
    print(
        json.dumps(
            {"rounds": ROUNDS, "dask": dask_overhead(), "s3": s3_overhead()},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

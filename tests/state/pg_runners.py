"""A runner process for the several-runners-on-one-PostgreSQL test:
``python -m state.pg_runners URL MARKER RUN_ID`` resumes the shared run RUN_ID (only one
runner may get it), then runs a fresh run of its own; every stage appends
``<run id> <stage>`` to MARKER/ran.txt."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stepkit import Pipeline
from stepkit.errors import RunLeaseError
from stepkit.pipeline.context import StageContext
from stepkit.state.postgres import PostgresStateRepository


def mark(context: StageContext) -> Mapping[str, Any]:
    """Records that it ran; stage ``b`` waits while MARKER/hold exists."""
    marker = Path(context.inputs["marker"])
    with open(marker / "ran.txt", "a", encoding="utf-8") as handle:
        handle.write(f"{context.run_id} {context.stage}\n")
    if context.stage == "b":
        while (marker / "hold").exists():
            time.sleep(0.02)
    return {"by": context.stage}


def shared() -> Pipeline:
    """a → b → c, a → d, (c, d) → e."""
    pipe = Pipeline("shared")
    pipe.add("a", mark)
    pipe.add("b", mark, depends_on=["a"])
    pipe.add("c", mark, depends_on=["b"])
    pipe.add("d", mark, depends_on=["a"])
    pipe.add("e", mark, depends_on=["c", "d"])
    return pipe


def own() -> Pipeline:
    pipe = Pipeline("own")
    pipe.add("start", mark)
    for i in range(20):
        pipe.add(f"w{i}", mark, depends_on=["start"])
    return pipe


def main(argv: list[str]) -> int:
    url, marker, run_id = argv
    state = PostgresStateRepository(url)  # all start at once: migrations race here
    try:
        try:
            resumed = shared().resume(run_id, state=state, max_workers=2)
            print("resumed", resumed.status, flush=True)
        except RunLeaseError:
            print("lost", flush=True)
        result = own().run(inputs={"marker": marker}, state=state, max_workers=4)
        print("own", result.run_id, result.status, flush=True)
        return 0 if result.ok else 1
    finally:
        state.close()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

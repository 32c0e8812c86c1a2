"""A runner to kill while its one slow stage runs: ``python -m chaos.beating DB HOLD``.

The slow stage writes nothing and waits while the file HOLD exists, so the only sign of
life its runner leaves is its heartbeat (a short lease: one every 0.1 s).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from stepkit import Pipeline
from stepkit.pipeline.context import StageContext
from stepkit.state import SQLiteStateRepository

#: A short lease, so that the heartbeat (a third of it) comes often.
LEASE_SECONDS = 0.3


def quick(context: StageContext) -> Mapping[str, Any]:
    return {"stage": context.stage}


def slow(context: StageContext) -> Mapping[str, Any]:
    while os.path.exists(context.inputs["hold"]):
        time.sleep(0.01)
    return {"stage": context.stage}


def pipeline() -> Pipeline:
    pipe = Pipeline("beating", source="chaos.beating:pipeline")
    pipe.add("quick", quick)
    pipe.add("slow", slow, depends_on=["quick"])
    return pipe


def main(db: str, hold: str) -> int:
    state = SQLiteStateRepository(db)
    try:
        result = pipeline().run(inputs={"hold": hold}, state=state, lease_seconds=LEASE_SECONDS)
        return 0 if result.ok else 1
    finally:
        state.close()


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))

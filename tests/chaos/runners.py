"""Runner processes for the chaos tests, to kill or to start side by side:

- ``python -m chaos.runners drive DB LEDGER``: run the chaos pipeline, or resume the run a
  killed runner left (one run per state file), to the end;
- ``python -m chaos.runners crowd DB INDEX GATE``: say it is ready (``GATE/ready-INDEX``),
  wait for ``GATE/go`` (so that several line up), then run a small pipeline on DB, which
  may not exist yet.

Every stage of the chaos pipeline writes to LEDGER (one ``write`` of a short line on a file
opened for appending, so lines never interleave) as it starts and as it ends, and returns a
fresh token with the tokens of its upstream stages: the test reads from the ledger and the
records which attempts ran, and whether any recorded output was made from upstream outputs
other than the recorded ones.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Mapping
from typing import Any

from stepkit import Pipeline
from stepkit.pipeline.context import StageContext
from stepkit.state import RunStatus, SQLiteStateRepository


def _note(context: StageContext, what: str) -> None:
    line = f"{what} {context.stage} {context.attempt} {os.getpid()}\n".encode()
    fd = os.open(context.inputs["ledger"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def work(context: StageContext) -> Mapping[str, Any]:
    """Note the start, work a little (``helper`` stages through a process of their own, which
    a killed runner leaves behind), note the end, return a token and the upstream's."""
    _note(context, "start")
    if context.stage.startswith("helper"):
        import subprocess

        helper = subprocess.Popen(["sleep", "30"])  # in the stage's process group
        _note(context, f"helper-{helper.pid}")
        time.sleep(0.15)
        helper.kill()
        helper.wait()
    else:
        time.sleep(0.03 + 0.01 * (hash(context.stage) % 5))
    _note(context, "end")
    return {
        "token": uuid.uuid4().hex,
        "seen": {name: outputs["token"] for name, outputs in context.upstream.items()},
    }


#: stage -> (its upstream stages, its mode)
STAGES: dict[str, tuple[tuple[str, ...], str]] = {
    "source": ((), "direct"),
    "m0": (("source",), "subprocess"),
    "m1": (("source",), "direct"),
    "helper2": (("source",), "subprocess"),
    "m3": (("source",), "direct"),
    "m4": (("source",), "subprocess"),
    "helper5": (("source",), "subprocess"),
    "j0": (("m0", "m1", "helper2"), "direct"),
    "j1": (("m3", "m4", "helper5"), "subprocess"),
    "sink": (("j0", "j1"), "direct"),
}


def chaotic() -> Pipeline:
    pipe = Pipeline("chaotic", source="chaos.runners:chaotic")
    for name, (upstream, mode) in STAGES.items():
        pipe.add(name, work, depends_on=list(upstream), mode=mode)  # type: ignore[arg-type]
    return pipe


def drive(db: str, ledger: str) -> int:
    state = SQLiteStateRepository(db)
    try:
        runs = state.list_runs()
        if not runs:
            result = chaotic().run(inputs={"ledger": ledger}, state=state, max_workers=3)
        elif runs[0].status != RunStatus.COMPLETED:
            result = chaotic().resume(runs[0].run_id, state=state, max_workers=3)
        else:
            return 0
        return 0 if result.ok else 1
    finally:
        state.close()


def noop(context: StageContext) -> Mapping[str, Any]:
    return {"stage": context.stage}


def crowd(db: str, index: int, gate: str) -> int:
    pipe = Pipeline("crowd")
    pipe.add("start", noop)
    for i in range(20):
        pipe.add(f"w{i}", noop, depends_on=["start"])
    pipe.add("end", noop, depends_on=[f"w{i}" for i in range(20)])
    open(os.path.join(gate, f"ready-{index}"), "w").close()
    while not os.path.exists(os.path.join(gate, "go")):  # line up: the opens happen together
        time.sleep(0.001)
    state = SQLiteStateRepository(db)
    try:
        result = pipe.run(inputs={"index": index}, state=state, max_workers=4)
        print(result.run_id, result.status)
        return 0 if result.ok else 1
    finally:
        state.close()


def main(argv: list[str]) -> int:
    if argv[0] == "drive":
        return drive(argv[1], argv[2])
    return crowd(argv[1], int(argv[2]), argv[3])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Stages for the spare-children tests, importable by a child process; run as
``python -m pipeline.spare_stages DB FOLDER``, a runner of its own to kill."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stepkit import Pipeline
from stepkit.pipeline.context import StageContext


def view() -> dict[str, Any]:
    """What a stage's process starts with, as the stage sees it (its pid and group aside)."""
    import ctypes

    signal = ctypes.c_int()
    ctypes.CDLL(None).prctl(2, ctypes.byref(signal))  # PR_GET_PDEATHSIG
    return {
        "parent": os.getppid(),
        "leads_its_group": os.getpgid(0) == os.getpid(),
        "death_signal": signal.value,
        "cwd": os.getcwd(),
        "path": list(sys.path),
        "environ": dict(os.environ),
        "argv": list(sys.argv),
        "stdin": sys.stdin.read(),
        "modules": sorted(sys.modules),
    }


def spares_of(runner: int) -> list[int]:
    """The runner's children waiting as spares: stage children other than this one."""
    import psutil

    found = []
    for child in psutil.Process(runner).children():
        try:
            if child.pid != os.getpid() and any("stepkit.child" in a for a in child.cmdline()):
                found.append(child.pid)
        except psutil.NoSuchProcess:  # it ended while we looked
            continue
    return found


def wait_for_spare(runner: int) -> int:
    deadline = time.monotonic() + 60
    while not (found := spares_of(runner)):
        if time.monotonic() > deadline:
            raise TimeoutError("no spare child was started")
        time.sleep(0.01)
    return found[0]


def first(context: StageContext) -> Mapping[str, Any]:
    """Look, then wait until a spare child waits beside this one; name it."""
    seen = view()
    return {"view": seen, "pid": os.getpid(), "spare": wait_for_spare(os.getppid())}


def second(context: StageContext) -> Mapping[str, Any]:
    return {"view": view(), "pid": os.getpid()}


def set_environ(context: StageContext) -> Mapping[str, Any]:
    """A direct stage (in the runner) that changes the runner's environment once a spare
    was started with the old one."""
    spare = wait_for_spare(os.getpid())
    os.environ["STEPKIT_SPARE_TEST"] = "changed"
    return {"spare": spare}


def reads_environ(context: StageContext) -> Mapping[str, Any]:
    return {"value": os.environ.get("STEPKIT_SPARE_TEST"), "pid": os.getpid()}


def hold(context: StageContext) -> None:
    """Note this child's pid and the spare's, then wait to be killed."""
    spare = wait_for_spare(os.getppid())
    Path(context.inputs["folder"], "pids").write_text(f"{os.getpid()} {spare}\n")
    time.sleep(120)


def held() -> Pipeline:
    pipe = Pipeline("held")
    pipe.add("hold", hold, mode="subprocess")
    pipe.add("after", second, depends_on=["hold"], mode="subprocess")
    return pipe


def main(argv: list[str]) -> int:
    from stepkit.state import SQLiteStateRepository

    state = SQLiteStateRepository(Path(argv[0]))
    try:
        held().run(inputs={"folder": argv[1]}, state=state)
    finally:
        state.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

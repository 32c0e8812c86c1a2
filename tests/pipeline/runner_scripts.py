"""Runner processes for the tests that need a real process to kill or to run side by side:
``python -m pipeline.runner_scripts killable DB MARKER``, ``... orphaning DB MARKER`` or
``... many DB INDEX``."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stepkit import Pipeline
from stepkit.pipeline.context import StageContext
from stepkit.state import SQLiteStateRepository


def mark(context: StageContext) -> Mapping[str, Any]:
    """Appends the stage's name to ran.txt; stage c hangs while the hold file exists."""
    marker = Path(context.inputs["marker"])
    with open(marker / "ran.txt", "a", encoding="utf-8") as handle:
        handle.write(f"{context.stage}\n")
    if context.stage == "c":
        while (marker / "hold").exists():
            time.sleep(0.02)
    return {"by": context.stage}


def killable() -> Pipeline:
    """a → b → c → d, a → x, (x, c) → e: c hangs, so the runner can be killed mid-run."""
    pipe = Pipeline("resumable", source="pipeline.runner_scripts:killable")
    pipe.add("a", mark)
    pipe.add("b", mark, depends_on=["a"])
    pipe.add("x", mark, depends_on=["a"])
    pipe.add("c", mark, depends_on=["b"])
    pipe.add("d", mark, depends_on=["c"])
    pipe.add("e", mark, depends_on=["x", "c"])
    return pipe


def chatter(context: StageContext) -> Mapping[str, Any]:
    for i in range(2000):
        print(f"runner {context.inputs['index']} line {i}")
    return {"lines": 2000}


def noop(context: StageContext) -> Mapping[str, Any]:
    return {"stage": context.stage}


def many(index: int) -> Pipeline:
    pipe = Pipeline("many")
    pipe.add("start", noop)
    for i in range(60):
        pipe.add(f"w{i}", noop, depends_on=["start"])
    pipe.add("talk", chatter, depends_on=["start"], mode="subprocess")
    pipe.add("end", noop, depends_on=[*(f"w{i}" for i in range(60)), "talk"])
    return pipe


def sleeper(context: StageContext) -> Mapping[str, Any]:
    """Attempt 1 starts a process of its own (which stays in the stage's process group),
    records both pids and hangs; a later attempt says whether that process still runs."""
    import os
    import subprocess

    import psutil

    marker = Path(context.inputs["marker"])
    if context.attempt == 1:
        helper = subprocess.Popen(["sleep", "120"])
        (marker / "stage.pid").write_text(str(os.getpid()))
        (marker / "orphan.pid.new").write_text(str(helper.pid))
        os.replace(marker / "orphan.pid.new", marker / "orphan.pid")
        time.sleep(120)
    first = int((marker / "orphan.pid").read_text())
    try:
        alive = psutil.Process(first).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        alive = False
    return {"attempt": context.attempt, "first_alive": alive}


def orphaning() -> Pipeline:
    pipe = Pipeline("orphaning", source="pipeline.runner_scripts:orphaning")
    pipe.add("sleeper", sleeper, mode="subprocess")
    return pipe


def main(argv: list[str]) -> int:
    kind, db = argv[0], argv[1]
    state = SQLiteStateRepository(db)
    try:
        if kind == "orphaning":
            orphaning().run(inputs={"marker": argv[2]}, state=state, lease_seconds=60)
            return 0
        if kind == "killable":
            killable().run(inputs={"marker": argv[2]}, state=state, lease_seconds=60)
            return 0
        index = int(argv[2])
        result = many(index).run(inputs={"index": index}, state=state, max_workers=4)
        print(result.run_id, result.status)
        return 0 if result.ok else 1
    finally:
        state.close()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))


def first(context: StageContext) -> Mapping[str, Any]:
    return {"ready": True}


def hang(context: StageContext) -> None:
    """Fails while marker/fail exists; otherwise records its pid and sleeps."""
    import os

    marker = Path(context.inputs["marker"])
    if (marker / "fail").exists():
        raise RuntimeError("told to fail")
    (context.temp_dir() / "work").write_text("partial")
    (marker / "pid").write_text(str(os.getpid()))
    time.sleep(60)


def interruptible() -> Pipeline:
    pipe = Pipeline("interruptible", source="pipeline.runner_scripts:interruptible")
    pipe.add("first", first)
    pipe.add("hang", hang, depends_on=["first"], mode="subprocess")
    return pipe

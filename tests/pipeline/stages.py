"""Stage functions for subprocess and distributed tests: importable by a child process,
and light (no pytest), so the child starts fast."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stepkit.pipeline.context import StageContext


def double(context: StageContext) -> Mapping[str, Any]:
    print(f"doubling {context['x']}")
    print("a warning", file=sys.stderr)
    return {"y": context["x"] * 2, "pid": os.getpid()}


def fail(context: StageContext) -> None:
    raise ValueError(f"bad value in {context.stage}")


def sleep_with_grandchild(context: StageContext) -> None:
    """Starts a grandchild that would outlive us, records both pids, then hangs."""
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    Path(context.inputs["pids"]).write_text(f"{os.getpid()} {grandchild.pid}\n")
    print("started", flush=True)
    time.sleep(120)


def million_lines(context: StageContext) -> Mapping[str, Any]:
    count = int(context.inputs["lines"])
    chunk = 100_000
    for start in range(0, count, chunk):
        sys.stdout.write("".join(f"line {i}\n" for i in range(start, min(count, start + chunk))))
    sys.stderr.write("done\n")
    return {"lines": count}


def write_temp(context: StageContext) -> Mapping[str, Any]:
    (context.temp_dir() / "t.txt").write_text("x")
    (context.scratch_dir() / "s.txt").write_text("y")
    return {"temp": str(context.temp_dir())}


def noop(context: StageContext) -> None:
    return None


def sleep_briefly(context: StageContext) -> None:
    time.sleep(1)


def returns_a_set(context: StageContext) -> Mapping[str, Any]:
    return {"tags": {"a", "b"}}


class MadeThenFinished:
    """``execute`` makes something where it runs; ``finish`` turns it into outputs, and
    says in which process each part ran."""

    def execute(self, context: StageContext) -> Mapping[str, Any]:
        return {"made": context["x"] + 1, "execute_pid": os.getpid()}

    def finish(self, context: StageContext, made: Mapping[str, Any]) -> Mapping[str, Any]:
        return {
            "y": made["made"] * 10,
            "execute_pid": made["execute_pid"],
            "finish_pid": os.getpid(),
        }


def leaves_work_for_exit(context: StageContext) -> Mapping[str, Any]:
    """Work a plain ``python`` exit still does after the stage returns: a non-daemon thread
    finishing its file, then an ``atexit`` handler (which sees the thread's file)."""
    import atexit
    import threading

    folder = Path(context.inputs["folder"])

    def slow_write() -> None:
        time.sleep(0.2)
        (folder / "thread.txt").write_text("thread done")

    def at_exit() -> None:
        seen = (folder / "thread.txt").exists()
        (folder / "atexit.txt").write_text(f"thread file seen: {seen}")

    atexit.register(at_exit)
    threading.Thread(target=slow_write).start()
    print("returning", flush=True)
    return {"pid": os.getpid()}

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

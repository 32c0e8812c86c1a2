"""Stage functions for the orchestrator benchmark, in a module that imports nothing, so a
subprocess stage's child pays only for stepkit's own start-up."""

from __future__ import annotations

import sys


def noop(context: object) -> None:
    return None


def million_lines(context: object) -> dict[str, int]:
    count = 1_000_000
    chunk = 100_000
    for start in range(0, count, chunk):
        sys.stdout.write("".join(f"line {i}\n" for i in range(start, start + chunk)))
    return {"lines": count}

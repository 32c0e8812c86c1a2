"""Report figures: ``stepkit runs report`` on a run of 200 stages whose stages wrote
1,000,000 log lines in all (one stage 500,000 of them, in two attempts).

Prints one JSON object; each figure is a median over repeats of the command as users run
it (a fresh process). The bound is the same command on the same run with no log at all:
finding each attempt's last lines should cost little beside drawing the page.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stepkit.state import (
    LogBatch,
    RunRecord,
    RunStatus,
    SQLiteStateRepository,
    StageRecord,
    StageStatus,
)

STAGES = 200
LINES = 1_000_000
REPEATS = 5


def write_run(root: Path, *, lines: int) -> None:
    """A project whose state holds one completed run: a chain of fan-outs of 10 stages."""
    (root / "steps").mkdir(parents=True)
    (root / "stepkit.toml").write_text(
        '[project]\nname = "bench"\n[[workspaces]]\nid = "core"\npath = "steps"\n'
    )
    names = [f"Stage{i:03d}_training" for i in range(STAGES)]
    graph = {n: ((names[i - 10 - i % 3],) if i >= 10 else ()) for i, n in enumerate(names)}
    t0 = time.time()
    records = [
        StageRecord(
            "run",
            n,
            1,
            StageStatus.COMPLETED,
            started_at=t0 + i,
            finished_at=t0 + i + 1,
            duration=1.0,
        )
        for i, n in enumerate(names)
    ]
    records.append(
        StageRecord(
            "run",
            names[0],
            2,
            StageStatus.COMPLETED,
            started_at=t0 + 1,
            finished_at=t0 + 2,
            duration=1.0,
        )
    )
    records[0] = StageRecord(
        "run",
        names[0],
        1,
        StageStatus.FAILED,
        started_at=t0,
        finished_at=t0 + 1,
        duration=1.0,
        error_type="ValueError",
        error_message="bad",
    )
    state = SQLiteStateRepository(root / ".stepkit" / "state.db")
    try:
        state.commit(
            runs=[
                RunRecord(
                    "run",
                    "bench",
                    RunStatus.COMPLETED,
                    graph=graph,
                    created_at=t0,
                    started_at=t0,
                    finished_at=t0 + STAGES,
                )
            ],
            stages=records,
        )
        if lines:
            big = lines // 2
            for attempt in (1, 2):
                for start in range(0, big // 2, 50_000):
                    batch = [f"attempt {attempt} line {start + k}" for k in range(50_000)]
                    state.commit(logs=[LogBatch("run", names[0], attempt, "stdout", t0, batch)])
            rest = (lines - big) // (STAGES - 1)
            for name in names[1:]:
                state.commit(
                    logs=[
                        LogBatch("run", name, 1, "stdout", t0, [f"{name} {k}" for k in range(rest)])
                    ]
                )
    finally:
        state.close()


def median_seconds(root: Path) -> float:
    command = [
        sys.executable,
        "-m",
        "stepkit",
        "-p",
        str(root),
        "runs",
        "report",
        "run",
        "-o",
        str(root / "report.html"),
    ]
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        logged, quiet = Path(tmp, "logged"), Path(tmp, "quiet")
        write_run(logged, lines=LINES)
        write_run(quiet, lines=0)
        figures = {
            "stages": STAGES,
            "log_lines": LINES,
            "runs_report_s": round(median_seconds(logged), 3),
            "bound_runs_report_without_logs_s": round(median_seconds(quiet), 3),
            "page_bytes": (logged / "report.html").stat().st_size,
        }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

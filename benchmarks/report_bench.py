"""Report figures: ``stepkit runs report`` on a run of 200 stages whose stages wrote
1,000,000 log lines in all (one stage 500,000 of them, in two attempts).

    python benchmarks/report_bench.py [--base COMMIT]

Prints one JSON object; each figure is a median over repeats of the command as users run
it (a fresh process), with this tree's code and with the code of ``--base`` (default: the
commit before the store's log-tail query), the four commands (each tree, with and without
logs) taking turns so that a change in the machine's load falls on all alike. Each tree
reads a run written by its own code (an older stepkit refuses a newer schema). The bound
is the same command on the same run with no log at all, plus a tenth of a second: finding
each attempt's last lines should cost little beside drawing the page.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from stepkit.state import (
    LogBatch,
    RunRecord,
    RunStatus,
    SQLiteStateRepository,
    StageRecord,
    StageStatus,
)

BASE_COMMIT = "439f21f"
#: What the page may cost beyond the same page of a run that logged nothing.
BOUND_EXTRA_S = 0.1
STAGES = 200
LINES = 1_000_000
REPEATS = 15


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


def report_command(root: Path, src: Path) -> tuple[list[str], dict[str, str]]:
    """``stepkit runs report`` as users run it (a fresh process), with the code in ``src``."""
    command = [sys.executable, "-m", "stepkit", "-p", str(root), "runs", "report", "run"]
    command += ["-o", str(root / "report.html")]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(src)
    return command, env


def median_seconds(commands: dict[str, tuple[list[str], dict[str, str]]]) -> dict[str, float]:
    """Median seconds of each command, run in turn ``REPEATS`` times: interleaved, so that
    a change in the machine's load falls on all of them alike."""
    for command, env in commands.values():
        subprocess.run(command, check=True, capture_output=True, env=env)  # bytecode compiled
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(REPEATS):
        for name, (command, env) in commands.items():
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=env)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(seconds) for name, seconds in times.items()}


def base_source(commit: str) -> Path:
    """The ``src`` folder of ``commit``, extracted into a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="stepkit-base-"))
    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", commit, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder / "src"


def written_by(src: Path, root: Path, *, lines: int) -> Path:
    """``root`` with the run of :func:`write_run`, written by the code in ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    script = str(Path(__file__).resolve())
    subprocess.run([sys.executable, script, "--write", str(root), str(lines)], check=True, env=env)
    return root


def measure(sources: dict[str, Path], folder: Path) -> dict[str, Any]:
    """Figures of each source tree, on the run written by its own code."""
    commands = {}
    for name, src in sources.items():
        for kind, lines in (("logged", LINES), ("quiet", 0)):
            root = written_by(src, folder / name / kind, lines=lines)
            commands[f"{name}/{kind}"] = report_command(root, src)
    medians = median_seconds(commands)
    figures = {}
    for name in sources:
        with_logs, without = medians[f"{name}/logged"], medians[f"{name}/quiet"]
        figures[name] = {
            "runs_report_s": round(with_logs, 3),
            "runs_report_without_logs_s": round(without, 3),
            "bound_s": round(without + BOUND_EXTRA_S, 3),
            "met": with_logs <= without + BOUND_EXTRA_S,
            "page_bytes": (folder / name / "logged" / "report.html").stat().st_size,
        }
    return figures


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--write"]:  # the child of written_by()
        write_run(Path(args[1]), lines=int(args[2]))
        return
    commit = args[args.index("--base") + 1] if "--base" in args else BASE_COMMIT
    base = base_source(commit)
    current = Path(__file__).resolve().parent.parent / "src"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            figures: dict[str, Any] = {"stages": STAGES, "log_lines": LINES, "repeats": REPEATS}
            figures |= measure({"new": current, f"base_{commit}": base}, Path(tmp))
            figures["load_average"] = [round(load, 2) for load in os.getloadavg()]
    finally:
        shutil.rmtree(base.parent, ignore_errors=True)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
